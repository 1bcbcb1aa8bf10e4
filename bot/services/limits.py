"""What one person can make whoknows do to others: huddle threads and the messages they send.

A huddle thread messages each expert it invites, then escalates (more experts,
a team channel, the lead). One person may name at most `MAX_NAMED_EXPERTS`
experts for one thread, and open at most `Settings.huddle_limit` threads, asking
at most `Settings.invite_limit` colleagues in them, in any `WINDOW`: past that
they are told to wait, kindly, and nobody is messaged.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot import messages
from bot.config import Settings
from bot.db.models import Huddle, HuddleParticipant, Person

# Experts one huddle thread may name (typed as @mentions, or picked on a button).
MAX_NAMED_EXPERTS = 5
WINDOW = timedelta(minutes=10)


class TooMany(ValueError):
    """More than one person may ask of others; the message says what to do instead."""


def require_few_named(count: int) -> None:
    if count > MAX_NAMED_EXPERTS:
        raise TooMany(messages.HUDDLE_TOO_MANY_EXPERTS.format(limit=MAX_NAMED_EXPERTS, count=count))


def require_room_for_huddle(
    session: Session, settings: Settings, requester: Person, now: datetime, inviting: int
) -> None:
    """TooMany when `requester` opening a huddle thread that invites `inviting` experts
    would pass their limits for the last WINDOW (the experts their threads invited
    since, escalations included, count as the messages they caused)."""
    since = now - WINDOW
    opened, invited = session.execute(
        select(func.count(func.distinct(Huddle.id)), func.count(HuddleParticipant.id))
        .select_from(Huddle)
        .outerjoin(
            HuddleParticipant,
            (HuddleParticipant.huddle_id == Huddle.id) & HuddleParticipant.invited.is_(True),
        )
        .where(Huddle.requester_id == requester.id, Huddle.created_at >= since)
    ).one()
    minutes = int(WINDOW.total_seconds() // 60)
    if opened >= settings.huddle_limit:
        raise TooMany(messages.HUDDLE_TOO_MANY_OPENED.format(count=opened, minutes=minutes))
    if invited + inviting > settings.invite_limit:
        raise TooMany(messages.HUDDLE_TOO_MANY_INVITED.format(count=invited, minutes=minutes))
