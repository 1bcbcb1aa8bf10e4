"""Learning from use: answered questions kept as labelled examples for the tag models.

Every question asked through whoknows is evidence once it is answered:

- `record_helpful`: "this person helped" on an expert card, by the person who
  asked, counted once per question, voter and expert however often clicked;
- `record_huddle`: a resolved huddle thread: its question, labelled with the
  tags it was resolved with, or else with the experts who replied;
- `record_contact` then `settle_contacts`: a Message click on an expert card,
  counted once `CONTACT_WINDOW` passes without the asker asking again about
  the same topic (then the contact answered it);
- `describe_tag`: a lead's one-line description and example questions for a tag.

They are `LabelledExample` rows, never knowledge entries: nothing here writes an
entry, and the ranking reads examples only into each tag's model
(`bot.matching.index.build_model`), so no agent is ever shown one as an answer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import messages
from bot.db import revision
from bot.db.models import (
    ExampleSource,
    Huddle,
    Job,
    LabelledExample,
    Person,
    QueryLog,
    Tag,
)
from bot.matching import vectors
from bot.runtime import jobs
from bot.services import permissions
from bot.services.permissions import Actor
from bot.text import clean_text, terms

if TYPE_CHECKING:
    from bot.services import Services

CONTACT_WINDOW = timedelta(minutes=5)
SETTLE_CONTACTS = "learning.settle"  # the timer that settles Message clicks
# A later question sharing this much of a contact's question's words is "the same
# topic again": the contact did not settle it.
SAME_TOPIC = 0.5
MAX_DESCRIPTION_CHARS = 300
MAX_EXAMPLE_CHARS = 300
MAX_EXAMPLES = 20
KEY_CHARS = 200


class LearningError(ValueError):
    """Something to tell the person; nothing was recorded."""


def _add(session: Session, example: LabelledExample) -> bool:
    """Insert unless an example with its key is there already; True when inserted."""
    try:
        with session.begin_nested():
            session.add(example)
    except IntegrityError:
        return False  # an earlier click, or a concurrent one, got there first
    return True


def _digest(text: str) -> str:
    return hashlib.sha256(" ".join(text.lower().split()).encode()).hexdigest()[:16]


def _question(session: Session, query_id: int) -> QueryLog:
    question = session.get(QueryLog, query_id)
    if question is None:
        raise LearningError(messages.LEARNING_QUESTION_GONE)
    return question


def _expert(session: Session, expert_id: int) -> Person:
    expert = session.get(Person, expert_id)
    if expert is None or expert.deleted_at is not None:
        raise LearningError(messages.LEARNING_EXPERT_GONE)
    return expert


def record_helpful(
    session: Session, query_id: int, voter: Person, expert_id: int, now: datetime
) -> tuple[Person, bool]:
    """The asker says this expert helped with this question; (expert, counted now).

    Only the person who asked can say so (an answer shown in a channel is seen by
    others, who do not know whether it helped), and once per question and expert.
    """
    question = _question(session, query_id)
    if question.person_id != voter.id:
        raise LearningError(messages.LEARNING_NOT_YOUR_QUESTION)
    expert = _expert(session, expert_id)
    if expert.id == voter.id:
        raise LearningError(messages.LEARNING_NOT_YOURSELF)
    counted = _add(
        session,
        LabelledExample(
            key=f"helpful:{query_id}:{voter.id}:{expert.id}",
            source=ExampleSource.HELPFUL,
            text=question.text,
            person_id=expert.id,
            asker_id=voter.id,
            query_id=query_id,
            created_at=now,
        ),
    )
    return expert, counted


def helpful_votes(session: Session, query_id: int, expert_id: int) -> int:
    """How many times this expert was marked helpful for this question (0 or 1)."""
    return len(
        session.scalars(
            select(LabelledExample.id).where(
                LabelledExample.source == ExampleSource.HELPFUL,
                LabelledExample.query_id == query_id,
                LabelledExample.person_id == expert_id,
            )
        ).all()
    )


def record_huddle(
    session: Session, huddle: Huddle, tags: Sequence[Tag], helpers: Sequence[Person], now: datetime
) -> int:
    """A resolved huddle thread's question, labelled with its tags, or else with the
    experts who replied (the model chooses among their tags); how many were added."""
    text = " ".join(clean_text(huddle.topic).split())
    if not text:
        return 0
    if tags:
        labels = [(f"huddle:{huddle.id}:tag:{tag.id}", tag.id, None) for tag in tags]
    else:
        labels = [(f"huddle:{huddle.id}:person:{p.id}", None, p.id) for p in helpers]
    added = 0
    for key, tag_id, person_id in labels:
        added += _add(
            session,
            LabelledExample(
                key=key,
                source=ExampleSource.HUDDLE,
                text=text,
                tag_id=tag_id,
                person_id=person_id,
                asker_id=huddle.requester_id,
                huddle_id=huddle.id,
                created_at=now,
            ),
        )
    return added


def record_contact(
    session: Session, query_id: int, asker: Person, expert_id: int, now: datetime
) -> bool:
    """The asker opened a chat with this expert from an answer: a label once it settles
    (a timer settles it when `CONTACT_WINDOW` has passed); True when recorded now."""
    question = _question(session, query_id)
    if question.person_id != asker.id:
        return False  # someone else's question: no evidence about it
    expert = _expert(session, expert_id)
    if expert.id == asker.id:
        return False
    example = LabelledExample(
        key=f"contact:{query_id}:{asker.id}:{expert.id}",
        source=ExampleSource.CONTACT,
        text=question.text,
        person_id=expert.id,
        asker_id=asker.id,
        query_id=query_id,
        pending_until=now + CONTACT_WINDOW,
        created_at=now,
    )
    if not _add(session, example):
        return False
    assert example.pending_until is not None
    # One timer per click (a row: a restart loses none); each settles all that are due.
    jobs.schedule(session, SETTLE_CONTACTS, example.pending_until, step=example.id)
    return True


def same_topic(first: str, second: str) -> bool:
    """Whether two questions share most of the words of either."""
    one, other = set(terms(first)), set(terms(second))
    if not one or not other:
        return False
    shared = len(one & other)
    return shared >= SAME_TOPIC * min(len(one), len(other))


@dataclass(frozen=True)
class Settled:
    kept: int  # contacts that answered the question: now examples
    dropped: int  # the asker asked about the same topic again


def settle_contacts(session: Session, now: datetime) -> Settled:
    """Message clicks whose window has passed: kept unless the asker asked again."""
    due = session.scalars(
        select(LabelledExample)
        .where(LabelledExample.pending_until.is_not(None), LabelledExample.pending_until <= now)
        .order_by(LabelledExample.id)
    ).all()
    kept = dropped = 0
    for example in due:
        later = session.scalars(
            select(QueryLog.text).where(
                QueryLog.person_id == example.asker_id,
                QueryLog.created_at > example.created_at,
                QueryLog.created_at <= example.pending_until,
                QueryLog.id != example.query_id,
            )
        ).all()
        if any(same_topic(example.text, text) for text in later):
            session.delete(example)
            dropped += 1
        else:
            example.pending_until = None
            kept += 1
    if due:
        session.flush()
    return Settled(kept, dropped)


@jobs.handler(SETTLE_CONTACTS)
def _on_settle(services: Services, session: Session, job: Job, now: datetime) -> None:
    settle_contacts(session, now)


def describe_tag(
    session: Session,
    actor: Actor,
    tag: Tag,
    description: str | None,
    examples: Sequence[str] | None,
    now: datetime,
) -> int:
    """Set a tag's one-line description and its example questions (None: leave as is);
    they teach the tag's model what its questions look like. Returns the examples kept.

    Who may: `permissions.require_tag_describer` (a person in chat or on the dashboard,
    the operator importing a tags file).
    """
    permissions.require_tag_describer(actor, tag)
    if description is not None:
        description = " ".join(clean_text(description).split())
        if len(description) > MAX_DESCRIPTION_CHARS:
            raise LearningError(
                messages.LEARNING_DESCRIPTION_TOO_LONG.format(limit=MAX_DESCRIPTION_CHARS)
            )
    cleaned: list[str] | None = None
    if examples is not None:
        cleaned = list(dict.fromkeys(" ".join(clean_text(e).split()) for e in examples))
        cleaned = [e for e in cleaned if e]
        if len(cleaned) > MAX_EXAMPLES:
            raise LearningError(messages.LEARNING_TOO_MANY_EXAMPLES.format(limit=MAX_EXAMPLES))
        if any(len(e) > MAX_EXAMPLE_CHARS for e in cleaned):
            raise LearningError(messages.LEARNING_EXAMPLE_TOO_LONG.format(limit=MAX_EXAMPLE_CHARS))
    wanted: dict[str, str] = {}  # key → text, of the lead's rows this tag should have
    old = session.execute(
        select(LabelledExample.id, LabelledExample.key, LabelledExample.text).where(
            LabelledExample.tag_id == tag.id, LabelledExample.source == ExampleSource.LEAD
        )
    ).all()
    current_description = (tag.description if description is None else description) or ""
    if current_description:
        wanted[f"lead:{tag.id}:description:{_digest(current_description)}"] = current_description
    if cleaned is None:
        wanted.update({key: text for _, key, text in old if ":description:" not in key})
    else:
        wanted.update({f"lead:{tag.id}:example:{_digest(e)}": e for e in cleaned})
    stale = [example_id for example_id, key, _ in old if key not in wanted]
    if stale:
        session.execute(delete(LabelledExample).where(LabelledExample.id.in_(stale)))
        vectors.forget_examples(session, stale)
        revision.bump(session, revision.LEARNING)  # a set-based delete: the ORM did not see it
    have = {key for _, key, _ in old}
    for key, text in wanted.items():
        if key not in have:
            session.add(
                LabelledExample(
                    key=key[:KEY_CHARS],
                    source=ExampleSource.LEAD,
                    text=text,
                    tag_id=tag.id,
                    created_at=now,
                )
            )
    if description is not None and description != (tag.description or ""):
        tag.description = description or None
    permissions.allowed(
        session,
        actor,
        permissions.DESCRIBE_TAG,
        f"tag:{tag.name}",
        description=current_description,
        examples=len([k for k in wanted if ":example:" in k]),
    )
    return len([k for k in wanted if ":example:" in k])


def tag_examples(session: Session, tag: Tag) -> list[str]:
    """A tag's example questions as a lead gave them (not its description)."""
    rows = session.scalars(
        select(LabelledExample.text)
        .where(
            LabelledExample.tag_id == tag.id,
            LabelledExample.source == ExampleSource.LEAD,
            LabelledExample.key.like(f"lead:{tag.id}:example:%"),
        )
        .order_by(LabelledExample.id)
    ).all()
    return list(rows)
