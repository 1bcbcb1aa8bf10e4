"""Learning goals and shadowing: what someone wants to learn, the huddle threads they
observe on it, their progress, and the growth timeline a lead reads with them.

A goal covers its topic and the topic's children (learning "billing" counts a thread
on "refunds"). When a huddle thread opens on such a topic in the learner's team, up
to `huddle_observers` learners are invited as observers: never the asker or an
invited expert, only people available now and reachable on the thread's platform,
the ones who observed least lately first. Observers are rows of their own
(`HuddleObserver`), not participants, so the escalation ladder, who may resolve, and
the time to the first expert never count them; what they write in the thread is
not an expert reply. They are mentioned once, in one line with a *Leave* button.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from bot import messages
from bot.db.models import (
    AuditEntry,
    Huddle,
    HuddleObserver,
    HuddleParticipant,
    Identity,
    KnowledgeAuthor,
    KnowledgeEntry,
    KnowledgeTag,
    LearningGoal,
    Mentorship,
    Person,
    Skill,
    Tag,
)
from bot.runtime import outbox
from bot.services import presence
from bot.services.audit import record
from bot.types import Actions, Button, Line, Mention, Reply

MAX_GOALS = 5
# Fairness among learners: who observed least in this window goes first.
FAIRNESS_WINDOW = timedelta(days=30)
LEAVE_ACTION = "huddle.leave"


class LearningError(ValueError):
    """A goal or an observation that cannot be changed as asked; the message says why."""


# --- goals -----------------------------------------------------------------------------


def active_goals(session: Session, person: Person) -> list[LearningGoal]:
    return list(
        session.scalars(
            select(LearningGoal)
            .where(LearningGoal.person_id == person.id, LearningGoal.ended_at.is_(None))
            .options(selectinload(LearningGoal.tag))
            .order_by(LearningGoal.set_at, LearningGoal.id)
        )
    )


def _active(session: Session, person: Person, tag: Tag) -> LearningGoal | None:
    return session.scalar(
        select(LearningGoal).where(
            LearningGoal.person_id == person.id,
            LearningGoal.tag_id == tag.id,
            LearningGoal.ended_at.is_(None),
        )
    )


def _lock(session: Session, person: Person) -> None:
    # One open goal a topic: two clicks at once are serialised on the person's row.
    session.execute(select(Person.id).where(Person.id == person.id).with_for_update())


def learn(session: Session, person: Person, tag: Tag, now: datetime) -> tuple[LearningGoal, bool]:
    """Set a learning goal; (the goal, True) when it is new, (the open one, False) if any."""
    _lock(session, person)
    goal = _active(session, person, tag)
    if goal is not None:
        return goal, False
    count = len(active_goals(session, person))
    if count >= MAX_GOALS:
        raise LearningError(messages.LEARN_TOO_MANY.format(count=count))
    held = session.scalar(
        select(Skill.level).where(Skill.person_id == person.id, Skill.tag_id == tag.id)
    )
    goal = LearningGoal(person=person, tag=tag, set_at=now, start_level=held)
    session.add(goal)
    session.flush()
    record(session, person.id, "learning.set", f"person:{person.key}", tag=tag.name)
    return goal, True


def unlearn(session: Session, person: Person, tag: Tag, now: datetime) -> LearningGoal:
    _lock(session, person)
    goal = _active(session, person, tag)
    if goal is None:
        raise LearningError(messages.NOT_LEARNING.format(tag=tag.name))
    goal.ended_at = now
    record(session, person.id, "learning.end", f"person:{person.key}", tag=tag.name)
    return goal


def _family(session: Session, tag_ids: Iterable[int]) -> dict[int, set[int]]:
    """Each tag with its children: what a goal on it covers."""
    ids = set(tag_ids)
    covered = {tag_id: {tag_id} for tag_id in ids}
    if ids:
        for child, parent in session.execute(
            select(Tag.id, Tag.parent_id).where(Tag.parent_id.in_(ids))
        ):
            covered[parent].add(child)
    return covered


# --- progress --------------------------------------------------------------------------


@dataclass(frozen=True)
class EarnedSkill:
    tag: str
    level: int
    verified: bool
    was: int | None  # the level held when the goal was set (the goal's own topic)


@dataclass(frozen=True)
class GoalProgress:
    goal_id: int
    tag: str
    tag_id: int
    set_at: datetime
    observed: int  # huddle threads observed on the topic since the goal was set
    answers: int  # knowledge entries written on the topic since then
    earned: tuple[EarnedSkill, ...]  # skills on the topic gained, raised or verified since
    mentor: str | None  # the mentor paired for it, if any


def progress(session: Session, person: Person) -> list[GoalProgress]:
    """Each open goal's progress since it was set."""
    goals = active_goals(session, person)
    families = _family(session, (g.tag_id for g in goals))
    skills = session.scalars(
        select(Skill).where(Skill.person_id == person.id).options(selectinload(Skill.tag))
    ).all()
    mentors = {
        tag_id: name
        for tag_id, name in session.execute(
            select(Mentorship.tag_id, Person.display_name)
            .join(Person, Person.id == Mentorship.mentor_id)
            .where(Mentorship.learner_id == person.id, Mentorship.ended_at.is_(None))
        )
    }
    found = []
    for goal in goals:
        family = families[goal.tag_id]
        observed = session.scalar(
            select(func.count(HuddleObserver.id)).where(
                HuddleObserver.person_id == person.id,
                HuddleObserver.tag_id.in_(family),
                HuddleObserver.invited_at >= goal.set_at,
                HuddleObserver.left_at.is_(None),
            )
        )
        answers = session.scalar(
            select(func.count(func.distinct(KnowledgeEntry.id)))
            .join(KnowledgeAuthor, KnowledgeAuthor.entry_id == KnowledgeEntry.id)
            .join(KnowledgeTag, KnowledgeTag.entry_id == KnowledgeEntry.id)
            .where(
                KnowledgeAuthor.person_id == person.id,
                KnowledgeTag.tag_id.in_(family),
                KnowledgeEntry.created_at >= goal.set_at,
            )
        )
        earned = tuple(
            EarnedSkill(
                s.tag.name,
                s.level,
                s.verified,
                goal.start_level if s.tag_id == goal.tag_id else None,
            )
            for s in sorted(skills, key=lambda s: (s.tag_id != goal.tag_id, s.tag.name))
            if s.tag_id in family and _earned_since(s, goal)
        )
        found.append(
            GoalProgress(
                goal.id,
                goal.tag.name,
                goal.tag_id,
                goal.set_at,
                int(observed or 0),
                int(answers or 0),
                earned,
                mentors.get(goal.tag_id),
            )
        )
    return found


