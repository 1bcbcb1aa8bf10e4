"""Change counters for the in-memory matching index, and the entries each change touched.

Each worker keeps its index in memory and checks these counters (one small
query) before it ranks; a change by any worker makes the others catch up. ORM
writes bump them automatically (`track_changes`); set-based writes that bypass
the ORM call `bump` themselves.

A knowledge revision also records which entries it changed (`IndexChange`), so
that a worker a few revisions behind applies those entries to its index
instead of reloading all of them (`changes`). Revisions are handed out in
commit order: a transaction bumps the counter's row, which stays locked until
it commits, so the next writer's bump waits for it and gets the next value.
A worker that can see revision R therefore sees every change up to R.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, event, insert, inspect, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.db.models import (
    IndexChange,
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
# Knowledge revisions whose changed entries are kept: a worker further behind reloads.
KEEP_CHANGES = 10_000
PRUNE_EVERY = 100  # revisions between two prunings of older ones


def _advance(session: Session, part: str) -> int | None:
    """Move the part's counter on; its new value (None: no such counter)."""
    value = session.execute(
        update(Revision)
        .where(Revision.part == part)
        .values(value=Revision.value + 1)
        .returning(Revision.value)
    ).scalar()
    if value is not None and part == KNOWLEDGE and value % PRUNE_EVERY == 0:
        session.execute(delete(IndexChange).where(IndexChange.revision <= value - KEEP_CHANGES))
    return value


def bump(session: Session, part: str, entries: Iterable[int] | None = None) -> None:
    """Move a part's counter on after a set-based write. For knowledge, `entries` are
    the entries it changed (added, edited or deleted); without them every worker
    reloads its whole knowledge index."""
    value = _advance(session, part)
    if value is not None and part == KNOWLEDGE:
        changed: list[int | None] = list(entries) if entries is not None else [None]
        if changed:
            session.execute(
                insert(IndexChange), [{"revision": value, "entry_id": e} for e in changed]
            )


# Read before every question.
_CURRENT = select(Revision.__table__.c.part, Revision.__table__.c.value)


def current(session: Session) -> dict[str, int]:
    return dict(session.execute(_CURRENT).all())  # type: ignore[arg-type]


def changes(session: Session, since: int, until: int) -> set[int] | None:
    """The knowledge entries changed after revision `since` up to `until`, or None when
    they cannot all be named: too old to be kept, a set-based write that named none,
    or a revision that recorded nothing (written by an older version)."""
    if until <= since:
        return set()
    if until - since > KEEP_CHANGES:
        return None
    rows = session.execute(
        select(IndexChange.revision, IndexChange.entry_id).where(
            IndexChange.revision > since, IndexChange.revision <= until
        )
    ).all()
    if len({rev for rev, _ in rows}) < until - since:
        return None
    entries = {entry for _, entry in rows}
    if None in entries:
        return None
    return entries  # type: ignore[return-value]


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


def _transaction(session: Session) -> Any:
    return session.get_nested_transaction() or session.get_transaction()


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    # Once per part per (sub)transaction: autoflush runs before every query.
    transaction = _transaction(session)
    done = session.info.setdefault(("revision", id(transaction)), set())
    changed = {
        _PARTS[type(obj)]
        for obj in (*session.new, *session.deleted, *session.dirty)
        if _moves_index(session, obj)
    }
    for part in sorted(changed - done):
        value = _advance(session, part)
        if part == KNOWLEDGE:
            session.info[("revision-value", id(transaction))] = value
        done.add(part)


def _changed_entry(obj: object) -> int | None:
    if isinstance(obj, KnowledgeEntry):
        return obj.id
    if isinstance(obj, KnowledgeTag | KnowledgeAuthor):
        return obj.entry_id
    return None


def _after_flush(session: Session, _context: Any) -> None:
    # The flush is written, so new entries have their ids; `new`, `dirty` and
    # `deleted` still list what it wrote.
    transaction = _transaction(session)
    value = session.info.get(("revision-value", id(transaction)))
    if value is None:
        return
    recorded = session.info.setdefault(("revision-entries", id(transaction)), set())
    entries = {
        entry
        for obj in (*session.new, *session.deleted, *session.dirty)
        if (entry := _changed_entry(obj)) is not None and _moves_index(session, obj)
    } - recorded
    if entries:
        session.execute(
            insert(IndexChange), [{"revision": value, "entry_id": e} for e in sorted(entries)]
        )
        recorded.update(entries)


def _after_transaction_end(session: Session, transaction: Any) -> None:
    for key in ("revision", "revision-value", "revision-entries"):
        session.info.pop((key, id(transaction)), None)


def track_changes(factory: sessionmaker[Session]) -> None:
    event.listen(factory, "before_flush", _before_flush)
    event.listen(factory, "after_flush", _after_flush)
    event.listen(factory, "after_transaction_end", _after_transaction_end)
