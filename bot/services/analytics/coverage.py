"""Coverage: per tag, who holds it at which level, who is available now, and how
often it is asked about.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, selectinload

from bot.db.models import (
    Person,
    QueryLog,
    Skill,
    Tag,
)
from bot.services import presence
from bot.services.analytics.gaps import GAP_QUESTIONS
from bot.services.analytics.scope import Scope, teams_in

# Questions asked about a tag are counted over this window.
ASKED_DAYS = 30


@dataclass(frozen=True)
class Cell:
    experts: int = 0
    available: int = 0


@dataclass(frozen=True)
class CoverageRow:
    tag: str
    parent: str | None
    cells: tuple[Cell, ...]  # one per team of Coverage.teams, in that order
    # Across the whole org, whatever the scope: a lone expert is a risk for everyone.
    org_experts: int
    asked: int  # questions naming the tag in the last ASKED_DAYS

    @property
    def experts(self) -> int:
        return sum(cell.experts for cell in self.cells)

    @property
    def available(self) -> int:
        return sum(cell.available for cell in self.cells)

    @property
    def single_expert(self) -> bool:
        return self.org_experts == 1

    @property
    def gap(self) -> bool:
        """Asked about, and nobody holds it."""
        return self.org_experts == 0 and self.asked > 0


@dataclass(frozen=True)
class Coverage:
    teams: tuple[str, ...]
    rows: tuple[CoverageRow, ...]

    @property
    def single_expert(self) -> list[CoverageRow]:
        return [row for row in self.rows if row.single_expert]

    @property
    def gaps(self) -> list[CoverageRow]:
        return [row for row in self.rows if row.gap]

    @property
    def uncovered(self) -> list[CoverageRow]:
        return [row for row in self.rows if row.org_experts == 0]


def available_people(session: Session, now: datetime, scope: Scope) -> set[int]:
    """Who is available now, as a who-knows card would show them (status and shift)."""
    found = session.scalars(
        select(Person)
        .where(Person.deleted_at.is_(None), scope.where(Person.team_id))
        .where(Person.id.in_(select(Skill.person_id)))
        .options(selectinload(Person.presence))
    )
    return {person.id for person in found if presence.current(person, now).reachable}


def coverage(session: Session, now: datetime, scope: Scope) -> Coverage:
    """Experts (and how many are available now) per tag and team."""
    teams = teams_in(session, scope)
    available = sorted(available_people(session, now, scope))
    counts = session.execute(
        select(
            Skill.tag_id,
            Person.team_id,
            func.count(Skill.id),
            func.sum(case((Person.id.in_(available), 1), else_=0)),
        )
        .join(Person, Person.id == Skill.person_id)
        .where(Person.deleted_at.is_(None))
        .group_by(Skill.tag_id, Person.team_id)
    ).all()
    cells: dict[tuple[int, int | None], Cell] = {}
    org: dict[int, int] = defaultdict(int)
    for tag_id, team_id, experts, free in counts:
        org[tag_id] += int(experts)
        if scope.allows(team_id):
            cells[tag_id, team_id] = Cell(int(experts), int(free or 0))
    tags = session.scalars(
        select(Tag).options(selectinload(Tag.parent), selectinload(Tag.aliases))
    ).all()
    asked = questions_per_tag(session, tags, now - timedelta(days=ASKED_DAYS))
    rows = [
        CoverageRow(
            tag=tag.name,
            parent=tag.parent.name if tag.parent else None,
            cells=tuple(cells.get((tag.id, team.id), Cell()) for team in teams),
            org_experts=org[tag.id],
            asked=asked.get(tag.id, 0),
        )
        for tag in tags
    ]
    # Parents first, each followed by its children, alphabetically.
    rows.sort(key=lambda row: (row.parent or row.tag, row.parent is not None, row.tag))
    return Coverage(tuple(team.name for team in teams), tuple(rows))


def _tag_pattern(tag: Tag) -> re.Pattern[str]:
    names = sorted({tag.name, *(alias.alias for alias in tag.aliases)}, key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(re.escape(name) for name in names) + r")\b")


def questions_per_tag(session: Session, tags: Iterable[Tag], since: datetime) -> dict[int, int]:
    """How many questions since `since` name each tag or one of its aliases."""
    texts = [
        (text or "").lower()
        for (text,) in session.execute(
            select(QueryLog.text)
            .where(QueryLog.created_at >= since)
            .order_by(QueryLog.id.desc())
            .limit(GAP_QUESTIONS)
        )
    ]
    if not texts:
        return {}
    counts = {}
    for tag in tags:
        pattern = _tag_pattern(tag)
        hits = sum(1 for text in texts if pattern.search(text))
        if hits:
            counts[tag.id] = hits
    return counts