def _earned_since(skill: Skill, goal: LearningGoal) -> bool:
    """Verified (by a lead, or an accepted suggestion) since the goal was set; or, on the
    goal's own topic, held or held higher than when it was set."""
    if skill.verified_at is not None and skill.verified_at >= goal.set_at:
        return True
    if skill.tag_id != goal.tag_id:
        return False
    return goal.start_level is None or skill.level > goal.start_level


def goal_line(item: GoalProgress) -> str:
    if item.earned:
        skills = ", ".join(
            messages.GOAL_EARNED_SKILL.format(
                tag=s.tag, level=s.level, verified=" ✓" if s.verified else ""
            )
            for s in item.earned
        )
        earned = messages.GOAL_EARNED.format(skills=skills)
    else:
        earned = messages.GOAL_EARNED_NONE
    line = messages.GOAL_LINE.format(
        tag=item.tag,
        since=f"{item.set_at:%d %b %Y}",
        observed=item.observed,
        observed_s="" if item.observed == 1 else "s",
        answers=item.answers,
        answers_s="" if item.answers == 1 else "s",
        earned=earned,
    )
    return line + (messages.GOAL_MENTOR.format(name=item.mentor) if item.mentor else "")


# --- observers -------------------------------------------------------------------------


def invite_observers(
    count: int,
    session: Session,
    huddle: Huddle,
    topics: Callable[[], list[str]],
    experts: set[int],
    now: datetime,
) -> list[Person]:
    """Invite up to `count` learners of the huddle's topics in its team to observe, and
    mention them once in the thread. `topics` is asked only when someone in the team
    has a goal at all (it may rank the question)."""
    if count <= 0 or huddle.team_id is None:
        return []
    in_team = (
        select(LearningGoal.id)
        .join(Person, Person.id == LearningGoal.person_id)
        .where(LearningGoal.ended_at.is_(None), Person.team_id == huddle.team_id)
        .limit(1)
    )
    if session.scalar(in_team) is None:
        return []
    names = topics()
    if not names:
        return []
    topic_tags = list(session.execute(select(Tag.id, Tag.parent_id).where(Tag.name.in_(names))))
    if not topic_tags:
        return []
    # A goal on a topic, or on its parent, is served by a thread on it.
    served: dict[int, int] = {}
    for tag_id, parent_id in topic_tags:
        served.setdefault(tag_id, tag_id)
        if parent_id is not None:
            served.setdefault(parent_id, tag_id)
    excluded = {*experts, *([huddle.requester_id] if huddle.requester_id else [])}
    platform = huddle.platform or "console"
    reachable = select(Identity.person_id).where(Identity.platform == platform)
    goals = session.execute(
        select(LearningGoal, Person)
        .join(Person, Person.id == LearningGoal.person_id)
        .where(
            LearningGoal.ended_at.is_(None),
            LearningGoal.tag_id.in_(list(served)),
            Person.team_id == huddle.team_id,
            Person.deleted_at.is_(None),
            Person.id.not_in(excluded or {0}),
            Person.id.in_(reachable),
        )
        .options(selectinload(Person.presence))
        .order_by(LearningGoal.set_at, LearningGoal.id)
    ).all()
    # One goal a person (a direct topic before a parent's), available now.
    chosen: dict[int, tuple[LearningGoal, Person]] = {}
    for goal, person in goals:
        if presence.status(person, now) != "available":
            continue
        held = chosen.get(person.id)
        direct = served[goal.tag_id] == goal.tag_id
        if held is None or (direct and served[held[0].tag_id] != held[0].tag_id):
            chosen[person.id] = (goal, person)
    if not chosen:
        return []
    recent = dict(
        session.execute(
            select(HuddleObserver.person_id, func.count(HuddleObserver.id))
            .where(
                HuddleObserver.person_id.in_(list(chosen)),
                HuddleObserver.invited_at >= now - FAIRNESS_WINDOW,
            )
            .group_by(HuddleObserver.person_id)
        ).all()
    )
    last = dict(
        session.execute(
            select(HuddleObserver.person_id, func.max(HuddleObserver.invited_at))
            .where(HuddleObserver.person_id.in_(list(chosen)))
            .group_by(HuddleObserver.person_id)
        ).all()
    )
    order = sorted(
        chosen.values(),
        key=lambda pair: (
            recent.get(pair[1].id, 0),
            last.get(pair[1].id) is not None,
            last.get(pair[1].id) or now,
            pair[0].set_at,
            pair[1].id,
        ),
    )[:count]
    for goal, person in order:
        session.add(
            HuddleObserver(
                huddle_id=huddle.id, person_id=person.id, tag_id=served[goal.tag_id], invited_at=now
            )
        )
    people = [person for _, person in order]
    topic = ", ".join(sorted({_tag_name(session, served[goal.tag_id]) for goal, _ in order}))
    _mention_once(session, huddle, people, topic, now)
    return people


