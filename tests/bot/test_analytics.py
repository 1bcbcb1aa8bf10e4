"""The leads' numbers, on SQLite and PostgreSQL, against activity with known timestamps."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from adapters import cli
from bot.config import Settings
from bot.data.demo import data
from bot.db import open_database
from bot.db.models import (
    HelpfulVote,
    KnowledgeEntry,
    Outbox,
    Person,
    QueryLog,
)
from bot.services import Services, analytics, knowledge, people, presence
from bot.services.analytics import Scope
from tests.activity import seed_huddles
from tests.conftest import NOW
from tests.helpers import Clock


def expected_experts() -> Counter[tuple[str, str]]:
    """Experts per (tag, team), read straight from the demo's seed data."""
    return Counter((s[0], p["team"]) for p in data.PEOPLE for s in p["skills"])


def name_of(key: str) -> str:
    return next(p["name"] for p in data.PEOPLE if p["handle"] == key)


def person_id(session: Session, key: str) -> int:
    person = people.by_key(session, key)
    assert person is not None
    return person.id


def scope_of(session: Session, key: str) -> Scope:
    person = people.by_key(session, key)
    assert person is not None
    return Scope.for_person(person)


def ask(session: Session, key: str, text: str, when: datetime, *, confident: bool = False) -> None:
    session.add(
        QueryLog(
            person_id=person_id(session, key),
            platform="test",
            text=text,
            confident=confident,
            created_at=when,
        )
    )


def test_coverage_counts_the_demo_orgs_experts_per_tag_and_team(demo: Services) -> None:
    expected = expected_experts()
    with demo.db.unit_of_work() as session:
        result = analytics.coverage(session, NOW, Scope.everything())
        everyone = session.scalars(select(Person)).all()
        reachable = {p.key for p in everyone if presence.current(p, NOW).reachable}
    assert result.teams == ("Accounts & Retention", "Billing", "Devices & Network")
    assert len(result.rows) == len(data.TAGS)
    drawn = {
        (row.tag, team): cell.experts
        for row in result.rows
        for team, cell in zip(result.teams, row.cells, strict=True)
        if cell.experts
    }
    assert drawn == dict(expected)
    free = Counter(
        (s[0], p["team"]) for p in data.PEOPLE if p["handle"] in reachable for s in p["skills"]
    )
    available = {
        (row.tag, team): cell.available
        for row in result.rows
        for team, cell in zip(result.teams, row.cells, strict=True)
        if cell.available
    }
    assert available == dict(free)
    held = Counter(s[0] for p in data.PEOPLE for s in p["skills"])
    assert {row.tag for row in result.single_expert} == {t for t, n in held.items() if n == 1}
    assert {row.tag for row in result.uncovered} == {
        "wifi calling",
        "fibre installation",
        "account ownership transfer",
    }
    # Nobody asked yet, so nothing is flagged as a gap.
    assert result.gaps == []


def test_a_lead_sees_their_team_and_an_agent_no_team(demo: Services) -> None:
    expected = expected_experts()
    with demo.db.unit_of_work() as session:
        lead = analytics.coverage(session, NOW, scope_of(session, "priya"))
        agent = analytics.coverage(session, NOW, scope_of(session, "alex"))
    assert lead.teams == ("Billing",)
    refunds = next(row for row in lead.rows if row.tag == "refunds")
    assert refunds.cells[0].experts == expected["refunds", "Billing"]
    # The risk flag is the org's, whatever the reader's scope.
    assert refunds.org_experts == sum(n for (t, _), n in expected.items() if t == "refunds")
    assert agent.teams == ()
    assert all(row.cells == () for row in agent.rows)


def test_questions_about_a_tag_nobody_holds_flag_a_gap(demo: Services) -> None:
    with demo.db.unit_of_work() as session:
        ask(session, "alex", "How do I turn on WiFi calling?", NOW - timedelta(days=1))
        ask(session, "maria", "wifi calling drops mid call", NOW - timedelta(days=2))
        ask(session, "omar", "wifi calling in the tunnel", NOW - timedelta(days=90))  # too old
    with demo.db.unit_of_work() as session:
        result = analytics.coverage(session, NOW, Scope.everything())
    wifi = next(row for row in result.rows if row.tag == "wifi calling")
    assert (wifi.asked, wifi.gap) == (2, True)
    assert [row.tag for row in result.gaps] == ["wifi calling"]


