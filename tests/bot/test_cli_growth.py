"""`whoknows report growth` and `whoknows report digest`, on the demo org `whoknows demo`
seeds (growth included, on the real clock)."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from adapters.cli import main
from bot.db.models import Huddle, HuddleState, KnowledgeAuthor, KnowledgeEntry, Person, Team


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
    # The demo's history sits on the real clock: count what its week holds.
    resolved, answers = _billings_week(demo_url, out)
    assert resolved >= 3 and answers >= 3  # the demo's digest week, at least
    assert (
        f"Together, Billing resolved {resolved} huddle threads and wrote {answers} answers." in out
    )
    assert run(capsys, "--db", demo_url, "report", "digest", "--team", "Nope")[0] == 2
    code, every, _ = run(capsys, "--db", demo_url, "report", "digest")
    assert every.count("Together, ") == 3


def _billings_week(url: str, digest: str) -> tuple[int, int]:
    """Billing's huddle threads resolved and answers its people wrote, in the week the
    digest's header names, read from the database."""
    found = re.search(
        r"Billing: your week, \w+ (\d+ \w+)(?: (\d{4}))? (\d+:\d+) to \w+ (\d+ \w+ \d{4}) "
        r"(\d+:\d+) \(([^)]+)\)",
        digest,
    )
    assert found, digest
    start_day, start_year, start_time, end_day, end_time, zone = found.groups()
    end = datetime.strptime(f"{end_day} {end_time}", "%d %b %Y %H:%M")
    start = datetime.strptime(
        f"{start_day} {start_year or end.year} {start_time}", "%d %b %Y %H:%M"
    )
    start, end = (t.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC) for t in (start, end))
    with Session(create_engine(url)) as session:
        team = session.scalar(select(Team).where(Team.name == "Billing"))
        assert team is not None
        closed = [
            when.replace(tzinfo=UTC) if when.tzinfo is None else when
            for when in session.scalars(
                select(Huddle.closed_at).where(
                    Huddle.team_id == team.id, Huddle.state == HuddleState.RESOLVED
                )
            )
        ]
        written = session.execute(
            select(KnowledgeEntry.id, KnowledgeEntry.created_at)
            .join(KnowledgeAuthor, KnowledgeAuthor.entry_id == KnowledgeEntry.id)
            .join(Person, Person.id == KnowledgeAuthor.person_id)
            .where(Person.team_id == team.id)
        ).all()
    created = {
        entry: when.replace(tzinfo=UTC) if when.tzinfo is None else when for entry, when in written
    }
    return (
        sum(1 for when in closed if start <= when < end),
        sum(1 for when in created.values() if start <= when < end),
    )
