"""The outbox: messages written with the change they report, delivered after the commit.

A command never talks to a platform inside its transaction. It adds outbox
rows; once the transaction commits, `deliver` claims each row for a short lease,
hands it to the platform's Messenger, and records the result. So a rolled-back
command posts nothing, a crash loses nothing (the lease runs out and another
pass retries), and several workers can deliver side by side.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import messages
from bot.db import Database
from bot.db.models import DeliveryState, Huddle, Identity, Outbox, Person
from bot.db.retry import retrying
from bot.ops import metrics
from bot.runtime import codec
from bot.runtime.ports import DeliveryError, MessageRef, Messenger
from bot.services import people as people_service
from bot.services.accounts import CHAT_PLATFORMS, platform_name
from bot.types import Line, Mention, Reply

log = logging.getLogger(__name__)

LEASE = timedelta(seconds=60)
ROOT_FAILED = "the huddle thread could not be posted"
MAX_ATTEMPTS = 5
BATCH = 50


# Messages this process has queued (rolled back ones too): a command that queued
# none need not wake the worker (adapters/commands.py).
enqueued = 0


def enqueue(
    session: Session,
    *,
    platform: str,
    kind: str,
    reply: Reply,
    now: datetime,
    huddle: Huddle | None = None,
    channel: str | None = None,
    person_id: int | None = None,
    is_root: bool = False,
) -> Outbox:
    """kind: post (to `channel`), thread (into `huddle`'s thread), dm (to `person_id`),
    update (`huddle`'s thread root), notice (to `person_id`: in `huddle`'s thread once
    it is posted, else directly; one that fails is only logged)."""
    row = Outbox(
        platform=platform,
        kind=kind,
        huddle_id=huddle.id if huddle is not None else None,
        is_root=is_root,
        channel=channel,
        person_id=person_id,
        body=codec.dumps(reply),
        next_attempt_at=now,
        created_at=now,
    )
    session.add(row)
    global enqueued
    enqueued += 1
    return row


def reach(session: Session, person_id: int, platform: str) -> str | None:
    """The platform to message someone on: `platform` when they have an account there,
    else the first chat platform where they have one; None when they have none at all
    (a message on `platform` then fails, and says how to link an account)."""
    held = set(
        session.scalars(
            select(Identity.platform).where(
                Identity.person_id == person_id,
                Identity.platform.in_([platform, *CHAT_PLATFORMS]),
            )
        )
    )
    if platform in held:
        return platform
    return next((p for p in CHAT_PLATFORMS if p in held), None)


def _with_handles(session: Session, platform: str, reply: Reply) -> Reply:
    """Fill in each mentioned person's handle on the platform the message goes to."""
    handles = people_service.handles(session, platform, people_service.mentioned_in(reply))

    def fill(element: object) -> object:
        if not isinstance(element, Line):
            return element
        parts = tuple(
            dataclasses.replace(part, handle=handles.get(part.person_id))
            if isinstance(part, Mention)
            else part
            for part in element.parts
        )
        return Line(parts)

    return Reply(tuple(fill(e) for e in reply.elements), private=reply.private)  # type: ignore[misc]


@dataclasses.dataclass(frozen=True)
class _Claim:
    id: int
    kind: str
    platform: str
    reply: Reply
    channel: str | None
    handle: str | None
    root: MessageRef | None
    huddle_id: int | None
    is_root: bool


@dataclasses.dataclass(frozen=True)
class _Refusal:
    """Why a row must fail: `reason` is kept on the row; `told`, when set, is what its
    requester hears instead of the sentence made from the reason."""

    reason: str
    told: str | None = None


def _no_account(session: Session, row: Outbox) -> _Refusal:
    """A message for someone with no account on its platform: who, and how to link one."""
    person = session.get(Person, row.person_id) if row.person_id else None
    if person is None:
        return _Refusal(messages.NOBODY_THERE)
    held = {i.platform for i in person.identities} & set(CHAT_PLATFORMS)
    if row.platform not in CHAT_PLATFORMS and held:
        # A local place (the console) they are not in: nothing an admin could link.
        name = platform_name(row.platform)
        return _Refusal(messages.NO_LOCAL_ACCOUNT.format(name=person.display_name, where=name))
    # On another chat platform: this one is missing; on none: any would do, this one first.
    lacking = (
        [row.platform]
        if held
        else [p for p in dict.fromkeys([row.platform, *CHAT_PLATFORMS]) if p in CHAT_PLATFORMS]
    )
    words = {
        "name": person.display_name,
        "platforms": " or ".join(platform_name(p) for p in lacking),
        "key": person.key,
        "flag": messages.LINK_FLAGS[lacking[0]],
    }
    huddle = session.get(Huddle, row.huddle_id) if row.huddle_id else None
    told = (
        messages.UNDELIVERED_NO_ACCOUNT.format(id=huddle.id, **words)
        if huddle is not None and row.kind == "dm"
        else None
    )
    return _Refusal(messages.NO_ACCOUNT_REASON.format(**words), told)


def _claim(session: Session, row_id: int, now: datetime) -> _Claim | _Refusal | None:
    """Lease one due row: the claim, None when another worker has it, or why it must fail."""
    row = session.scalar(
        select(Outbox)
        .where(
            Outbox.id == row_id,
            Outbox.state == DeliveryState.PENDING,
            Outbox.next_attempt_at <= now,
        )
        .with_for_update(skip_locked=True)
    )
    if row is None:
        return None
    root = None
    if row.kind in {"thread", "update"}:
        huddle = session.get(Huddle, row.huddle_id) if row.huddle_id else None
        if huddle is None:
            return _Refusal("the huddle is gone")
        if huddle.thread_ref is None or huddle.channel_ref is None:
            # The thread root is not posted yet: wait for it, unless it failed.
            failed = session.scalar(
                select(Outbox.id).where(
                    Outbox.huddle_id == huddle.id,
                    Outbox.is_root.is_(True),
                    Outbox.state == DeliveryState.FAILED,
                )
            )
            return _Refusal(ROOT_FAILED) if failed else None
        root = MessageRef(huddle.channel_ref, huddle.thread_ref)
    if row.kind == "notice":
        huddle = session.get(Huddle, row.huddle_id) if row.huddle_id else None
        if huddle is not None and huddle.thread_ref and huddle.channel_ref:
            root = MessageRef(huddle.channel_ref, huddle.thread_ref)
    handle = None
    if row.kind == "dm" or (row.kind == "notice" and root is None):
        wanted = [row.person_id] if row.person_id else []
        handle = people_service.handles(session, row.platform, wanted).get(row.person_id or 0)
        if handle is None:
            return _no_account(session, row)
    row.attempts += 1
    row.next_attempt_at = now + LEASE
    return _Claim(
        row.id,
        row.kind,
        row.platform,
        _with_handles(session, row.platform, codec.loads(row.body)),
        row.channel,
        handle,
        root,
        row.huddle_id,
        row.is_root,
    )


async def _send(messenger: Messenger, claim: _Claim) -> MessageRef | None:
    if claim.kind == "post":
        if claim.channel is None:
            raise DeliveryError("no channel to post to")
        return await messenger.post(claim.channel, claim.reply)
    if claim.kind == "thread":
        assert claim.root is not None
        return await messenger.reply_in_thread(claim.root, claim.reply)
    if claim.kind == "notice" and claim.root is not None:
        return await messenger.reply_in_thread(claim.root, claim.reply)
    if claim.kind in {"dm", "notice"}:
        assert claim.handle is not None
        return await messenger.direct_message(claim.handle, claim.reply)
    if claim.kind == "update":
        assert claim.root is not None
        await messenger.update(claim.root, claim.reply)
        return claim.root
    raise DeliveryError(f"unknown delivery kind {claim.kind!r}")


def _fail(
    session: Session,
    row_id: int,
    reason: str,
    now: datetime,
    *,
    told: str | None = None,
    heard: str | None = None,
) -> None:
    """Fail a row for good with `reason` (kept on the row). Its requester hears `told`,
    else the usual sentence with `heard` (else `reason`) as the cause."""
    row = session.get(Outbox, row_id)
    # Not one failed already: stopped (see `stop`) while a worker was sending it.
    if row is not None and row.state == DeliveryState.PENDING:
        row.state = DeliveryState.FAILED
        row.error = reason[:2000]
        metrics.delivery(row.platform, "failed")
        log.warning("outbox %d failed for good: %s", row_id, reason)
        _tell_requester(session, row, reason, now, told=told, heard=heard)


def _tell_requester(
    session: Session,
    row: Outbox,
    reason: str,
    now: datetime,
    *,
    told: str | None = None,
    heard: str | None = None,
) -> None:
    """Whoever asked for the huddle hears what did not reach its people, and why.

    Not for a notice itself (no chain of failures), nor for thread messages that
    wait on a root that failed (that failure was told once already). The note goes
    where the huddle thread is, whichever platform the failed message was for.
    """
    if row.kind == "notice" or row.huddle_id is None or reason == ROOT_FAILED:
        return
    huddle = session.get(Huddle, row.huddle_id)
    requester = huddle.requester if huddle is not None else None
    if huddle is None or requester is None or row.person_id == requester.id:
        return
    reason = heard or reason
    if told is not None:
        note = told
    elif row.kind == "dm":
        person = session.get(Person, row.person_id) if row.person_id else None
        name = person.display_name if person is not None else "someone"
        # A platform's reason may name them by their id there: the asker knows their name.
        handle = people_service.handles(session, row.platform, [row.person_id or 0]).get(
            row.person_id or 0
        )
        if handle:
            reason = reason.replace(handle, name)
        note = messages.UNDELIVERED_DM.format(name=name, reason=reason, id=huddle.id)
    elif row.is_root:
        channel = row.channel or "the huddle channel"
        note = messages.UNDELIVERED_ROOT.format(id=huddle.id, channel=channel, reason=reason)
    else:
        note = messages.UNDELIVERED_OTHER.format(id=huddle.id, reason=reason)
    enqueue(
        session,
        platform=huddle.platform or row.platform,
        kind="notice",
        reply=Reply((Line((Mention(requester.id, requester.display_name), note)),), private=False),
        now=now,
        huddle=huddle,
        person_id=requester.id,
    )


def _destination(session: Session, row: Outbox, handles: Mapping[int, str]) -> str | None:
    """Where a delivery goes on its platform: a channel, or the handle of the person it is for."""
    if row.kind == "post":
        return row.channel
    huddle = session.get(Huddle, row.huddle_id) if row.huddle_id else None
    if huddle is not None and huddle.channel_ref is not None:
        if row.kind in {"thread", "update", "notice"}:
            return huddle.channel_ref
    elif huddle is not None and row.kind in {"thread", "update"}:
        # The thread root is not posted yet: where it is going.
        return session.scalar(
            select(Outbox.channel).where(Outbox.huddle_id == huddle.id, Outbox.is_root.is_(True))
        )
    if row.kind in {"dm", "notice"} and row.person_id is not None:
        return handles.get(row.person_id)
    return None


def stop(
    db: Database,
    platform: str,
    reason: str,
    now: datetime,
    *,
    goes_to: Callable[[str | None], bool],
) -> int:
    """Fail for good, with `reason`, every pending delivery on `platform` whose destination
    (a channel or a person's handle; None when unknown) `goes_to` accepts: a workspace
    the bot was removed from. The number stopped.

    Each requester hears of it as of any failed delivery; a note to one who is in the
    same place is stopped by the next pass.
    """
    stopped = 0
    for _ in range(3):
        with db.unit_of_work() as session:
            rows = session.scalars(
                select(Outbox)
                .where(Outbox.platform == platform, Outbox.state == DeliveryState.PENDING)
                .order_by(Outbox.id)
                .with_for_update()
            ).all()
            people = {r.person_id for r in rows if r.person_id is not None}
            handles = people_service.handles(session, platform, people)
            doomed = [r for r in rows if goes_to(_destination(session, r, handles))]
            for row in doomed:
                # A message waiting for its thread root fails with the root, as in `_claim`:
                # the requester hears of the root alone.
                huddle = session.get(Huddle, row.huddle_id) if row.huddle_id else None
                waits = row.kind in {"thread", "update"} and (
                    huddle is None or huddle.thread_ref is None
                )
                _fail(session, row.id, ROOT_FAILED if waits else reason, now)
        stopped += len(doomed)
        if not doomed:
            break
    return stopped


def _due(db: Database, platforms: list[str], now: datetime, limit: int) -> list[int]:
    with db.reading() as session:  # each is leased in its own write below
        return list(
            session.scalars(
                select(Outbox.id)
                .where(
                    Outbox.state == DeliveryState.PENDING,
                    Outbox.next_attempt_at <= now,
                    Outbox.platform.in_(platforms),
                )
                .order_by(Outbox.id)
                .limit(limit)
            )
        )


def _lease(db: Database, row_id: int, now: datetime) -> _Claim | None:
    with db.unit_of_work() as session:
        claim = _claim(session, row_id, now)
        if isinstance(claim, _Refusal):
            _fail(session, row_id, claim.reason, now, told=claim.told)
            return None
        return claim


def _failed(db: Database, row_id: int, reason: str, now: datetime) -> None:
    with db.unit_of_work() as session:
        _fail(session, row_id, reason, now)


def _retry_later(db: Database, row_id: int, error: Exception, now: datetime) -> None:
    with db.unit_of_work() as session:
        row = session.get(Outbox, row_id)
        if row is not None and row.attempts >= MAX_ATTEMPTS:
            # Kept as it was for the operator; the asker hears it in words.
            gave_up = messages.DELIVERY_GAVE_UP.format(
                platform=platform_name(row.platform), tries=row.attempts
            )
            _fail(session, row_id, f"{type(error).__name__}: {error}", now, heard=gave_up)
        elif row is not None:
            row.next_attempt_at = now + timedelta(seconds=5 * 2**row.attempts)
            metrics.delivery(row.platform, "retry")


def _sent(db: Database, claim: _Claim, ref: MessageRef | None, now: datetime) -> None:
    with db.unit_of_work() as session:
        row = session.get(Outbox, claim.id)
        if row is not None:
            row.state = DeliveryState.SENT
            row.sent_at = now
        if claim.is_root and ref is not None and claim.huddle_id is not None:
            huddle = session.get(Huddle, claim.huddle_id)
            if huddle is not None:
                huddle.channel_ref, huddle.thread_ref = ref.channel, ref.message


async def deliver(
    db: Database,
    messengers: Mapping[str, Messenger],
    clock: Callable[[], datetime],
    *,
    limit: int = BATCH,
) -> int:
    """Deliver the due rows for the platforms given, oldest first; the number sent.

    The database work runs on a worker thread: a server's event loop only
    waits for the platform.
    """
    due = await asyncio.to_thread(_due, db, list(messengers), clock(), limit)
    sent = 0
    for row_id in due:
        claim = await asyncio.to_thread(_lease, db, row_id, clock())
        if claim is None:
            continue
        try:
            ref = await _send(messengers[claim.platform], claim)
        except DeliveryError as error:
            await asyncio.to_thread(_failed, db, row_id, str(error), clock())
            continue
        except Exception as error:  # a network fault: retry with backoff
            log.warning("outbox %d: delivery failed: %s", row_id, type(error).__name__)
            await asyncio.to_thread(_retry_later, db, row_id, error, clock())
            continue
        # Out on the platform: the mark must land, or the lease would send it again.
        await asyncio.to_thread(retrying, _sent, db, claim, ref, clock())
        metrics.delivery(claim.platform, "sent")
        sent += 1
    return sent
