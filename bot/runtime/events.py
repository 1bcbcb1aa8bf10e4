"""Exactly-once handling of inbound platform events.

Platforms deliver at least once (Slack retries an event up to three times,
Teams may resend an activity); `first_delivery` records the event's key with
an insert that does nothing on conflict, so only the first delivery acts.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from bot.db.engine import insert_for
from bot.db.models import PlatformEvent


def first_delivery(session: Session, platform: str, key: str, now: datetime) -> bool:
    """True the first time this event is seen, False for every retry or duplicate."""
    insert = insert_for(session.get_bind().dialect.name)
    statement = (
        insert(PlatformEvent)
        .values(platform=platform, key=key[:200], received_at=now)
        .on_conflict_do_nothing()
        .returning(PlatformEvent.key)
    )
    # RETURNING, not rowcount: drivers differ on what rowcount says here.
    return session.execute(statement).first() is not None
