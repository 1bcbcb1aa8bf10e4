"""Mentors: who could teach a learner a topic, and the pairs a lead makes.

Suggestions are people with a *verified* skill on the topic: the learner's own team
first, then spread fairly, the fewest learners mentored now first and, among equals,
the one paired least recently (never paired first), then the higher level. So the
same expert is not everyone's mentor. Only a lead of the learner's team (or an
admin) pairs (`permissions.require_mentor_pairer`); every pairing and unpairing is
in the audit log, and both people hear of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from bot import messages
from bot.db.models import Mentorship, Person, Role, Skill, Tag
from bot.runtime import outbox
from bot.services import permissions
from bot.services.analytics.scope import Scope
from bot.types import Reply, Text

SUGGESTED = 3


class MentorError(ValueError):
    """A pairing that cannot be made as asked; the message says why."""


@dataclass(frozen=True)
class Suggestion:
    person: Person
    level: int
    same_team: bool
    mentees: int  # learners they mentor now
    last_paired: datetime | None


def suggest(
    session: Session, learner: Person, tag: Tag, limit: int = SUGGESTED
) -> list[Suggestion]:
    holders = session.execute(
        select(Person, Skill.level)
        .join(Skill, Skill.person_id == Person.id)
        .where(
            Skill.tag_id == tag.id,
            Skill.verified_at.is_not(None),
            Person.deleted_at.is_(None),
            Person.id != learner.id,
        )
        .options(selectinload(Person.team))
    ).all()
    ids = [person.id for person, _ in holders]
    if not ids:
        return []
    mentees = dict(
        session.execute(
            select(Mentorship.mentor_id, func.count(Mentorship.id))
            .where(Mentorship.mentor_id.in_(ids), Mentorship.ended_at.is_(None))
            .group_by(Mentorship.mentor_id)
        ).all()
    )
    last = dict(
        session.execute(
            select(Mentorship.mentor_id, func.max(Mentorship.paired_at))
            .where(Mentorship.mentor_id.in_(ids))
            .group_by(Mentorship.mentor_id)
        ).all()
    )
    found = [
        Suggestion(
            person,
            int(level),
            learner.team_id is not None and person.team_id == learner.team_id,
            int(mentees.get(person.id, 0)),
            last.get(person.id),
        )
        for person, level in holders
    ]
    found.sort(
        key=lambda s: (
            not s.same_team,
            s.mentees,
            s.last_paired is not None,
            s.last_paired.timestamp() if s.last_paired else 0.0,
            -s.level,
            s.person.display_name,
        )
    )
    return found[:limit]


def active_pair(session: Session, learner: Person, tag: Tag) -> Mentorship | None:
    return session.scalar(
        select(Mentorship).where(
            Mentorship.learner_id == learner.id,
            Mentorship.tag_id == tag.id,
            Mentorship.ended_at.is_(None),
        )
    )


def pair(
    session: Session,
    actor: Person,
    learner: Person,
    mentor: Person,
    tag: Tag,
    now: datetime,
    *,
    platform: str,
) -> tuple[Mentorship, bool]:
    """Pair them (ending another mentor's pairing for the topic); (pair, True) if new."""
    permissions.require_mentor_pairer(actor, learner, permissions.PAIR_MENTOR)
    if mentor.id == learner.id:
        raise MentorError(messages.MENTOR_SELF)
    holds = session.scalar(
        select(Skill.id).where(Skill.person_id == mentor.id, Skill.tag_id == tag.id)
    )
    if holds is None:
        raise MentorError(messages.MENTOR_NO_SKILL.format(name=mentor.display_name, tag=tag.name))
    # Serialised on the learner's row: a double click makes one pair.
    session.execute(select(Person.id).where(Person.id == learner.id).with_for_update())
    current = active_pair(session, learner, tag)
    if current is not None and current.mentor_id == mentor.id:
        return current, False
    if current is not None:
        current.ended_at = now
    made = Mentorship(learner=learner, mentor=mentor, tag=tag, paired_by=actor, paired_at=now)
    session.add(made)
    session.flush()
    permissions.allowed(
        session,
        actor,
        permissions.PAIR_MENTOR,
        f"person:{learner.key}",
        mentor=mentor.key,
        tag=tag.name,
        replaced=current.mentor.key if current is not None else None,
    )
    said = messages.MENTOR_PAIRED_DM.format(
        lead=actor.display_name,
        learner=learner.display_name,
        mentor=mentor.display_name,
        tag=tag.name,
    )
    for person in {learner.id: learner, mentor.id: mentor}.values():
        there = outbox.reach(session, person.id, platform)
        if person.id != actor.id and there is not None:
            outbox.enqueue(
                session,
                platform=there,
                kind="dm",
                person_id=person.id,
                reply=Reply.of(Text(said), private=False),
                now=now,
            )
    return made, True


def unpair(session: Session, actor: Person, learner: Person, tag: Tag, now: datetime) -> Mentorship:
    permissions.require_mentor_pairer(actor, learner, permissions.UNPAIR_MENTOR)
    current = active_pair(session, learner, tag)
    if current is None:
        raise MentorError(
            messages.MENTOR_NO_PAIR.format(learner=learner.display_name, tag=tag.name)
        )
    current.ended_at = now
    permissions.allowed(
        session,
        actor,
        permissions.UNPAIR_MENTOR,
        f"person:{learner.key}",
        mentor=current.mentor.key,
        tag=tag.name,
    )
    return current


def leads_of(session: Session, person: Person) -> list[Person]:
    if person.team_id is None:
        return []
    return list(
        session.scalars(
            select(Person)
            .where(
                Person.team_id == person.team_id,
                Person.role == Role.LEAD,
                Person.deleted_at.is_(None),
                Person.id != person.id,
            )
            .order_by(Person.id)
        )
    )


def ask_leads(
    session: Session, leads: list[Person], asked: Reply, now: datetime, platform: str
) -> list[Person]:
    """A learner's request for a mentor, to each lead where they can be reached (the
    platform asked on first): the leads it went to."""
    reached = []
    for lead in leads:
        there = outbox.reach(session, lead.id, platform)
        if there is None:
            continue
        outbox.enqueue(session, platform=there, kind="dm", person_id=lead.id, reply=asked, now=now)
        reached.append(lead)
    return reached


@dataclass(frozen=True)
class PairView:
    id: int
    learner_key: str
    learner: str
    mentor_key: str
    mentor: str
    mentor_team: str | None
    tag: str
    paired_by: str | None
    paired_at: datetime


def pairs(session: Session, scope: Scope, learner: Person | None = None) -> list[PairView]:
    """Open pairs whose learner is in the scope (or is `learner`), newest first."""
    query = (
        select(Mentorship)
        .join(Person, Person.id == Mentorship.learner_id)
        .where(Mentorship.ended_at.is_(None), Person.deleted_at.is_(None))
        .options(
            selectinload(Mentorship.learner),
            selectinload(Mentorship.mentor).selectinload(Person.team),
            selectinload(Mentorship.paired_by),
            selectinload(Mentorship.tag),
        )
        .order_by(Mentorship.paired_at.desc(), Mentorship.id.desc())
    )
    if learner is not None:
        query = query.where(Mentorship.learner_id == learner.id)
    else:
        query = query.where(scope.where(Person.team_id))
    return [
        PairView(
            m.id,
            m.learner.key,
            m.learner.display_name,
            m.mentor.key,
            m.mentor.display_name,
            m.mentor.team.name if m.mentor.team else None,
            m.tag.name,
            m.paired_by.display_name if m.paired_by else None,
            m.paired_at,
        )
        for m in session.scalars(query)
    ]
