"""Whose numbers: the org or a team, and the weeks and periods they are counted over.

Counting and date arithmetic happen in SQL on SQLite and PostgreSQL alike; the two
dialects differ only in `week_of` and `seconds_between`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, extract, func, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import SQLCoreOperations

from bot.db.models import (
    Person,
    Role,
    Team,
)

PERIODS = {"week": 7, "month": 30}


@dataclass(frozen=True)
class Scope:
    """Whose numbers a reader may see: `team_ids` None means the whole org."""

    team_ids: frozenset[int] | None

    @classmethod
    def everything(cls) -> Scope:
        return cls(None)

    @classmethod
    def for_person(cls, person: Person) -> Scope:
        if person.role == Role.ADMIN:
            return cls(None)
        if person.role == Role.LEAD and person.team_id is not None:
            return cls(frozenset({person.team_id}))
        return cls(frozenset())

    def where(self, column: SQLCoreOperations[int | None]) -> ColumnElement[bool]:
        if self.team_ids is None:
            return true()
        return column.in_(sorted(self.team_ids))

    def allows(self, team_id: int | None) -> bool:
        return self.team_ids is None or team_id in self.team_ids


def teams_in(session: Session, scope: Scope) -> list[Team]:
    return list(session.scalars(select(Team).where(scope.where(Team.id)).order_by(Team.name)))


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def week_of(session: Session, column: ColumnElement[datetime]) -> ColumnElement[str]:
    """The Monday (UTC) of the week a timestamp falls in, as YYYY-MM-DD."""
    if _dialect(session) == "postgresql":
        monday = func.date_trunc("week", func.timezone("UTC", column))
        return func.to_char(monday, "YYYY-MM-DD")
    # SQLite: forward to Sunday (or stay on it), then back six days.
    return func.date(column, "weekday 0", "-6 days")


def seconds_between(
    session: Session, start: ColumnElement[datetime], end: ColumnElement[datetime]
) -> ColumnElement[float]:
    if _dialect(session) == "postgresql":
        return extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def count_by(session: Session, query: Select[tuple[Any, int]]) -> dict[Any, int]:
    """A (key, count) query as a dict; a row with no key (no team, say) is left out."""
    return {key: int(count or 0) for key, count in session.execute(query) if key is not None}


def week_start(moment: datetime | date) -> date:
    day = moment.date() if isinstance(moment, datetime) else moment
    return day - timedelta(days=day.weekday())


def recent_weeks(now: datetime, count: int) -> list[date]:
    """The Mondays of the last `count` weeks, oldest first, this week last."""
    this_week = week_start(now)
    return [this_week - timedelta(weeks=n) for n in reversed(range(count))]


def period_bounds(period: str, now: datetime) -> tuple[datetime, datetime]:
    """`week` or `month`: the last 7 or 30 days up to now."""
    if period not in PERIODS:
        raise ValueError(f"unknown period {period!r} (use {', '.join(PERIODS)})")
    return now - timedelta(days=PERIODS[period]), now
