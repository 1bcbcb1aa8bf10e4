"""The weekly team digest: when it is due, what it says for a seeded week (the figures
computed here from the seed, apart from the code), posted once per team per week with
two workers racing, and the team's settings."""

from __future__ import annotations

import statistics
import threading
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from adapters.console.render import render
from bot.db import open_database
from bot.db.models import (
    Huddle,
    HuddleParticipant,
    HuddleState,
    Job,
    JobState,
    Outbox,
    Person,
    QueryLog,
    Team,
)
from bot.router import Router
from bot.runtime import codec, jobs
from bot.services import Services, digest, knowledge
from tests.conftest import NOW
from tests.helpers import audit_rows, notices, say

# The demo's Billing team (its lead in London) has its digest on Mondays at 09:00:
# planned at NOW (Monday 23 November, 10:00 UTC), the next covers 23 → 30 November.
START = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
END = START + timedelta(days=7)
H = timedelta(hours=1)

# (team, asker, opened h after START, first replier, wait s, resolved min after opening)
HUDDLES = [
    ("Billing", "alex", 2, "maria", 90, 30),
    ("Billing", "omar", 30, "priya", 300, 45),
    ("Billing", "ewa", 60, "maria", 45, None),  # answered, still open
    ("Billing", "joy", 100, None, None, None),  # nobody answered
    ("Billing", "alex", 166, "hannah", 7200, None),  # answered only after the week ended
    ("Billing", "alex", -5, "tomasz", 60, 8 * 60),  # opened before, resolved within
    ("Billing", "omar", 170, "maria", 30, 10),  # after the week
    ("Devices & Network", "zoe", 10, "maria", 60, 20),  # another team's
]
# (authors, created h after START)
ENTRIES = [
    (["maria"], 5),
    (["priya", "kwame"], 40),  # one entry, two teams: counted once
    (["omar"], 90),
    (["kwame"], 50),  # another team's
    (["maria"], -1),  # before the week
]
# (asker, found someone, h after START, text)
QUERIES = [
    ("alex", False, 3, "refund to a closed bank account"),
    ("omar", False, 20, "refund to a closed bank account"),
    ("ewa", False, 80, "voucher bought abroad"),
    ("alex", True, 81, "refunds"),  # found someone
    ("zoe", False, 82, "mast on fire"),  # another team's
    ("omar", False, -2, "too early"),
]


def _seed(services: Services) -> None:
    with services.db.unit_of_work() as session:
        who = {p.key: p for p in session.scalars(select(Person))}
        teams = {t.name: t for t in session.scalars(select(Team))}
        for team, asker, hours, replier, wait, resolved in HUDDLES:
            opened = START + hours * H
            huddle = Huddle(
                topic=f"question at {hours}h",
                requester=who[asker],
                team=teams[team],
                platform="console",
                created_at=opened,
                state=HuddleState.RESOLVED if resolved else HuddleState.OPEN,
                first_reply_at=opened + timedelta(seconds=wait) if replier else None,
                closed_at=opened + timedelta(minutes=resolved) if resolved else None,
            )
            session.add(huddle)
            if replier:
                huddle.participants.append(
                    HuddleParticipant(
                        person=who[replier],
                        invited_at=opened,
                        first_reply_at=opened + timedelta(seconds=wait),
                    )
                )
        for n, (authors, hours) in enumerate(ENTRIES):
            entry, _ = knowledge.add_entry(
                session, f"Seeded answer {n}", f"Body {n}", [], [who[a] for a in authors]
            )
            entry.created_at = START + hours * H
        for asker, confident, hours, text in QUERIES:
            session.add(
                QueryLog(
                    person_id=who[asker].id,
                    platform="console",
                    text=text,
                    confident=confident,
                    created_at=START + hours * H,
                )
            )


def _expected(team: str) -> dict[str, object]:
    """Billing's figures from the seed, by the definitions in bot/services/digest.py."""
    members = {
        "Billing": {"alex", "maria", "omar", "priya", "ewa", "joy", "hannah", "tomasz"},
        "Devices & Network": {"zoe", "kwame"},
    }[team]
    mine = [h for h in HUDDLES if h[0] == team]
    within = [h for h in mine if 0 <= h[2] < 168]
    resolved = [
        h
        for h in mine
        if h[5] is not None and START <= START + h[2] * H + timedelta(minutes=h[5]) < END
    ]
    waits = [h[4] for h in within if h[3] is not None and h[2] * 3600 + h[4] < 168 * 3600]
    helped: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for h in mine:
        if h[3] is not None and 0 <= h[2] * 3600 + h[4] < 168 * 3600:
            helped[h[3]][0] += 1
    answers = 0
    for authors, hours in ENTRIES:
        if 0 <= hours < 168 and members & set(authors):
            answers += 1
            for author in set(authors) & members:
                helped[author][1] += 1
    unmatched = [q for q in QUERIES if q[0] in members and not q[1] and 0 <= q[2] < 168]
    return {
        "resolved": len(resolved),
        "median": statistics.median(waits),
        "count": len(waits),
        "answers": answers,
        "unanswered": len(within) - len(waits),
        "unmatched": len(unmatched),
        "helpers": {k: tuple(v) for k, v in helped.items()},
    }


