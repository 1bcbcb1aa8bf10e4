"""Change counters for the in-memory matching index.

Each worker keeps its index in memory and checks these counters (one small
query) before it ranks; a change by any worker makes the others reload. ORM
writes bump them automatically (`track_changes`); set-based writes that bypass
the ORM call `bump` themselves.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, inspect, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.db.models import (
    KnowledgeAuthor,
    KnowledgeEntry,
    KnowledgeTag,
    LabelledExample,
    Person,
    Revision,
    Skill,
    Tag,
    TagAlias,
)

PEOPLE = "people"
KNOWLEDGE = "knowledge"
LEARNING = "learning"  # labelled examples: what the tag models learn from use
_PARTS: dict[type, str] = {
    Person: PEOPLE,
    Skill: PEOPLE,
    Tag: PEOPLE,
    TagAlias: PEOPLE,
    KnowledgeEntry: KNOWLEDGE,
    KnowledgeAuthor: KNOWLEDGE,
    KnowledgeTag: KNOWLEDGE,
    LabelledExample: LEARNING,
}


def bump(session: Session, part: str) -> None:
    session.execute(update(Revision).where(Revision.part == part).values(value=Revision.value + 1))


# Read before every question.
_CURRENT = select(Revision.__table__.c.part, Revision.__table__.c.value)


def current(session: Session) -> dict[str, int]:
    return dict(session.execute(_CURRENT).all())  # type: ignore[arg-type]


def _moves_index(session: Session, obj: object) -> bool:
    """Whether writing `obj` changes what the matching index holds.

    Of a person, the index knows only whether they are deleted: someone new has
    no skills yet (adding one bumps), and a new name, time zone or status is read
    fresh at ranking. Without this, every first contact or profile sync reloaded
    every worker's whole index.
    """
    if type(obj) not in _PARTS:
        return False
    if type(obj) is Person and obj not in session.deleted:
        return obj not in session.new and inspect(obj).attrs.deleted_at.history.has_changes()
    return obj not in session.dirty or session.is_modified(obj)


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    # Once per part per (sub)transaction: autoflush runs before every query.
    transaction = session.get_nested_transaction() or session.get_transaction()
    done = session.info.setdefault(("revision", id(transaction)), set())
    changed = {
        _PARTS[type(obj)]
        for obj in (*session.new, *session.deleted, *session.dirty)
        if _moves_index(session, obj)
    }
    for part in sorted(changed - done):
        bump(session, part)
        done.add(part)


def _after_transaction_end(session: Session, transaction: Any) -> None:
    session.info.pop(("revision", id(transaction)), None)


def track_changes(factory: sessionmaker[Session]) -> None:
    event.listen(factory, "before_flush", _before_flush)
    event.listen(factory, "after_transaction_end", _after_transaction_end)
