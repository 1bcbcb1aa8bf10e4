"""The `whoknows` command line, driven for real: in-process, and once as the console script."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, inspect, select

from adapters.cli import main
from bot.data.demo import data
from bot.db import Database
from bot.db.models import Embedding, Tag
from bot.matching.vectors import INLINE_LIMIT
from bot.services.presence import LABELS

QUESTION = "refund for a prepaid top-up"
PEOPLE_CSV = "id,name,team,timezone,skills\nana,Ana,Billing,Europe/London,refunds:4\n"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def ask_json(capsys: pytest.CaptureFixture[str], url: str, *argv: str) -> dict[str, Any]:
    code, out, _ = run(capsys, "--db", url, "ask", *argv, "--json")
    assert code == 0
    return json.loads(out)


def expert_ids(answer: dict[str, Any]) -> list[str]:
    return [expert["id"] for expert in answer["experts"]]


def demo_holders_of(*tags: str) -> set[str]:
    return {p["handle"] for p in data.PEOPLE if any(s[0] in tags for s in p["skills"])}


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


@pytest.fixture
def demo_url(url: str, capsys: pytest.CaptureFixture[str]) -> str:
    assert run(capsys, "--db", url, "demo") == (0, "demo org seeded\n", "")
    return url


def console_script() -> Path:
    # The installed `whoknows` command, as users run it (not `python -m adapters.cli`).
    script = Path(sys.executable).parent / "whoknows"
    assert script.is_file(), "install the project (pip install -e .) for the console script"
    return script


def test_console_script_seeds_the_demo_and_answers_who_knows_as_json(url: str) -> None:
    def whoknows(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(console_script()), "--db", url, *argv],
            capture_output=True,
            text=True,
            timeout=120,
        )

    seeded = whoknows("demo")
    assert (seeded.returncode, seeded.stdout) == (0, "demo org seeded\n")
    asked = whoknows("ask", QUESTION, "--json")
    assert asked.returncode == 0, asked.stderr
    assert len(asked.stdout.splitlines()) == 1
    answer = json.loads(asked.stdout)
    assert set(answer) == {"query", "experts", "articles", "confident"}
    assert answer["query"] == QUESTION
    assert answer["confident"] is True
    assert answer["experts"], "the demo org has refund experts"
    for expert in answer["experts"]:
        assert set(expert) == {"id", "name", "score", "presence", "reasons", "basis"}
        assert isinstance(expert["score"], float) and expert["presence"] in LABELS
        assert expert["basis"] in {"verified", "self-declared", "earned"}
        assert expert["reasons"] and all(isinstance(r, str) and r for r in expert["reasons"])
    assert expert_ids(answer)[0] in demo_holders_of("refunds", "prepaid top-up")


def test_ask_json_says_what_each_experts_reasons_rest_on(
    capsys: pytest.CaptureFixture[str], demo_url: str
) -> None:
    experts = ask_json(capsys, demo_url, QUESTION)["experts"]
    assert experts[0]["basis"] == "verified"  # the demo's refund experts are verified
    assert {e["basis"] for e in experts} <= {"verified", "self-declared", "earned"}


def test_ask_limit_caps_the_number_of_experts(
    capsys: pytest.CaptureFixture[str], demo_url: str
) -> None:
    assert len(ask_json(capsys, demo_url, QUESTION)["experts"]) > 2
    assert len(ask_json(capsys, demo_url, QUESTION, "--limit", "2")["experts"]) == 2


def test_ask_as_someone_never_suggests_themselves(
    capsys: pytest.CaptureFixture[str], demo_url: str
) -> None:
    # The first suggestion depends on who is on shift now (the CLI runs on the real
    # clock): ask again as whoever it is.
    first = expert_ids(ask_json(capsys, demo_url, QUESTION))[0]
    answer = ask_json(capsys, demo_url, QUESTION, "--as", first)
    assert answer["experts"] and first not in expert_ids(answer)


def test_a_nonsense_question_is_not_confident(
    capsys: pytest.CaptureFixture[str], demo_url: str
) -> None:
    assert ask_json(capsys, demo_url, "zebra crossing lollipop")["confident"] is False


def test_import_people_exits_0_when_every_row_lands(
    capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path
) -> None:
    source = tmp_path / "people.csv"
    source.write_text(PEOPLE_CSV + "bo,Bo,Tech,UTC,\n", encoding="utf-8")
    code, out, _ = run(capsys, "--db", url, "import", "people", str(source))
    assert (code, out) == (0, "2 created, 0 updated, 0 failed\n")


def test_import_people_exits_1_and_names_the_lines_when_some_rows_fail(
    capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path
) -> None:
    source = tmp_path / "people.csv"
    source.write_text(PEOPLE_CSV + "bo,Bo,,Mars/Olympus,\n,Nobody,,,\n", encoding="utf-8")
    code, out, _ = run(capsys, "--db", url, "import", "people", str(source))
    assert code == 1
    assert out.splitlines() == [
        "1 created, 0 updated, 2 failed",
        "  line 3: unknown time zone 'Mars/Olympus' (use an IANA name like Europe/London)",
        "  line 4: 'id' is empty",
    ]


def test_import_tags_gives_tags_their_descriptions(
    capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path
) -> None:
    source = tmp_path / "tags.csv"
    source.write_text(
        "name,description,examples\nrefunds,Money back,a refund to a closed card\n,x,\n",
        encoding="utf-8",
    )
    code, out, _ = run(capsys, "--db", url, "import", "tags", str(source))
    assert code == 1
    assert out.splitlines() == ["1 created, 0 updated, 1 failed", "  line 3: 'name' is empty"]


def test_import_of_a_missing_file_exits_2(
    capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path
) -> None:
    missing = tmp_path / "nope.csv"
    code, out, err = run(capsys, "--db", url, "import", "people", str(missing))
    assert (code, out) == (2, "")
    assert f"no such file: {missing}" in err


def test_export_people_as_jsonl_writes_the_file(
    capsys: pytest.CaptureFixture[str], demo_url: str, tmp_path: Path
) -> None:
    target = tmp_path / "people.jsonl"
    code, out, _ = run(
        capsys, "--db", demo_url, "export", "people", "--format", "jsonl", "-o", str(target)
    )
    assert (code, out) == (0, "")
    rows = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert [row["id"] for row in rows] == sorted(p["handle"] for p in data.PEOPLE)
    maria = next(row for row in rows if row["id"] == "maria")
    assert {"tag": "refunds", "level": 4, "verified": True} in maria["skills"]


def test_db_upgrade_creates_a_fresh_database_and_says_it_is_up_to_date(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "new" / "place" / "fresh.db"
    fresh = f"sqlite:///{path}"
    code, out, _ = run(capsys, "--db", fresh, "db", "upgrade")
    assert (code, out) == (0, f"database at {fresh} is up to date\n")
    assert path.is_file()
    database = Database(fresh)
    try:
        assert {"person", "skill", "alembic_version"} <= set(
            inspect(database.engine).get_table_names()
        )
    finally:
        database.dispose()


def test_an_unreachable_postgresql_fails_without_showing_the_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--db", "postgresql://u:s3cret@127.0.0.1:1/x", "db", "upgrade"])
    message = exit_info.value.code
    # A string code makes Python print it to stderr and exit with status 1.
    assert isinstance(message, str) and message.startswith("whoknows: cannot open the database")
    assert "u:***@127.0.0.1:1/x" in message
    out, err = capsys.readouterr()
    assert "s3cret" not in message + out + err


def test_ask_batch_answers_each_line_in_order_as_json(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'batch.db'}"
    assert main(["--db", url, "demo"]) == 0
    batch = tmp_path / "questions.txt"
    batch.write_text("refunds\nzebra crossing lollipop\nsim swap\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["--db", url, "ask", "--batch", str(batch), "--limit", "3"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["query"] for line in lines] == ["refunds", "zebra crossing lollipop", "sim swap"]
    assert [line["confident"] for line in lines] == [True, False, True]
    assert all(len(line["experts"]) <= 3 for line in lines)
    assert main(["--db", url, "ask", "refunds", "--batch", str(batch)]) == 2


# ---------------------------------------------------------------- bad input, friendly answers


def test_export_to_a_place_it_cannot_write_says_so_without_a_traceback(
    capsys: pytest.CaptureFixture[str], demo_url: str, tmp_path: Path
) -> None:
    target = tmp_path / "no" / "such" / "folder" / "people.csv"
    code, out, err = run(capsys, "--db", demo_url, "export", "people", "-o", str(target))
    assert (code, out) == (1, "")
    assert err == f"whoknows: cannot write {target}: No such file or directory\n"
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        inside = locked / "people.csv"
        code, _, err = run(capsys, "--db", demo_url, "export", "people", "-o", str(inside))
        if os.geteuid() != 0:  # root writes anywhere
            assert code == 1 and err.startswith(f"whoknows: cannot write {inside}: ")
            assert "Traceback" not in err and not inside.exists()
    finally:
        locked.chmod(0o700)


def test_export_leaves_an_existing_file_alone_without_force(
    capsys: pytest.CaptureFixture[str], demo_url: str, tmp_path: Path
) -> None:
    target = tmp_path / "people.csv"
    target.write_text("keep me\n", encoding="utf-8")
    code, out, err = run(capsys, "--db", demo_url, "export", "people", "-o", str(target))
    assert (code, out) == (2, "")
    assert err == f"whoknows: {target} exists: add --force to write over it\n"
    assert target.read_text(encoding="utf-8") == "keep me\n"
    code, _, _ = run(capsys, "--db", demo_url, "export", "people", "-o", str(target), "--force")
    assert code == 0 and target.read_text(encoding="utf-8").startswith("id,name,")
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_import_of_an_unreadable_file_exits_1_with_the_line_and_no_traceback(
    capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path
) -> None:
    source = tmp_path / "people.csv"
    source.write_text(PEOPLE_CSV + "bo,Bo,Tech,UTC," + "x:1;" * 40_000 + "\n", encoding="utf-8")
    code, out, err = run(capsys, "--db", url, "import", "people", str(source))
    assert (code, err) == (1, "")
    assert out.splitlines() == [
        "nothing imported: fix what is below and import the file again",
        "  line 3: a value is longer than 131,072 characters",
    ]


def test_import_people_computes_no_vectors_so_it_loads_no_model(
    capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path
) -> None:
    """The model would triple the import's memory: new tags are encoded where the index is
    built, beside the questions (tests/bot/test_matching.py)."""
    rows = [f"p{n},P {n},,UTC,topic number {n}:3" for n in range(INLINE_LIMIT + 10)]
    source = tmp_path / "people.csv"
    source.write_text("id,name,team,timezone,skills\n" + "\n".join(rows) + "\n", encoding="utf-8")
    assert run(capsys, "--db", url, "import", "people", str(source))[0] == 0
    database = Database(url)
    try:
        with database.reading() as session:
            tags = session.scalar(select(func.count()).select_from(Tag))
            stored = session.scalar(
                select(func.count()).select_from(Embedding).where(Embedding.kind == "tag")
            )
    finally:
        database.dispose()
    assert (tags, stored) == (INLINE_LIMIT + 10, 0)


def _blas_threads(env: dict[str, str]) -> tuple[str, int]:
    """The command's BLAS setting and the threads numpy's OpenBLAS then uses, in a
    fresh process (numpy reads the setting once, when it loads)."""
    probe = (
        "import ctypes, glob, os, sys\n"
        "import adapters.cli, numpy\n"
        "libs = glob.glob(os.path.join(os.path.dirname(numpy.__file__), os.pardir,"
        " 'numpy.libs', 'libscipy_openblas*'))\n"
        "count = ctypes.CDLL(libs[0]).scipy_openblas_get_num_threads64_() if libs else -1\n"
        "print(os.environ['OPENBLAS_NUM_THREADS'], count)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=Path(__file__).parents[2],
    )
    setting, count = done.stdout.split()
    return setting, int(count)


def test_the_command_runs_numpy_on_one_blas_thread_unless_told_otherwise() -> None:
    base = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    setting, count = _blas_threads(base)
    assert setting == "1"
    if count == -1:
        pytest.skip("numpy is not built on its bundled OpenBLAS here")
    assert count == 1
    assert _blas_threads({**base, "OPENBLAS_NUM_THREADS": "2"}) == ("2", 2)
