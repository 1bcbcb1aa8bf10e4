"""Inbound requests, kept from the ack until the answer is delivered.

Slack wants its ack within three seconds and the work follows it; a process
that dies between the two would lose the question silently. So an adapter
keeps the request (`accept_many`: rows written before the acks), runs it with the
row's id on the Command, and marks it `done` once the answer is out:

- the command's transaction marks the row `answered` and keeps the answer
  (`answered`, called by the router), so effects and that mark commit together;
- a row whose lease ran out is `claim`ed by a worker: `pending` means the
  command never committed and runs again; `answered` means only the answer
  is left to deliver. Either way the person gets one answer.

The key (a trigger id, an event id) also makes a platform's duplicate
deliveries act once: `accept_many` gives None for a key already seen.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Select, bindparam, delete, select, update
from sqlalchemy.orm import Session

from bot.db import Database
from bot.db.engine import insert_for
from bot.db.models import Inbound, InboundState
from bot.db.retry import retrying
from bot.runtime import codec
from bot.types import Reply

log = logging.getLogger(__name__)

# Until its lease runs out a request belongs to the process that acked it: longer than
# any command takes (Settings.request_lease_s, WHOKNOWS_REQUEST_LEASE).
LEASE = timedelta(seconds=60)
MAX_ATTEMPTS = 3
BATCH = 20


class AlreadyAnswered(Exception):
    """The request was answered elsewhere (a recovery raced a slow original): roll back."""


@dataclass(frozen=True)
class Pending:
    id: int
    platform: str
    payload: dict[str, Any]
    # Set when the command committed and only its answer is left to deliver.
    reply: Reply | None
    attempts: int


# The statements of every request, built once, as Core: an ORM bulk write, or a
# multi-row INSERT compiled for each batch size, cost more than the write itself.
_inbound = Inbound.__table__
# Only the rows inserted come back: the others' keys were taken.
_KEEP = {
    name: insert_for(name)(_inbound)
    .on_conflict_do_nothing()
    .returning(_inbound.c.key, _inbound.c.id)
    for name in ("postgresql", "sqlite")
}
# One encoder for every row: `json.dumps` with separators builds a new one per call.
_compact = json.JSONEncoder(separators=(",", ":")).encode
_ANSWERED = (
    update(_inbound)
    .where(_inbound.c.id == bindparam("inbound"), _inbound.c.state == InboundState.PENDING)
    .values(state=InboundState.ANSWERED, reply=bindparam("answer"), lease_until=bindparam("until"))
    .returning(_inbound.c.id)
)
_DONE = (
    update(_inbound)
    .where(_inbound.c.id.in_(bindparam("ids", expanding=True)))
    .values(state=InboundState.DONE, payload=None, reply=None)
)


def accept_many(
    session: Session | Connection,
    platform: str,
    requests: list[tuple[str, dict[str, Any]]],
    now: datetime,
    lease: timedelta = LEASE,
) -> list[int | None]:
    """Keep requests, one statement for all: each one's id, None for a key seen before
    (in the database, or earlier in `requests`)."""
    rows: dict[str, dict[str, Any]] = {}
    for key, payload in requests:
        rows.setdefault(
            key[:200],
            {
                "platform": platform,
                "key": key[:200],
                "payload": _compact(payload),
                "state": InboundState.PENDING,
                "attempts": 0,
                "lease_until": now + lease,
                "created_at": now,
            },
        )
    bind = session if isinstance(session, Connection) else session.get_bind()
    statement = _KEEP[bind.dialect.name]
    # Executed for many rows, SQLAlchemy sends them as multi-row INSERTs of at most a
    # few hundred rows ("insertmanyvalues"), compiled once rather than for each count.
    kept = dict(session.execute(statement, list(rows.values())).all())
    ids: list[int | None] = []
    for key, _ in requests:
        ids.append(kept.pop(key[:200], None))  # a key repeated in `requests`: its first
    return ids


def answered(
    session: Session, inbound_id: int, reply: Reply, now: datetime, lease: timedelta = LEASE
) -> None:
    """In the command's own transaction: the command ran, here is what to tell them."""
    marked = session.execute(
        _ANSWERED,
        {"inbound": inbound_id, "answer": codec.dumps(reply), "until": now + lease},
    ).first()
    if marked is None:
        state = session.scalar(select(Inbound.state).where(Inbound.id == inbound_id))
        if state is None:  # gone (a database restored from backup): answer, untracked
            log.warning("inbound request %s is gone; answering it anyway", inbound_id)
            return
        raise AlreadyAnswered(inbound_id)


