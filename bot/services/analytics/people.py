"""People for the leads: a row per person, their skills, recent help, current load and
the audit entries about them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, selectinload

from bot.db.models import (
    AuditEntry,
    Huddle,
    HuddleParticipant,
    HuddleState,
    KnowledgeAuthor,
    KnowledgeTag,
    Person,
    Skill,
)
from bot.services import presence
from bot.services.analytics.huddles import HuddleRow, huddle_rows
from bot.services.analytics.kpis import TOP
from bot.services.analytics.scope import Scope, count_by


@dataclass(frozen=True)
class PersonSummary:
    key: str
    name: str
    team: str | None
    role: str
    status: str
    skills: int
    verified: int
    load: int  # open huddles they are invited to and have not declined
    helped: int  # huddles they replied in since `since`


def people_rows(
    session: Session, now: datetime, since: datetime, scope: Scope
) -> list[PersonSummary]:
    skills = (
        select(
            Skill.person_id,
            func.count(Skill.id).label("n"),
            func.count(Skill.verified_at).label("verified"),
        )
        .group_by(Skill.person_id)
        .subquery()
    )
    load = (
        select(HuddleParticipant.person_id, func.count().label("n"))
        .join(Huddle, Huddle.id == HuddleParticipant.huddle_id)
        .where(
            Huddle.state == HuddleState.OPEN,
            HuddleParticipant.invited.is_(True),
            HuddleParticipant.declined_at.is_(None),
        )
        .group_by(HuddleParticipant.person_id)
        .subquery()
    )
    helped = (
        select(HuddleParticipant.person_id, func.count().label("n"))
        .where(HuddleParticipant.first_reply_at >= since)
        .group_by(HuddleParticipant.person_id)
        .subquery()
    )
    query = (
        select(
            Person,
            func.coalesce(skills.c.n, 0),
            func.coalesce(skills.c.verified, 0),
            func.coalesce(load.c.n, 0),
            func.coalesce(helped.c.n, 0),
        )
        .outerjoin(skills, skills.c.person_id == Person.id)
        .outerjoin(load, load.c.person_id == Person.id)
        .outerjoin(helped, helped.c.person_id == Person.id)
        .where(Person.deleted_at.is_(None), scope.where(Person.team_id))
        .options(selectinload(Person.team), selectinload(Person.presence))
        .order_by(Person.display_name, Person.key)
    )
    return [
        PersonSummary(
            person.key,
            person.display_name,
            person.team.name if person.team else None,
            person.role.value,
            presence.current(person, now).label,
            int(n),
            int(verified),
            int(busy),
            int(recent),
        )
        for person, n, verified, busy, recent in session.execute(query)
    ]


@dataclass(frozen=True)
class SkillView:
    tag: str
    level: int
    source: str
    verified_at: datetime | None
    verified_by: str | None
    evidence: int  # knowledge entries they wrote carrying this tag


def skill_views(session: Session, person: Person) -> list[SkillView]:
    evidence = count_by(
        session,
        select(KnowledgeTag.tag_id, func.count(KnowledgeTag.entry_id))
        .join(KnowledgeAuthor, KnowledgeAuthor.entry_id == KnowledgeTag.entry_id)
        .where(KnowledgeAuthor.person_id == person.id)
        .group_by(KnowledgeTag.tag_id),
    )
    skills = session.scalars(
        select(Skill)
        .where(Skill.person_id == person.id)
        .options(selectinload(Skill.tag), selectinload(Skill.verified_by))
    ).all()
    views = [
        SkillView(
            skill.tag.name,
            skill.level,
            skill.source.value,
            skill.verified_at,
            skill.verified_by.display_name if skill.verified_by else None,
            int(evidence.get(skill.tag_id, 0)),
        )
        for skill in skills
    ]
    views.sort(key=lambda view: (-view.level, view.tag))
    return views


def recent_help(session: Session, person: Person, since: datetime) -> list[HuddleRow]:
    """Huddles the person replied in since `since`, newest first."""
    ids = select(HuddleParticipant.huddle_id).where(
        HuddleParticipant.person_id == person.id, HuddleParticipant.first_reply_at >= since
    )
    return huddle_rows(session, Huddle.id.in_(ids), TOP)


def current_load(session: Session, person: Person) -> list[HuddleRow]:
    """Open huddles the person is invited to and has not declined."""
    ids = select(HuddleParticipant.huddle_id).where(
        HuddleParticipant.person_id == person.id,
        HuddleParticipant.invited.is_(True),
        HuddleParticipant.declined_at.is_(None),
    )
    return huddle_rows(session, and_(Huddle.id.in_(ids), Huddle.state == HuddleState.OPEN), TOP)


def audit_about(session: Session, target: str, limit: int = 20) -> list[AuditEntry]:
    return list(
        session.scalars(
            select(AuditEntry)
            .where(AuditEntry.target == target)
            .order_by(AuditEntry.id.desc())
            .limit(limit)
        )
    )
