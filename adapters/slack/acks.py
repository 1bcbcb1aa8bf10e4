"""Every Slack request acked within Slack's 3 seconds, and kept before its ack.

Slack shows the user an error when the ack takes over 3 seconds, and a request
acked but then lost (its process dying) would go unanswered. So each request is
kept first (`adapters/intake.py`, many to a transaction) and acked as soon as it
is, or after ACK_WITHIN seconds whatever the database is doing.

Our slash commands go faster still: read from the raw form as it came, kept,
acked, and only then dispatched through bolt (`AckFirst.command_first`), at a
pace that leaves the acks of a burst to go first (`_pump`). Anything else is
kept when its listener acks (`AckFirst.accept`), and every listener returns to
bolt the moment it acks (`AckFirst.early`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from typing import Any, NamedTuple
from urllib.parse import unquote_plus

from aiohttp import web
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.internals import parse_body
from slack_bolt.response import BoltResponse

from adapters.intake import Intake

log = logging.getLogger(__name__)

FORM = "application/x-www-form-urlencoded"
# Slack wants the ack within 3 s; past this, ack before the request is kept…
ACK_WITHIN = 1.5
ACK_GRAIN_S = 0.1  # …or this much later
DISPATCHING = 8  # kept commands in bolt's hands at once, at least
# Acks first: while this many requests wait for their ack, or did within the last
# CALM_S (acks leave in batches, as their keep is written, so the count dips
# between them), kept commands are not dispatched: their answers' work, here and
# in the command process, would slow the acks that Slack wants within 3 s…
ACK_PRESSURE = 8
CALM_S = 0.1
# …but none waits longer than this after its ack, however long the pressure lasts.
HOLD_MAX_S = 2.0
HOLD_STEP_S = 0.02  # how often a held pump looks again
KEPT = "whoknows_kept"  # in a kept command's bolt context: its `_Kept`


# A slash command's name in its form body (the whole form is parsed later, by bolt).
_COMMAND_FIELD = re.compile(r"(?:^|&)command=([^&]*)")
_SSL_CHECK = re.compile(r"(?:^|&)ssl_check=")
_USER_FIELD = re.compile(r"(?:^|&)user_id=[^&]")


def names_a_user(form: str) -> bool:
    """A slash command's form says who asked (one that does not is malformed)."""
    return bool(_USER_FIELD.search(form))


def kept_request(payload: Mapping[str, Any]) -> tuple[Any, dict[str, Any]]:
    """A kept request's kind and body, as bolt would have read it."""
    kind, body = payload.get("kind"), payload.get("body") or {}
    if "form" in payload:  # kept as it came (`AckFirst.command_first`)
        body = parse_body(str(payload["form"]), FORM)
    return kind, body


def _wake(waiter: asyncio.Future[None], _: Any = None) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("a Slack listener failed after its ack", exc_info=task.exception())