def kept_reply(db: Database, inbound_id: int) -> Reply | None:
    """The answer kept with a request, if its command has committed."""
    with db.reading() as session:
        text = session.scalar(select(Inbound.reply).where(Inbound.id == inbound_id))
    return codec.loads(text) if text else None


def done(db: Database, *inbound_ids: int) -> None:
    """The answers are out: forget the requests' content.

    Retried through a brief database outage: a row left open would be answered
    a second time when its lease runs out.
    """

    def mark() -> None:
        with db.unit_of_work() as session:
            session.execute(_DONE, {"ids": list(inbound_ids)})

    retrying(mark)


def forget(db: Database, platform: str, key: str) -> bool:
    """A request whose keep failed is being answered without its row: if the row was
    written after all (the connection broke during COMMIT), close it before its
    lease runs out, or a worker would take it over and answer a second time.
    Not once a worker has claimed it (attempts > 0): that one answers."""
    with db.unit_of_work() as session:
        result = session.execute(
            update(Inbound)
            .where(
                Inbound.platform == platform,
                Inbound.key == key[:200],
                Inbound.state == InboundState.PENDING,
                Inbound.attempts == 0,
            )
            .values(state=InboundState.DONE, payload=None, reply=None)
        )
        return bool(result.rowcount)


def release(db: Database, ids: set[int], now: datetime) -> int:
    """A stopping process hands its unfinished requests on: claimable at once."""
    with db.unit_of_work() as session:
        result = session.execute(
            update(Inbound)
            .where(
                Inbound.id.in_(ids),
                Inbound.state.in_((InboundState.PENDING, InboundState.ANSWERED)),
            )
            .values(lease_until=now)
        )
        return result.rowcount or 0


def overdue(platforms: tuple[str, ...], now: datetime) -> Select[tuple[Inbound]]:
    """Open requests whose lease has run out (found through inbound_due_idx: the
    finished ones, nearly every row, are never read)."""
    return select(Inbound).where(
        Inbound.state.in_((InboundState.PENDING, InboundState.ANSWERED)),
        Inbound.lease_until <= now,
        Inbound.platform.in_(platforms),
    )


def claim(
    db: Database,
    now: datetime,
    platforms: tuple[str, ...],
    lease: timedelta = LEASE,
    limit: int = BATCH,
) -> list[Pending]:
    """Requests whose lease ran out, leased to the caller for another LEASE.

    One that has failed MAX_ATTEMPTS times is marked failed instead: a request
    that kills its worker must not kill every worker in turn.
    """
    claimed: list[Pending] = []
    due = overdue(platforms, now)
    with db.reading() as session:  # nearly always nothing: ask without a lock first
        if session.scalar(due.with_only_columns(Inbound.id).limit(1)) is None:
            return claimed
    with db.unit_of_work() as session:
        rows = session.scalars(
            due.order_by(Inbound.lease_until, Inbound.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        ).all()
        for row in rows:
            if row.attempts >= MAX_ATTEMPTS:
                log.error("inbound request %s given up after %d attempts", row.id, row.attempts)
                row.state, row.payload = InboundState.FAILED, None
                continue
            row.attempts += 1
            row.lease_until = now + lease
            claimed.append(
                Pending(
                    id=row.id,
                    platform=row.platform,
                    payload=json.loads(row.payload or "{}"),
                    reply=codec.loads(row.reply) if row.reply else None,
                    attempts=row.attempts,
                )
            )
    return claimed


def prune(session: Session, before: datetime) -> int:
    """Finished requests older than `before` (their keys stop duplicates until then)."""
    result = session.execute(
        delete(Inbound).where(
            Inbound.state.in_((InboundState.DONE, InboundState.FAILED)),
            Inbound.created_at < before,
        )
    )
    return result.rowcount or 0
