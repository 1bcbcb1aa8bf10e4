"""Known activity on top of the demo org: huddles with set reply times, outcomes and helpers.

The leads' numbers are checked against this table, in unit tests and in the browser.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.db.models import Huddle, HuddleParticipant, HuddleState, KnowledgeEntry, Team
from bot.services import Services, people
from tests.conftest import NOW

HOUR, DAY, WEEK = timedelta(hours=1), timedelta(days=1), timedelta(weeks=1)
RESOLVED, EXPIRED, OPEN = HuddleState.RESOLVED, HuddleState.EXPIRED, HuddleState.OPEN

# team, asker, opened (before NOW), seconds to the first reply, helpers, state,
# closed (before NOW), ladder step. NOW is a Monday 10:00, so "this week" began at midnight.
HUDDLES: list[
    tuple[str, str, timedelta, float | None, tuple[str, ...], HuddleState, timedelta | None, int]
] = [
    ("Billing", "alex", 2 * HOUR, 45, ("maria",), RESOLVED, HOUR, 0),
    ("Billing", "omar", HOUR, 240, ("maria", "tomasz"), OPEN, None, 0),
    ("Billing", "ewa", HOUR / 2, None, (), OPEN, None, 2),
    # Last week.
    ("Billing", "alex", WEEK, 100, ("tomasz",), RESOLVED, WEEK - HOUR, 1),
    ("Devices & Network", "zoe", WEEK + DAY, 4000, ("kwame",), RESOLVED, 6 * DAY, 0),
    ("Devices & Network", "zoe", WEEK, None, (), EXPIRED, WEEK - 8 * HOUR, 3),
    # Five weeks ago: outside every window the tests look at.
    ("Billing", "alex", 5 * WEEK, 30, ("hannah",), RESOLVED, 5 * WEEK, 0),
]


def team_id(session: Session, name: str) -> int:
    found = session.scalar(select(Team.id).where(Team.name == name))
    assert found is not None, f"no team {name!r}"
    return found


def add_huddle(
    session: Session,
    team: str,
    asker: str,
    opened: datetime,
    reply_after_s: float | None,
    helpers: tuple[str, ...],
    state: HuddleState,
    closed: datetime | None,
    ladder_step: int,
) -> Huddle:
    replied = opened + timedelta(seconds=reply_after_s) if reply_after_s else None
    huddle = Huddle(
        topic=f"question from {asker} at {opened:%a %H:%M}",
        requester=people.by_key(session, asker),
        team_id=team_id(session, team),
        state=state,
        created_at=opened,
        first_reply_at=replied,
        closed_at=closed,
        ladder_step=ladder_step,
    )
    session.add(huddle)
    for key in helpers:
        helper = people.by_key(session, key)
        huddle.participants.append(
            HuddleParticipant(person=helper, invited_at=opened, first_reply_at=replied)
        )
    session.flush()
    return huddle


def seed_huddles(services: Services) -> None:
    with services.db.unit_of_work() as session:
        # The demo's answers were written whenever its template was seeded: long ago, here.
        session.execute(update(KnowledgeEntry).values(created_at=NOW - timedelta(days=400)))
        for team, asker, ago, reply_s, helpers, state, closed_ago, step in HUDDLES:
            closed = NOW - closed_ago if closed_ago is not None else None
            add_huddle(session, team, asker, NOW - ago, reply_s, helpers, state, closed, step)