def test_gap_questions_are_grouped_by_similarity_in_a_fixed_order(demo: Services) -> None:
    day = timedelta(days=1)
    with demo.db.unit_of_work() as session:
        ask(session, "alex", "wifi calling on iphone", NOW - day)
        ask(session, "maria", "WiFi calling on iPhone ", NOW - 2 * day)
        ask(session, "omar", "set up wifi calling on iphone", NOW - 3 * day)
        # Worded apart, but the same content words: the same group.
        ask(session, "zoe", "How do I turn on WiFi calling?", NOW - 3 * day)
        ask(session, "zoe", "fibre installation date", NOW - 4 * day)
        ask(session, "zoe", "when does the fibre installation engineer arrive", NOW - 4 * day)
        ask(session, "zoe", "roaming charges in spain", NOW - 6 * day)
        ask(session, "zoe", "roaming cap reset abroad", NOW - 6 * day)  # another question
        ask(session, "zoe", "esim for a smartwatch", NOW - 5 * day)
        ask(session, "alex", "refund for a top-up", NOW - day, confident=True)  # not a gap
        ask(session, "alex", "wifi calling on iphone", NOW - 40 * day)  # before the window
    with demo.db.unit_of_work() as session:
        groups = analytics.gap_groups(session, NOW - 30 * day, Scope.everything())
        billing = analytics.gap_groups(session, NOW - 30 * day, scope_of(session, "priya"))
    assert [(g.label, g.count, g.tag) for g in groups] == [
        ("wifi calling on iphone", 4, "wifi calling"),
        ("fibre installation date", 2, "fibre installation"),
        ("esim for a smartwatch", 1, "sim"),  # esim is an alias of sim
        ("roaming cap reset abroad", 1, "roaming"),
        ("roaming charges in spain", 1, "roaming charges"),
    ]
    assert groups[0].questions == (
        ("wifi calling on iphone", 2),
        ("how do i turn on wifi calling?", 1),
        ("set up wifi calling on iphone", 1),
    )
    assert groups[0].askers == 4
    assert groups[0].last_asked == NOW - day
    # Priya leads Billing: Zoe's questions (Devices & Network) are not hers to see.
    assert [(g.label, g.count) for g in billing] == [("wifi calling on iphone", 3)]


@pytest.fixture
def huddles(demo: Services) -> Services:
    seed_huddles(demo)
    return demo


def test_time_to_first_reply_in_buckets_and_by_week(huddles: Services) -> None:
    since = NOW - timedelta(weeks=2)
    with huddles.db.unit_of_work() as session:
        buckets = analytics.reply_time_buckets(session, since, Scope.everything())
        billing = analytics.reply_time_buckets(session, since, scope_of(session, "priya"))
        trend = analytics.reply_time_trend(session, NOW, 3, Scope.everything())
    assert [(b.label, b.count) for b in buckets] == [
        ("< 1 min", 1),
        ("1–3 min", 1),
        ("3–10 min", 1),
        ("10–30 min", 0),
        ("30–60 min", 0),
        ("≥ 1 h", 1),
    ]
    assert [b.count for b in billing] == [1, 1, 1, 0, 0, 0]
    monday = NOW.date()
    assert [(w.week, w.replied, w.median_s) for w in trend] == [
        (monday - timedelta(weeks=2), 1, pytest.approx(4000)),  # opened on the Sunday before
        (monday - timedelta(weeks=1), 1, pytest.approx(100)),
        (monday, 2, pytest.approx((45 + 240) / 2)),
    ]


def test_resolution_and_escalations_per_week_and_team(huddles: Services) -> None:
    with huddles.db.unit_of_work() as session:
        weeks = analytics.weekly_outcomes(session, NOW, 2, Scope.everything())
    table = {(w.week, w.team): (w.opened, w.resolved, w.escalated) for w in weeks}
    monday = NOW.date()
    assert table == {
        (monday - timedelta(weeks=1), "Accounts & Retention"): (0, 0, 0),
        (monday - timedelta(weeks=1), "Billing"): (1, 1, 1),
        (monday - timedelta(weeks=1), "Devices & Network"): (1, 0, 1),
        (monday, "Accounts & Retention"): (0, 0, 0),
        (monday, "Billing"): (3, 1, 1),
        (monday, "Devices & Network"): (0, 0, 0),
    }
    this_week_billing = next(w for w in weeks if w.week == monday and w.team == "Billing")
    assert this_week_billing.resolution_rate == pytest.approx(1 / 3)