def _tag_name(session: Session, tag_id: int) -> str:
    return session.get(Tag, tag_id).name  # type: ignore[union-attr]


def _mention_once(
    session: Session, huddle: Huddle, people: list[Person], topic: str, now: datetime
) -> None:
    parts: list[str | Mention] = ["📚 "]
    for i, person in enumerate(people):
        parts.extend([", "] if i else [])
        parts.append(Mention(person.id, person.display_name))
    verb = "is" if len(people) == 1 else "are"
    parts.append(messages.OBSERVERS_NOTE.format(verb=verb, topic=topic))
    leave = Button(messages.OBSERVER_LEAVE, LEAVE_ACTION, str(huddle.id))
    outbox.enqueue(
        session,
        platform=huddle.platform or "console",
        kind="thread",
        huddle=huddle,
        reply=Reply((Line(tuple(parts)), Actions((leave,))), private=False),
        now=now,
    )


def observing(session: Session, huddle_id: int, person_id: int) -> HuddleObserver | None:
    """The person's observation of the huddle, while they have not left it."""
    return session.scalar(
        select(HuddleObserver).where(
            HuddleObserver.huddle_id == huddle_id,
            HuddleObserver.person_id == person_id,
            HuddleObserver.left_at.is_(None),
        )
    )


def observer_ids(session: Session, huddle_id: int) -> set[int]:
    """Everyone invited to observe the huddle (left or not): never asked as its experts."""
    return set(
        session.scalars(
            select(HuddleObserver.person_id).where(HuddleObserver.huddle_id == huddle_id)
        )
    )


