"""`whoknows report growth` and `whoknows report digest`, on the demo org `whoknows demo`
seeds (growth included, on the real clock)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from adapters.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def demo_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert run(capsys, "--db", url, "demo") == (0, "demo org seeded\n", "")
    return url


def test_report_growth_csv_is_every_persons_timeline(
    capsys: pytest.CaptureFixture[str], demo_url: str
) -> None:
    code, out, _ = run(capsys, "--db", demo_url, "report", "growth", "--csv")
    assert code == 0
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["person", "name", "team", "date", "event", "topic", "detail"]
    events = {(row[0], row[4], row[5]) for row in rows[1:]}
    # The demo's learners, the thread Omar observed, his mentor.
    assert {
        ("omar", "goal_set", "refunds"),
        ("alex", "goal_set", "chargebacks"),
        ("zoe", "goal_set", "roaming"),
        ("omar", "observed", "refunds"),
        ("omar", "mentor", "refunds"),
    } <= events
    assert ("maria", "helped", "") in events
    code, team_only, _ = run(
        capsys, "--db", demo_url, "report", "growth", "--team", "devices & network", "--csv"
    )
    assert {row[2] for row in list(csv.reader(io.StringIO(team_only)))[1:]} == {"Devices & Network"}


def test_report_growth_of_one_person_reads_as_lines(
    capsys: pytest.CaptureFixture[str], demo_url: str
) -> None:
    code, out, _ = run(capsys, "--db", demo_url, "report", "growth", "--person", "@omar")
    assert code == 0
    assert "omar observed a huddle thread [refunds]: huddle thread #1" in out
    assert "omar paired with a mentor [refunds]: Maria Santos" in out
    assert all(line.split()[2] == "omar" for line in out.splitlines())
    missing = run(capsys, "--db", demo_url, "report", "growth", "--person", "nobody")
    assert missing[0] == 2 and "nobody has the handle 'nobody'" in missing[2]


def test_report_digest_prints_each_teams_latest(
    capsys: pytest.CaptureFixture[str], demo_url: str
) -> None:
    code, out, _ = run(capsys, "--db", demo_url, "report", "digest", "--team", "Billing")
    assert code == 0
    assert "Together, Billing resolved 3 huddle threads and wrote 3 answers." in out
    assert run(capsys, "--db", demo_url, "report", "digest", "--team", "Nope")[0] == 2
    code, every, _ = run(capsys, "--db", demo_url, "report", "digest")
    assert every.count("Together, ") == 3