def test_open_and_recent_huddles(huddles: Services) -> None:
    with huddles.db.unit_of_work() as session:
        opened = analytics.open_huddles(session, Scope.everything())
        closed = analytics.closed_huddles(session, NOW - timedelta(days=7), Scope.everything())
        devices = analytics.open_huddles(session, scope_of(session, "kwame"))
    assert [h.requester for h in opened] == [name_of("ewa"), name_of("omar")]
    assert opened[1].first_reply_s == 240
    assert opened[1].experts == (name_of("maria"), name_of("tomasz"))
    # Newest first; of two opened at the same moment, the later row first.
    assert [(h.team, h.state) for h in closed] == [
        ("Billing", "resolved"),
        ("Devices & Network", "expired"),
        ("Billing", "resolved"),
        ("Devices & Network", "resolved"),
    ]
    assert devices == []


def write_answer(session: Session, title: str, authors: tuple[str, ...], created: datetime) -> int:
    entry, _ = knowledge.add_entry(
        session, title, f"{title}: the steps.", [], [people.by_key(session, a) for a in authors]
    )
    entry.created_at = created
    session.flush()
    return entry.id


def vote(session: Session, entry_id: int, key: str, when: datetime) -> None:
    session.add(HelpfulVote(entry_id=entry_id, person_id=person_id(session, key), created_at=when))


def test_team_kpis_and_the_recognition_board(huddles: Services) -> None:
    start, end = analytics.period_bounds("week", NOW)
    with huddles.db.unit_of_work() as session:
        fresh = write_answer(session, "Refund a double top-up", ("maria",), NOW - timedelta(days=1))
        shared = write_answer(
            session, "Roaming cap reset", ("maria", "kwame"), NOW - timedelta(days=2)
        )
        write_answer(session, "Old answer", ("tomasz",), NOW - timedelta(days=20))
        hours_ago = NOW - timedelta(hours=5)
        for voter in ("alex", "omar", "zoe"):
            vote(session, fresh, voter, hours_ago)
        vote(session, shared, "alex", hours_ago)
        vote(session, shared, "omar", NOW - timedelta(days=9))  # before the period
    with huddles.db.unit_of_work() as session:
        kpis = analytics.team_kpis(session, start, end, Scope.everything())
        billing = analytics.team_kpis(session, start, end, scope_of(session, "priya"))
    teams = {
        t.team: (t.huddles_opened, t.huddles_resolved, t.entries_created, t.helpful_votes)
        for t in kpis.teams
    }
    assert teams == {
        "Accounts & Retention": (0, 0, 0, 0),
        "Billing": (4, 2, 2, 4),
        "Devices & Network": (1, 1, 1, 1),
    }
    assert [(e.title, e.votes) for e in kpis.helpful] == [
        ("Refund a double top-up", 3),
        ("Roaming cap reset", 1),
    ]
    assert [
        (h.key, h.huddles_helped, h.entries_written, h.helpful_votes) for h in kpis.helpers
    ] == [
        ("maria", 2, 2, 4),
        ("tomasz", 2, 0, 0),
        ("kwame", 0, 1, 1),  # his huddle reply came before the period
    ]
    assert [t.team for t in billing.teams] == ["Billing"]
    assert [h.key for h in billing.helpers] == ["maria", "tomasz"]
    rows = analytics.report_rows(kpis)
    assert ("team", "Billing", "huddles_resolved", 2) in rows
    assert ("helper", "Maria Santos (Billing)", "huddles_helped", 2) in rows
    text = analytics.report_text(kpis)
    assert "1. Maria Santos (Billing): 2 huddles helped, 2 answers written, 4 helpful votes" in text