def _posts(services: Services) -> list[tuple[str | None, str]]:
    with services.db.unit_of_work() as session:
        rows = session.scalars(
            select(Outbox).where(Outbox.kind == "post").order_by(Outbox.id)
        ).all()
        return [(row.channel, render(codec.loads(row.body))) for row in rows]


def _digest_jobs(services: Services) -> list[tuple[str, int, JobState, datetime]]:
    with services.db.unit_of_work() as session:
        rows = session.execute(
            select(Team.name, Job.step, Job.state, Job.due_at)
            .join(Team, Team.id == Job.team_id)
            .where(Job.kind == digest.KIND)
            .order_by(Team.name, Job.step)
        ).all()
        return [tuple(row) for row in rows]  # type: ignore[misc]


# --- when ------------------------------------------------------------------------------


def test_the_next_digest_falls_on_the_teams_day_and_time_in_its_own_zone() -> None:
    def schedule(weekday: int, minute: int, zone: str) -> digest.Schedule:
        return digest.Schedule(True, weekday, minute, zone, False, "console")

    london = schedule(1, 9 * 60, "Europe/London")
    assert digest.next_due(london, NOW) == datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    # Exactly at the moment: the next one, a week on.
    assert digest.next_due(london, START) == END
    new_york = schedule(5, 16 * 60, "America/New_York")
    assert digest.next_due(new_york, NOW) == datetime(2026, 11, 27, 21, 0, tzinfo=UTC)
    # Across the change to summer time, 09:00 stays 09:00 local (08:00 UTC).
    spring = datetime(2026, 3, 25, 12, 0, tzinfo=UTC)
    assert digest.next_due(london, spring) == datetime(2026, 3, 30, 8, 0, tzinfo=UTC)
    manila = schedule(1, 8 * 60, "Asia/Manila")  # Monday 08:00 there is 00:00 UTC
    due = digest.next_due(manila, NOW)
    assert due == datetime(2026, 11, 30, 0, 0, tzinfo=UTC)
    assert digest.week_step(manila, due) == 202649


def test_each_team_has_one_digest_planned_however_often_it_is_planned(demo: Services) -> None:
    jobs.plan(demo)
    jobs.plan(demo)
    planned = _digest_jobs(demo)
    assert [(name, state) for name, _, state, _ in planned] == [
        ("Accounts & Retention", JobState.PENDING),
        ("Billing", JobState.PENDING),
        ("Devices & Network", JobState.PENDING),
    ]
    billing = next(row for row in planned if row[0] == "Billing")
    assert billing[1] == 202649 and billing[3] == END


# --- what ------------------------------------------------------------------------------


def test_the_digest_of_a_seeded_week_has_the_figures_and_credits_the_team(
    demo: Services,
) -> None:
    _seed(demo)
    jobs.plan(demo)
    demo.clock.now = END + timedelta(seconds=5)  # type: ignore[attr-defined]
    assert jobs.run_due(demo) == 3
    expected = _expected("Billing")
    with demo.db.unit_of_work() as session:
        billing = session.scalar(select(Team).where(Team.name == "Billing"))
        found = digest.compute(session, billing, START, END)
    assert found.resolved == expected["resolved"] == 3
    assert found.first_expert_s == expected["median"] == 90
    assert found.first_expert_count == expected["count"] == 3
    assert found.answers == expected["answers"] == 3
    assert found.unanswered_huddles == expected["unanswered"] == 2
    assert found.unmatched_questions == expected["unmatched"] == 3
    assert {h.key: (h.huddles, h.answers) for h in found.helpers} == expected["helpers"]
    (text,) = [text for channel, text in _posts(demo) if channel == "billing"]
    assert text.startswith("Billing: your week, Mon 23 Nov 09:00 to Mon 30 Nov 2026 09:00")
    assert "Together, Billing resolved 3 huddle threads and wrote 3 answers." in text
    assert "The first expert replied in 1.5 minutes (median of 3 huddle threads)." in text
    assert (
        "Nobody could answer: 2 huddle threads with no expert reply, and 3 questions that "
        "found nobody: “refund to a closed bank account”, “voucher bought abroad”." in text
    )
    # The team's result, thanks in alphabetical order, and no counts per person.
    assert (
        "Thanks to everyone who helped, among them Maria Santos, Omar Haddad and Priya Sharma."
        in text
    )
    assert "helped most" not in text and "threads helped" not in text
    # Another team's week is its own.
    (other,) = [text for channel, text in _posts(demo) if channel == "devices-network"]
    assert "Together, Devices & Network resolved 1 huddle thread and wrote 2 answers." in other


