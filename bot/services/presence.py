"""Presence: the status people set, its expiry, and their working hours."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.orm import Session

from bot.db.models import Person, Presence, Status
from bot.types import PresenceView

OFF_SHIFT = "off_shift"
LABELS = {
    Status.AVAILABLE.value: "available",
    Status.BUSY.value: "busy",
    Status.AWAY.value: "away",
    Status.ON_CALL.value: "on a call",
    Status.OFF.value: "off",
    OFF_SHIFT: "off shift",
}
# How reachable a status is: ranking shows lower tiers first.
TIERS = {
    Status.AVAILABLE.value: 0,
    Status.BUSY.value: 1,
    Status.ON_CALL.value: 1,
    Status.AWAY.value: 2,
    Status.OFF.value: 3,
    OFF_SHIFT: 3,
}
_DURATION = re.compile(r"^(?:(\d{1,3})\s*d)?\s*(?:(\d{1,3})\s*h)?\s*(?:(\d{1,4})\s*m(?:in)?)?$")
MAX_DURATION = timedelta(days=14)


def parse_duration(text: str) -> timedelta | None:
    """`30m`, `2h`, `1h30m`, `1d`, or a bare number of minutes; None if not a duration."""
    text = text.strip().lower().removeprefix("for ").strip()
    if text.isdigit():
        return timedelta(minutes=int(text)) if 0 < int(text) <= 20_160 else None
    match = _DURATION.match(text)
    if not text or match is None or not any(match.groups()):
        return None
    days, hours, minutes = (int(g) if g else 0 for g in match.groups())
    duration = timedelta(days=days, hours=hours, minutes=minutes)
    return duration if timedelta(0) < duration <= MAX_DURATION else None


class _Stated(Protocol):
    @property
    def status(self) -> Status: ...
    @property
    def until(self) -> datetime | None: ...


class Reachable(Protocol):
    """What presence reads of a person: a `Person`, or a ranking's plain row."""

    @property
    def timezone(self) -> str: ...
    @property
    def work_start_min(self) -> int: ...
    @property
    def work_end_min(self) -> int: ...
    @property
    def work_days(self) -> str: ...
    @property
    def presence(self) -> _Stated | None: ...


def zone(person: Reachable) -> ZoneInfo:
    try:
        return ZoneInfo(person.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def valid_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def on_shift(person: Reachable, now: datetime) -> bool:
    local = now.astimezone(zone(person))
    minute = local.hour * 60 + local.minute
    start, end = person.work_start_min, person.work_end_min
    if start == end:
        return True  # no hours set: always on shift
    if start < end:
        return str(local.isoweekday()) in person.work_days and start <= minute < end
    # A night shift belongs to the day it started on.
    if minute >= start:
        return str(local.isoweekday()) in person.work_days
    yesterday = (local - timedelta(days=1)).isoweekday()
    return minute < end and str(yesterday) in person.work_days


def set_status(
    session: Session,
    person: Person,
    status: Status,
    now: datetime,
    duration: timedelta | None = None,
    source: str = "bot",
) -> Presence:
    presence = person.presence
    if presence is None:
        presence = Presence(person=person, status=status)
        session.add(presence)
    presence.status = status
    presence.source = source
    presence.until = now + duration if duration else None
    presence.updated_at = now
    return presence


def _state(person: Reachable, now: datetime) -> tuple[str, datetime | None]:
    """The status that holds now, and when it ends (None: open-ended, or a shift)."""
    presence = person.presence
    if presence is not None and (presence.until is None or presence.until > now):
        # A status holds while it lasts, except an open-ended "available", which
        # holds only during working hours (people forget to say they left).
        open_ended_available = presence.status == Status.AVAILABLE and presence.until is None
        if not open_ended_available or on_shift(person, now):
            return presence.status.value, presence.until
    return (Status.AVAILABLE.value if on_shift(person, now) else OFF_SHIFT), None


def status(person: Reachable, now: datetime) -> str:
    """The status to rank by: `current(...).status`, without the clock times to show."""
    return _state(person, now)[0]


def current(person: Reachable, now: datetime) -> PresenceView:
    """What to show for a person now: a status that has not expired, else their shift."""
    state, until = _state(person, now)
    local = zone(person)
    until_local = until.astimezone(local).strftime("%H:%M") if until else None
    return PresenceView(
        state, LABELS[state], until, now.astimezone(local).strftime("%H:%M"), until_local
    )


def format_hours(person: Person) -> str:
    def hhmm(minutes: int) -> str:
        return f"{minutes // 60:02d}:{minutes % 60:02d}"

    return f"{hhmm(person.work_start_min)}–{hhmm(person.work_end_min)} {person.timezone}"


def parse_hours(text: str) -> tuple[int, int] | None:
    match = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*[-–]\s*(\d{1,2}):(\d{2})\s*", text)
    if match is None:
        return None
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59:
        return None
    return h1 * 60 + m1, (h2 * 60 + m2) % (24 * 60)