def test_people_rows_show_skills_load_and_recent_help(huddles: Services) -> None:
    with huddles.db.unit_of_work() as session:
        rows = analytics.people_rows(
            session, NOW, NOW - timedelta(days=30), scope_of(session, "priya")
        )
        maria = people.by_key(session, "maria")
        load = analytics.current_load(session, maria)
        helped = analytics.recent_help(session, maria, NOW - timedelta(days=30))
        skills = analytics.skill_views(session, maria)
    by_key = {row.key: row for row in rows}
    assert set(by_key) == {p["handle"] for p in data.PEOPLE if p["team"] == "Billing"}
    spec = next(p for p in data.PEOPLE if p["handle"] == "maria")
    assert by_key["maria"].skills == len(spec["skills"])
    assert by_key["maria"].verified == sum(1 for s in spec["skills"] if s[2])
    assert (by_key["maria"].load, by_key["maria"].helped) == (1, 2)
    assert (by_key["tomasz"].load, by_key["tomasz"].helped) == (1, 2)
    assert [h.requester for h in load] == [name_of("omar")]
    assert len(helped) == 2
    assert [(s.tag, s.level) for s in skills] == sorted(
        ((s[0], s[1]) for s in spec["skills"]), key=lambda s: (-s[1], s[0])
    )


def test_stale_entries_are_the_untouched_ones(demo: Services) -> None:
    with demo.db.unit_of_work() as session:
        session.execute(update(KnowledgeEntry).values(updated_at=NOW - timedelta(days=1)))
        entry = session.scalars(select(KnowledgeEntry).order_by(KnowledgeEntry.id)).first()
        assert entry is not None
        entry.updated_at = NOW - timedelta(days=analytics.STALE_DAYS + 1)
    with demo.db.unit_of_work() as session:
        stale = analytics.stale_entries(session, NOW)
    assert [e.id for e in stale] == [entry.id]


def test_periods() -> None:
    assert analytics.period_bounds("week", NOW) == (NOW - timedelta(days=7), NOW)
    assert analytics.period_bounds("month", NOW) == (NOW - timedelta(days=30), NOW)
    with pytest.raises(ValueError, match="unknown period"):
        analytics.period_bounds("year", NOW)


# --- whoknows report ---------------------------------------------------------------------


@pytest.fixture
def report_db(demo_database_url: str, huddles: Services, monkeypatch: pytest.MonkeyPatch) -> str:
    """The huddles' database, with the command line's clock standing at NOW."""
    opened = cli._services

    def services_at_now(settings: Settings) -> Services:
        found = opened(settings)
        found.clock = Clock(NOW)
        return found

    monkeypatch.setattr(cli, "_services", services_at_now)
    return demo_database_url


def run_report(capsys: pytest.CaptureFixture[str], url: str, *argv: str) -> tuple[int, str]:
    code = cli.main(["--db", url, "report", *argv])
    return code, capsys.readouterr().out


def test_report_prints_the_kpis(report_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_report(capsys, report_db, "--period", "week")
    assert code == 0
    assert "Team KPIs, 16 Nov 2026 10:00 – 23 Nov 2026 10:00 UTC" in out
    billing = next(line for line in out.splitlines() if line.startswith("Billing"))
    assert billing.split()[1:] == ["4", "2", "0", "0"]
    assert "1. Maria Santos (Billing): 2 huddles helped" in out


def test_report_as_csv(report_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run_report(capsys, report_db, "--period", "month", "--csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows[0].keys() == {"period_start", "period_end", "section", "subject", "metric", "value"}
    resolved = {r["subject"]: r["value"] for r in rows if r["metric"] == "huddles_resolved"}
    assert resolved == {"Accounts & Retention": "0", "Billing": "2", "Devices & Network": "1"}
    assert {r["period_start"] for r in rows} == {"2026-10-24T10:00:00+00:00"}


def test_report_posted_to_a_channel_goes_through_the_outbox(
    report_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run_report(capsys, report_db, "--post", "C0LEADS")
    assert code == 0
    assert "queued for C0LEADS on slack" in out
    database = open_database(report_db)
    with database.unit_of_work() as session:
        rows = session.scalars(select(Outbox)).all()
    database.dispose()
    assert [(r.platform, r.kind, r.channel) for r in rows] == [("slack", "post", "C0LEADS")]
    assert "Recognition board" in rows[0].body