def test_a_team_that_turns_the_leaderboard_on_sees_people_ranked(
    demo: Services, router: Router
) -> None:
    _seed(demo)
    said = say(demo, router, "priya", "team", "digest leaderboard on")
    assert notices(said)[0].severity == "success"
    demo.clock.now = END + timedelta(seconds=5)  # type: ignore[attr-defined]
    jobs.run_due(demo)
    (text,) = [text for channel, text in _posts(demo) if channel == "billing"]
    helpers = _expected("Billing")["helpers"]
    ranked = sorted(helpers.items(), key=lambda kv: (-sum(kv[1]), -kv[1][0]))  # type: ignore[attr-defined]
    assert "Who helped most:" in text
    assert "1. Maria Santos: 2 huddle threads helped, 1 answer" in text
    assert ranked[0][0] == "maria"


# --- once ------------------------------------------------------------------------------


def test_two_workers_post_each_teams_digest_once_a_week(demo: Services) -> None:
    """On PostgreSQL the claim is FOR UPDATE SKIP LOCKED; on SQLite writes take turns."""
    workers = [
        Services(open_database(demo.db.url), demo.settings, clock=demo.clock) for _ in range(2)
    ]
    errors: list[BaseException] = []

    def race(step: str) -> list[int]:
        fired: list[int] = []
        start = threading.Barrier(2)

        def work(services: Services, name: str) -> None:
            try:
                start.wait()
                jobs.plan(services)
                fired.append(jobs.run_due(services, worker=name))
                jobs.plan(services)
            except BaseException as error:  # reported below
                errors.append(error)

        threads = [
            threading.Thread(target=work, args=(w, f"{step}-{i}")) for i, w in enumerate(workers)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        return fired

    try:
        assert sum(race("plan")) == 0  # planned, nothing due yet
        demo.clock.now = END + timedelta(seconds=1)  # type: ignore[attr-defined]
        assert sum(race("week1")) == 3
        assert sum(race("week1-again")) == 0
        demo.clock.now = END + timedelta(days=7, seconds=1)  # type: ignore[attr-defined]
        assert sum(race("week2")) == 3
    finally:
        for worker in workers:
            worker.db.dispose()
    assert errors == []
    posts = [channel for channel, _ in _posts(demo)]
    assert sorted(posts) == sorted(["accounts-retention", "billing", "devices-network"] * 2)
    done = [(name, step) for name, step, state, _ in _digest_jobs(demo) if state == JobState.DONE]
    assert sorted(done) == sorted(
        (name, step)
        for name in ("Accounts & Retention", "Billing", "Devices & Network")
        for step in (202649, 202650)
    )
    with demo.db.unit_of_work() as session:
        pending = session.scalar(
            select(func.count(Job.id)).where(Job.kind == digest.KIND, Job.state == JobState.PENDING)
        )
    assert pending == 3  # each team's next one


# --- the team's settings ---------------------------------------------------------------


def test_a_lead_moves_or_stops_the_digest_and_only_a_lead(demo: Services, router: Router) -> None:
    jobs.plan(demo)
    refused = say(demo, router, "maria", "team", "digest off")
    assert notices(refused)[0].severity == "error"
    moved = say(demo, router, "priya", "team", "digest day friday 16:30")
    assert notices(moved)[0].text == (
        "Billing's weekly digest: every Friday at 16:30. Next: Fri 27 Nov 16:30 Europe/London."
    )
    zoned = say(demo, router, "priya", "team", "digest timezone Asia/Manila")
    assert "Next: Fri 27 Nov 16:30 Asia/Manila" in notices(zoned)[0].text
    billing = [row for row in _digest_jobs(demo) if row[0] == "Billing"]
    assert [(state, due) for _, _, state, due in billing if state == JobState.PENDING] == [
        (JobState.PENDING, datetime(2026, 11, 27, 8, 30, tzinfo=UTC))
    ]
    off = say(demo, router, "priya", "team", "digest off")
    assert notices(off)[0].text == "Billing's weekly digest is off."
    demo.clock.now = END + timedelta(days=1)  # type: ignore[attr-defined]
    jobs.plan(demo)
    jobs.run_due(demo)
    assert "billing" not in [channel for channel, _ in _posts(demo)]
    assert "off for Billing" in str(say(demo, router, "priya", "team", "digest"))
    on = say(demo, router, "priya", "team", "digest on")
    assert "Next: Fri 04 Dec 16:30 Asia/Manila" in notices(on)[0].text
    for bad, said in (
        ("digest day someday", "is not a day and time"),
        ("digest day friday 25:00", "is not a day and time"),
        ("digest timezone Mars/Olympus", "is not a time zone"),
        ("digest sometimes", "Usage: `team digest`"),
    ):
        assert said in notices(say(demo, router, "priya", "team", bad))[0].text
    audited = [(r.actor_label, r.allowed) for r in audit_rows(demo) if r.action == "team.digest"]
    assert audited == [("maria", False)] + [("priya", True)] * 4


def test_anyone_in_the_team_sees_the_last_digest_now(demo: Services, router: Router) -> None:
    _seed(demo)
    demo.clock.now = END + timedelta(hours=2)  # type: ignore[attr-defined]
    shown = render(say(demo, router, "alex", "team", "digest"))
    assert "Together, Billing resolved 3 huddle threads and wrote 3 answers." in shown
    assert "Posted to #billing every Monday at 09:00 (Europe/London)." in shown