def note_reply(session: Session, huddle: Huddle, person: Person, now: datetime) -> bool:
    """An observer wrote in the thread: noted, and True (it is not an expert reply)."""
    seen = observing(session, huddle.id, person.id)
    if seen is None:
        return False
    if seen.replied_at is None:
        seen.replied_at = now
    return True


def leave(session: Session, huddle: Huddle, person: Person, now: datetime) -> None:
    seen = observing(session, huddle.id, person.id)
    if seen is None:
        raise LearningError(messages.NOT_OBSERVING.format(id=huddle.id))
    seen.left_at = now


# --- the growth timeline ---------------------------------------------------------------


@dataclass(frozen=True)
class GrowthEvent:
    when: datetime
    event: str  # a key of messages.GROWTH_EVENTS
    topic: str
    detail: str

    @property
    def label(self) -> str:
        return messages.GROWTH_EVENTS[self.event]


def timeline(session: Session, person: Person, limit: int = 500) -> list[GrowthEvent]:
    """What the person set out to learn, observed, wrote, helped with and earned, with
    dates, newest first: for a career conversation with their lead."""
    events: list[GrowthEvent] = []
    for goal in session.scalars(
        select(LearningGoal)
        .where(LearningGoal.person_id == person.id)
        .options(selectinload(LearningGoal.tag))
    ):
        events.append(GrowthEvent(goal.set_at, "goal_set", goal.tag.name, ""))
        if goal.ended_at is not None:
            events.append(GrowthEvent(goal.ended_at, "goal_ended", goal.tag.name, ""))
    for seen, topic in session.execute(
        select(HuddleObserver, Huddle.topic)
        .join(Huddle, Huddle.id == HuddleObserver.huddle_id)
        .where(HuddleObserver.person_id == person.id)
        .options(selectinload(HuddleObserver.tag))
    ):
        detail = f"huddle thread #{seen.huddle_id} “{topic[:80]}”"
        if seen.left_at is not None:
            detail += ", left"
        tag = seen.tag.name if seen.tag else ""
        events.append(GrowthEvent(seen.invited_at, "observed", tag, detail))
    for entry in session.scalars(
        select(KnowledgeEntry)
        .join(KnowledgeAuthor, KnowledgeAuthor.entry_id == KnowledgeEntry.id)
        .where(KnowledgeAuthor.person_id == person.id)
        .options(selectinload(KnowledgeEntry.tags))
    ):
        tags = ", ".join(t.name for t in entry.tags)
        events.append(
            GrowthEvent(entry.created_at, "answer", tags, f"#{entry.id} {entry.title[:80]}")
        )
    for when, huddle_id, topic in session.execute(
        select(HuddleParticipant.first_reply_at, Huddle.id, Huddle.topic)
        .join(Huddle, Huddle.id == HuddleParticipant.huddle_id)
        .where(
            HuddleParticipant.person_id == person.id,
            HuddleParticipant.first_reply_at.is_not(None),
        )
    ):
        events.append(GrowthEvent(when, "helped", "", f"huddle thread #{huddle_id} “{topic[:80]}”"))
    for entry in session.scalars(
        select(AuditEntry).where(
            AuditEntry.target == f"person:{person.key}",
            AuditEntry.allowed.is_(True),
            or_(AuditEntry.action.like("skill.%"), AuditEntry.action.like("expertise.%")),
        )
    ):
        events.append(_skill_event(entry))
    for pair in session.scalars(
        select(Mentorship)
        .where(Mentorship.learner_id == person.id)
        .options(selectinload(Mentorship.mentor), selectinload(Mentorship.tag))
    ):
        events.append(
            GrowthEvent(pair.paired_at, "mentor", pair.tag.name, pair.mentor.display_name)
        )
    events.sort(key=lambda e: (e.when, e.event), reverse=True)
    return events[:limit]


def _skill_event(entry: AuditEntry) -> GrowthEvent:
    """A skill change from the audit log: tagged, verified, untagged, accepted."""
    try:
        detail = json.loads(entry.detail) if entry.detail else {}
    except ValueError:
        detail = {}
    what = entry.action.split(".", 1)[-1]
    level = detail.get("level")
    words = f"{what}" + (f" at level {level}" if level is not None else "")
    return GrowthEvent(
        entry.created_at, "skill", str(detail.get("tag", "")), f"{words} by {entry.actor_label}"
    )
