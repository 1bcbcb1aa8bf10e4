"""Huddle threads for the leads: open and closed lists, time to the first expert, and
weekly outcomes.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.orm import Session, selectinload

from bot.db.models import (
    Huddle,
    HuddleParticipant,
    HuddleState,
)
from bot.services.analytics.scope import (
    Scope,
    count_by,
    recent_weeks,
    seconds_between,
    teams_in,
    week_of,
)

# Time to the first expert reply, in buckets: (upper bound in seconds, label).
REPLY_BUCKETS: tuple[tuple[float | None, str], ...] = (
    (60, "< 1 min"),
    (180, "1–3 min"),
    (600, "3–10 min"),
    (1800, "10–30 min"),
    (3600, "30–60 min"),
    (None, "≥ 1 h"),
)


@dataclass(frozen=True)
class HuddleRow:
    id: int
    topic: str
    team: str | None
    state: str
    requester: str | None
    created_at: datetime
    closed_at: datetime | None
    first_reply_s: float | None
    ladder_step: int
    experts: tuple[str, ...]


def huddle_rows(session: Session, condition: ColumnElement[bool], limit: int) -> list[HuddleRow]:
    """Huddles meeting `condition`, newest first."""
    query = (
        select(Huddle)
        .where(condition)
        .options(
            selectinload(Huddle.participants).selectinload(HuddleParticipant.person),
            selectinload(Huddle.requester),
            selectinload(Huddle.team),
        )
        .order_by(Huddle.created_at.desc(), Huddle.id.desc())
        .limit(limit)
    )
    return [
        HuddleRow(
            id=huddle.id,
            topic=huddle.topic,
            team=huddle.team.name if huddle.team else None,
            state=huddle.state.value,
            requester=huddle.requester.display_name if huddle.requester else None,
            created_at=huddle.created_at,
            closed_at=huddle.closed_at,
            first_reply_s=(huddle.first_reply_at - huddle.created_at).total_seconds()
            if huddle.first_reply_at
            else None,
            ladder_step=huddle.ladder_step,
            experts=tuple(p.person.display_name for p in huddle.participants if p.invited),
        )
        for huddle in session.scalars(query)
    ]


def open_huddles(session: Session, scope: Scope, limit: int = 50) -> list[HuddleRow]:
    condition = and_(Huddle.state == HuddleState.OPEN, scope.where(Huddle.team_id))
    return huddle_rows(session, condition, limit)


def closed_huddles(
    session: Session, since: datetime, scope: Scope, limit: int = 50
) -> list[HuddleRow]:
    condition = and_(
        Huddle.state != HuddleState.OPEN, Huddle.closed_at >= since, scope.where(Huddle.team_id)
    )
    return huddle_rows(session, condition, limit)


@dataclass(frozen=True)
class Bucket:
    label: str
    upper_s: float | None
    count: int


def _bucket_case(seconds: ColumnElement[float]) -> ColumnElement[int]:
    whens = [
        (seconds < upper, index)
        for index, (upper, _) in enumerate(REPLY_BUCKETS)
        if upper is not None
    ]
    return case(*whens, else_=len(REPLY_BUCKETS) - 1)


def reply_time_buckets(session: Session, since: datetime, scope: Scope) -> list[Bucket]:
    """How long huddles opened since `since` waited for their first expert reply."""
    seconds = seconds_between(session, Huddle.created_at, Huddle.first_reply_at)
    bucket = _bucket_case(seconds)
    counts = count_by(
        session,
        select(bucket, func.count(Huddle.id))
        .where(
            Huddle.first_reply_at.is_not(None),
            Huddle.created_at >= since,
            scope.where(Huddle.team_id),
        )
        .group_by(bucket),
    )
    return [
        Bucket(label, upper, int(counts.get(index, 0)))
        for index, (upper, label) in enumerate(REPLY_BUCKETS)
    ]


@dataclass(frozen=True)
class WeekReply:
    week: date
    replied: int  # huddles opened that week that got an expert reply
    median_s: float | None


def reply_time_trend(session: Session, now: datetime, weeks: int, scope: Scope) -> list[WeekReply]:
    """The median time to a first expert reply, week by week (by the week a huddle opened)."""
    axis = recent_weeks(now, weeks)
    week = week_of(session, Huddle.created_at)
    seconds = seconds_between(session, Huddle.created_at, Huddle.first_reply_at)
    found: dict[str, list[float]] = defaultdict(list)
    for label, value in session.execute(
        select(week, seconds).where(
            Huddle.first_reply_at.is_not(None),
            Huddle.created_at >= datetime.combine(axis[0], datetime.min.time(), now.tzinfo),
            scope.where(Huddle.team_id),
        )
    ):
        found[label].append(max(float(value), 0.0))
    trend = []
    for monday in axis:
        values = found.get(monday.isoformat(), [])
        trend.append(WeekReply(monday, len(values), statistics.median(values) if values else None))
    return trend


@dataclass(frozen=True)
class WeekTeam:
    week: date
    team: str
    opened: int
    resolved: int
    escalated: int  # climbed at least one ladder step

    @property
    def resolution_rate(self) -> float | None:
        return self.resolved / self.opened if self.opened else None


def weekly_outcomes(session: Session, now: datetime, weeks: int, scope: Scope) -> list[WeekTeam]:
    """Per week opened and per team: huddles, resolved ones, escalated ones (zeros included)."""
    axis = recent_weeks(now, weeks)
    week = week_of(session, Huddle.created_at)
    rows = session.execute(
        select(
            week,
            Huddle.team_id,
            func.count(Huddle.id),
            func.sum(case((Huddle.state == HuddleState.RESOLVED, 1), else_=0)),
            func.sum(case((Huddle.ladder_step > 0, 1), else_=0)),
        )
        .where(
            Huddle.created_at >= datetime.combine(axis[0], datetime.min.time(), now.tzinfo),
            scope.where(Huddle.team_id),
            Huddle.team_id.is_not(None),
        )
        .group_by(week, Huddle.team_id)
    ).all()
    found = {
        (label, team_id): (int(n), int(r or 0), int(e or 0)) for label, team_id, n, r, e in rows
    }
    teams = teams_in(session, scope)
    return [
        WeekTeam(monday, team.name, *found.get((monday.isoformat(), team.id), (0, 0, 0)))
        for monday in axis
        for team in teams
    ]