class _AckDeadlines:
    """Waits for requests to be kept, ACK_WITHIN seconds at most: past that, each is
    acked first.

    A timer for each request (call_later, then cancel) was a twentieth of the
    serving process's time under a burst. Requests wait in the order they came, so
    their deadlines are in order too: one timer, at the first deadline plus a
    little (ACK_GRAIN_S, so that a burst does not set one per request), wakes
    whoever is late.
    """

    def __init__(self) -> None:
        self._waiting: deque[tuple[float, asyncio.Future[None]]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    async def wait(self, keeping: asyncio.Future[Any], what: str) -> None:
        if keeping.done():
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        keeping.add_done_callback(functools.partial(_wake, waiter))
        self._waiting.append((loop.time() + ACK_WITHIN, waiter))
        if self._timer is None:
            self._timer = loop.call_at(self._waiting[0][0] + ACK_GRAIN_S, self._expire, loop)
        await waiter
        if not keeping.done():
            log.warning("keeping a %s request took over %.1f s; acked first", what, ACK_WITHIN)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        waiting = self._waiting
        while waiting and (waiting[0][0] <= now or waiting[0][1].done()):
            _wake(waiting.popleft()[1])
        self._timer = (
            loop.call_at(waiting[0][0] + ACK_GRAIN_S, self._expire, loop) if waiting else None
        )


class _Kept:
    """A slash command kept before its ack, on its way through bolt."""

    __slots__ = ("finished", "id", "started")

    def __init__(self, inbound: int, finished: asyncio.Future[None]) -> None:
        self.id = inbound
        self.finished = finished  # once the listener is done with it
        self.started = False  # a listener took it


class _Queued(NamedTuple):
    """A slash command kept and acked, waiting to go through bolt."""

    at: float  # when it was acked (time.monotonic)
    kept: asyncio.Future[int | None]  # its keep (Intake.keeping)
    key: str
    form: str  # its body, as it came
    query: str
    headers: Mapping[str, str]


class AckFirst:
    """Keeps each request and acks it in time; hands kept slash commands to bolt.

    `dispatch` is bolt's (`AsyncApp.async_dispatch`); `respond` posts to a
    response_url, for a kept command bolt refused. `in_flight` holds the requests
    under way in this process (their kept rows: `Intake.open`), drained on shutdown.
    """

    def __init__(
        self,
        intake: Intake,
        commands: tuple[str, ...],
        dispatch: Callable[[AsyncBoltRequest], Awaitable[BoltResponse]],
        respond: Callable[..., Awaitable[None]],
        wanted: int,
    ) -> None:
        self.intake = intake
        self._commands = commands
        self._dispatch = dispatch
        self._respond = respond
        self.in_flight: set[asyncio.Task[Any]] = set()
        self._deadlines = _AckDeadlines()
        # Kept commands waiting for bolt (`command_first`), and the tasks handing them
        # over: enough at once to keep every command process busy.
        self._queued: deque[_Queued] = deque()
        self._pumps = 0
        self._acking = 0  # Slack requests in this process not yet acked
        self._pressed_at = -CALM_S  # when ACK_PRESSURE of them were last waiting
        self._dispatching = max(DISPATCHING, wanted)

    @contextlib.contextmanager
    def due(self) -> Iterator[None]:
        """A request waits for its ack while this lasts (counted for `_pump`)."""
        self._acking += 1
        if self._acking >= ACK_PRESSURE:
            self._pressed_at = time.monotonic()
        try:
            yield
        finally:
            self._acking -= 1

    def takes(self, content_type: str, form: str) -> bool:
        """One of our slash commands, for `command_first` (not Slack's ssl_check)."""
        if content_type != FORM:
            return False
        found = _COMMAND_FIELD.search(form)
        return bool(
            found and unquote_plus(found.group(1)) in self._commands and not _SSL_CHECK.search(form)
        )

    async def command_first(self, text: str, request: web.Request) -> web.Response:
        """One of our slash commands: kept, acked, and only then dispatched through bolt.

        Under a burst, bolt's dispatch of each command before its ack was most of the
        ack's cost, for answers that then queued for the command processes anyway.
        Here the ack waits only for the request to be kept, as it came; bolt
        dispatches the kept commands as fast as they can be answered (DISPATCHING
        at once), so a burst is acked at the speed of the keep and answered as before.
        While many requests still wait for their ack, the answers wait a little
        (`_pump`): the burst's acks go first.
        """
        key = f"command:{hashlib.sha256(text.encode()).hexdigest()}"
        kept = self.intake.keeping(key, {"kind": "command", "form": text})
        await self._deadlines.wait(kept, "command")
        # Queued as plain values, not a task each: a burst leaves thousands waiting.
        self._queued.append(
            _Queued(time.monotonic(), kept, key, text, request.query_string, request.headers)
        )
        if self._pumps < self._dispatching:
            self._pumps += 1
            task = asyncio.get_running_loop().create_task(self._pump())
            self.in_flight.add(task)  # drained on shutdown like any request under way
            task.add_done_callback(self.in_flight.discard)
            task.add_done_callback(_log_failure)
        return web.Response(status=200)

    async def _pump(self) -> None:
        """Kept commands to bolt, one after another, while any wait; held while the
        acks are under pressure (ACK_PRESSURE), for HOLD_MAX_S at most."""
        try:
            while self._queued:
                now = time.monotonic()
                pressed = self._acking >= ACK_PRESSURE or now - self._pressed_at < CALM_S
                if pressed and now - self._queued[0].at < HOLD_MAX_S:
                    await asyncio.sleep(HOLD_STEP_S)
                    continue
                try:
                    await self._dispatch_kept(self._queued.popleft())
                except Exception:  # the next in the queue must not wait on it
                    log.exception("a kept command failed on its way through bolt")
        finally:
            self._pumps -= 1

    async def _dispatch_kept(self, queued: _Queued) -> None:
        inbound = await self.intake.kept(queued.kept, queued.key)
        if inbound is None:
            return  # a duplicate delivery
        marker = _Kept(inbound, asyncio.get_running_loop().create_future())
        bolt_request = AsyncBoltRequest(
            body=queued.form,
            query=queued.query,
            headers=queued.headers,  # type: ignore[arg-type]
            context={KEPT: marker},
        )
        response = await self._dispatch(bolt_request)
        if marker.started:
            await marker.finished
            return
        # Refused before any listener ran (a workspace not installed, say): what bolt
        # would have acked with goes to the asker instead.
        log.warning("a kept command was refused by bolt (HTTP %s)", response.status)
        url = bolt_request.body.get("response_url")
        try:
            if response.body and url:
                message = {"text": response.body, "response_type": "ephemeral"}
                await self._respond(AsyncRespond(response_url=url), **message)
        finally:  # never run by a worker later: bolt refused it
            self.intake.finish(inbound)

    @contextlib.asynccontextmanager
    async def command(self, command: dict, ack: Any, context: Any) -> AsyncIterator[int | None]:
        """A slash command's listener: its kept row (None: a duplicate delivery), acked.

        Kept before its ack (`command_first`), or here (over Socket Mode, `accept`);
        the dispatcher of a command kept first goes on once the listener is done.
        """
        kept: _Kept | None = context.get(KEPT)
        if kept is None:  # over Socket Mode: kept here
            yield await self.accept("command", command, ack)
            return
        kept.started = True
        await ack()
        try:
            yield kept.id
        finally:
            if not kept.finished.done():
                kept.finished.set_result(None)

    async def accept(self, kind: str, body: dict[str, Any], ack: Any) -> int | None:
        """Keep the request, then ack: its row id, None for a duplicate delivery.

        Slack shows the user an error when the ack takes over 3 seconds. A write
        that takes longer than ACK_WITHIN (a database busy or restarting) acks
        without waiting and goes on; if it fails the request still runs (0: not
        kept): an answer now beats a refusal.
        """
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
        key = f"{kind}:{hashlib.sha256(text.encode()).hexdigest()}"
        kept = self.intake.keeping(key, {"kind": kind, "body": body})
        await self._deadlines.wait(kept, kind)
        await ack()
        return await self.intake.kept(kept, key)

    def early(self, listener: Callable[..., Awaitable[None]]) -> Callable[..., Any]:
        """Run a listener in a task of its own; return to bolt once it acks (or ends).

        Left to itself, bolt runs the listener beside the request and looks every 10 ms
        whether it has acked: each ack came at least 10 ms late, and each request
        cost a hundred wake-ups a second until then. With `process_before_response`
        bolt instead answers Slack when the listener returns, which here is the
        moment it acks; what follows the ack goes on in the listener's task (drained
        on shutdown like any request under way). An event listener takes no ack:
        it returns at once, and bolt acks the event for it.
        """

        @functools.wraps(listener)
        async def run(**kwargs: Any) -> None:
            loop = asyncio.get_running_loop()
            gate: asyncio.Future[bool] = loop.create_future()  # True: acked; False: ended

            def open_gate(acked: bool) -> None:
                if not gate.done():
                    gate.set_result(acked)

            ack = kwargs.get("ack")
            if ack is not None:

                async def ack_and_go(*args: Any, **options: Any) -> Any:
                    try:
                        return await ack(*args, **options)
                    finally:
                        open_gate(True)

                kwargs["ack"] = ack_and_go
            else:
                open_gate(True)  # an event: bolt acks it
            task = loop.create_task(listener(**kwargs))
            # Drained on shutdown from the start: it may still be keeping its request.
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)
            task.add_done_callback(lambda _: open_gate(False))
            if await gate:
                task.add_done_callback(_log_failure)
                return
            task.result()  # ended before acking: bolt's error handler answers a failure

        return run

    async def drain(self, timeout: float) -> None:
        """Stopping: let the requests under way finish; hand the rest to another worker."""
        await self.intake.hand_over(self.in_flight, timeout)
