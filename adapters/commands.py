"""Running commands off the event loop: on a few threads, or in command processes.

Ranking is CPU work in Python. On threads it competes with the event loop for
the GIL, and every ack waits; in a command process it runs on another core
and the loop only moves bytes. `whoknows serve` uses one command process by
default (WHOKNOWS_COMMAND_PROCESSES); tests and small setups use threads,
which share the caller's services (and its clock).

A command process is fed over a socket the event loop reads itself: a command
out, its outcome back, one frame each. `ProcessPoolExecutor` costs two threads
of its own and several hand-offs between them and the loop for each command,
which under load was a fifth of the serving process's time.

A command process takes every command waiting in its socket at once (up to
`BATCH`) and lets their skills prepare them together before it runs them in
order: who-knows questions are encoded in one run of the model and searched in
one matrix product, which costs less per question than one at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import multiprocessing
import os
import pickle
import queue
import select
import socket
import struct
import threading
import traceback
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

from sqlalchemy.orm import Session

from adapters.cli import threads  # noqa: F401 (one BLAS thread, inherited by the children)
from bot.config import Settings
from bot.db.retry import UNAVAILABLE, retrying
from bot.ops import heap
from bot.router import Router
from bot.runtime import outbox
from bot.runtime.processes import start_worker
from bot.services import Services, people
from bot.types import Command, Reply

log = logging.getLogger(__name__)

THREADS = 2
COMMAND_NICENESS = 10
# Its name in `ps` and /proc.
COMMAND_PROCESS = "whoknows-cmd"

# One per worker process, made by `_start_process`.
_process_services: Services | None = None
_process_router: Router | None = None


def _start_process(settings: Settings) -> None:
    global _process_services, _process_router
    from bot.db import open_database
    from bot.ops import logs
    from skills import build_router

    logs.configure(settings)
    # Acks have a hard deadline (Slack's 3 seconds) and answers do not: when the
    # cores are busy, the serving process goes first.
    os.nice(COMMAND_NICENESS)

    _process_services = Services(open_database(settings.database_url, upgrade=False), settings)
    _process_router = build_router()
    # Load the model and the index now, not on the first question.
    services = _process_services
    try:
        with services.db.reading() as session:
            services.matcher.cache.get(session, services.clock())
    except UNAVAILABLE:
        log.warning("database unavailable; the index loads on the first question")
    heap.settle()


class Outcome(NamedTuple):
    reply: Reply
    # Person id → their id on the command's platform, for the people the reply names.
    handles: dict[int, str]
    queued: bool  # whether it wrote to the outbox (then the worker has work)


def reply_handles(services: Services, platform: str, reply: Reply) -> dict[int, str]:
    """The platform ids of the people a reply names, for links and mentions: a live
    command's, looked up where it ran, and a kept answer delivered later."""
    named = people.named_in(reply)
    if not named:
        return {}

    def look_up() -> dict[int, str]:
        with services.db.reading() as session:
            return people.handles(session, platform, named)

    return retrying(look_up)


def _answer(router: Router, services: Services, command: Command) -> Outcome:
    """Run the command, and look up what its reply needs to render, where it ran:
    the serving process only moves bytes."""
    before = outbox.enqueued
    found: list[dict[int, str]] = []

    def look_up(session: Session, reply: Reply) -> None:
        # In the command's own transaction: one of its own cost a tenth of a who-knows.
        named = people.named_in(reply)
        found[:] = [people.handles(session, command.platform, named) if named else {}]

    reply = router.dispatch(command, services, then=look_up)
    queued = outbox.enqueued != before  # another thread's message at worst wakes it once more
    if found:
        return Outcome(reply, found[0], queued)
    try:  # a reply made outside a unit of work: an error, or a kept answer
        handles = reply_handles(services, command.platform, reply)
    except UNAVAILABLE:
        # The answer is kept; without handles, cards show names without links.
        log.warning("database unavailable; answering without platform handles")
        handles = {}
    return Outcome(reply, handles, queued)


def _dispatch_in_process(command: Command) -> Outcome:
    assert _process_services is not None and _process_router is not None
    return _answer(_process_router, _process_services, command)


def _prepare_in_process(commands: list[Command]) -> None:
    assert _process_services is not None and _process_router is not None
    try:
        _process_router.prepare(commands, _process_services)
    except UNAVAILABLE:
        log.warning("database unavailable; a batch of commands runs unprepared")
    except Exception:  # each command still runs, and says what went wrong
        log.exception("could not prepare a batch of commands; they run one by one")


# --- command processes ----------------------------------------------------------------
# A frame: its length (4 bytes, big-endian), then a pickle. Commands go one way; the
# other way go one "ready" frame once the index is loaded, then (ok, outcome or error)
# for each command, in the order the commands came.
_HEADER = struct.Struct("!I")
READY = "ready"
# Commands a process takes from its socket at once, to prepare together: past 16 a
# question costs little less (bench/batching.py), and the last of a batch waits for
# all of it.
BATCH = 16
# Commands in a process's hands at once: the batch it answers and the next, which it
# prepares meanwhile, so that it never waits for a round trip between two. The rest
# wait here, for whichever process is free first.
IN_HAND = 2 * BATCH
STOP_WAIT_S = 10.0


class CommandProcessDied(RuntimeError):
    """The command's process died (the OOM killer, a crash in native code) and it was
    not run again: it had killed one before (once is bad luck, twice is likely the
    command), or the server is stopping."""


class RemoteTraceback(Exception):
    """Where an error raised in a command process came from (as `__cause__`)."""


def _frame(value: Any) -> bytes:
    payload = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(payload)) + payload


def _outcome_frame(command: Command) -> tuple[bool, Any]:
    try:
        return True, _dispatch_in_process(command)
    except Exception as error:
        return False, (error, traceback.format_exc())


class _Frames:
    """Commands from the serving process: what has arrived, as soon as one has."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()
        self.closed = False

    def read(self, limit: int) -> list[Command]:
        """At least one command, waiting for it, then any others already in the
        socket, up to `limit`; none once the serving process has closed its end."""
        commands = self._parsed(limit)
        while not commands:
            if not self._received():
                return []
            commands = self._parsed(limit)
        while len(commands) < limit and not self.closed:
            readable, _, _ = select.select([self.sock], [], [], 0)
            if not readable or not self._received():
                break
            commands += self._parsed(limit - len(commands))
        return commands

    def _received(self) -> bool:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            self.closed = True
            return False
        self.buffer += chunk
        return True

    def _parsed(self, limit: int) -> list[Command]:
        commands: list[Command] = []
        while len(commands) < limit and len(self.buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self.buffer)
            end = _HEADER.size + size
            if len(self.buffer) < end:
                break
            commands.append(pickle.loads(self.buffer[_HEADER.size : end]))
            del self.buffer[:end]
        return commands


def command_loop(
    sock: socket.socket,
    run: Callable[[Command], tuple[bool, Any]],
    prepare: Callable[[list[Command]], None] | None = None,
    batch: int = BATCH,
) -> None:
    """Answer commands from `sock` until the serving process closes its end: those
    waiting at once are `prepare`d together, then run one by one, in order, each
    outcome sent as soon as it is made.

    With `prepare`, a thread reads and prepares the next batch while this one runs
    the last: what preparing costs (the model, the matrix product) runs mostly
    outside the GIL, on the other core. It reads the next batch only once this
    thread has taken the last, so each batch holds every command that came meanwhile.
    """
    sock.sendall(_frame(READY))
    frames = _Frames(sock)
    if prepare is None:
        while commands := frames.read(batch):
            _answer_all(sock, run, commands)
        return
    taken = threading.Semaphore(1)  # the batch read last has been taken
    ready: queue.Queue[list[Command] | None] = queue.Queue()

    def read_ahead() -> None:
        try:
            while True:
                taken.acquire()
                commands = frames.read(batch)
                if not commands:
                    return
                if len(commands) > 1:
                    prepare(commands)
                ready.put(commands)
        except OSError:
            return  # the serving process went: so does this loop
        finally:
            ready.put(None)

    reader = threading.Thread(target=read_ahead, name="read-ahead", daemon=True)
    reader.start()
    while (commands := ready.get()) is not None:
        taken.release()
        _answer_all(sock, run, commands)
    reader.join()


def _answer_all(
    sock: socket.socket, run: Callable[[Command], tuple[bool, Any]], commands: list[Command]
) -> None:
    for command in commands:
        ok, value = run(command)
        try:
            frame = _frame((ok, value))
        except (pickle.PicklingError, TypeError, AttributeError) as error:
            # An error that cannot travel still says what it was.
            text = value[1] if not ok else ""
            frame = _frame((False, (RuntimeError(repr(error)), text)))
        sock.sendall(frame)


def _command_process(settings: Settings, sock: socket.socket) -> None:
    start_worker(COMMAND_PROCESS)
    _start_process(settings)
    # Closed by the serving process, it may find its end gone while it reads or writes.
    with contextlib.suppress(ConnectionError), sock:
        command_loop(sock, _outcome_frame, _prepare_in_process)


class _Job:
    __slots__ = ("command", "future", "retried")

    def __init__(self, command: Command, future: asyncio.Future[Outcome]) -> None:
        self.command = command
        self.future = future
        self.retried = False


class _Child:
    """One command process, and the commands in its hands, oldest (the running one) first."""

    def __init__(self, settings: Settings) -> None:
        ours, theirs = socket.socketpair()
        self.process = multiprocessing.get_context("spawn").Process(
            target=_command_process,
            args=(settings, theirs),
            name="whoknows-command",
            # Ended with the serving process even if it never gets to `close` (at exit,
            # multiprocessing waits for the others, which wait for a command).
            daemon=True,
        )
        self.process.start()  # one BLAS thread: adapters/cli/threads.py, inherited
        theirs.close()
        self.sock = ours
        self.in_hand: deque[_Job] = deque()
        self.ready = False  # its index is loaded: it has sent its first frame
        self.writer: asyncio.StreamWriter | None = None

    def send(self, job: _Job) -> None:
        assert self.writer is not None
        payload = pickle.dumps(job.command, protocol=pickle.HIGHEST_PROTOCOL)
        self.writer.write(_HEADER.pack(len(payload)) + payload)
        self.in_hand.append(job)

    def stop(self) -> None:
        """Close its socket (it finishes the command in hand and exits), then wait."""
        # Now, not when the event loop next gets to closing the transport.
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        try:
            if self.writer is None:
                raise RuntimeError("not on an event loop yet")
            self.writer.close()
        except RuntimeError:  # not yet on an event loop, or no longer
            self.sock.close()
        self.process.join(STOP_WAIT_S)
        if self.process.is_alive():
            log.warning("a command process did not stop in %.0f s; killing it", STOP_WAIT_S)
            self.process.kill()
            self.process.join()


class CommandRunner:
    def __init__(
        self,
        services: Services,
        router: Router,
        processes: int = 0,
        kick: Callable[[], None] = lambda: None,
    ) -> None:
        self.services = services
        self.router = router
        self.processes = processes
        self.kick = kick  # wakes the worker: a command queued a message to deliver
        self._threads = ThreadPoolExecutor(THREADS, thread_name_prefix="command")
        # Started now, so that their indexes load while the server starts; their sockets
        # join the event loop on the first command.
        self._starting = [_Child(services.settings) for _ in range(processes)]
        self._children: list[_Child] = []  # on the event loop
        self._attached: asyncio.Task[None] | None = None
        self._waiting: deque[_Job] = deque()
        self._readers: set[asyncio.Task[None]] = set()
        self._closing = False

    @property
    def wanted(self) -> int:
        """Commands worth handing over at once: enough for every process to answer a
        batch and prepare the next (on threads, one each)."""
        return self.processes * IN_HAND or THREADS

    async def run(self, command: Command, inbound: int = 0) -> tuple[Reply, dict[int, str]]:
        """The command's reply, and the platform ids of the people it names. `inbound`:
        the kept request it answers (bot/runtime/inbox.py), marked answered with it."""
        if inbound:
            command = dataclasses.replace(command, inbound_id=inbound)
        reply, handles, queued = await self._run(command)
        if queued:
            self.kick()
        return reply, handles

    async def _run(self, command: Command) -> Outcome:
        loop = asyncio.get_running_loop()
        if self.processes == 0:
            return await loop.run_in_executor(
                self._threads, _answer, self.router, self.services, command
            )
        if self._attached is None:
            self._attached = loop.create_task(self._attach_all())
        await asyncio.shield(self._attached)
        if not self._children:
            # Every one died before it was ready (see `_died`): a new one for this command.
            await self._attach(_Child(self.services.settings))
        job = _Job(command, loop.create_future())
        self._waiting.append(job)
        self._feed()
        return await job.future

    async def _attach_all(self) -> None:
        starting, self._starting = self._starting, []
        for child in starting:
            await self._attach(child)

    async def _attach(self, child: _Child) -> None:
        self._children.append(child)  # before the wait: nobody starts another meanwhile
        reader, child.writer = await asyncio.open_unix_connection(sock=child.sock)
        task = asyncio.get_running_loop().create_task(self._read(child, reader))
        self._readers.add(task)
        task.add_done_callback(self._readers.discard)
        self._feed()

    def _feed(self) -> None:
        """Hand waiting commands to the processes with the fewest in hand."""
        attached = [c for c in self._children if c.writer is not None]
        while self._waiting and attached:
            child = min(attached, key=lambda c: len(c.in_hand))
            if len(child.in_hand) >= IN_HAND:
                return
            job = self._waiting.popleft()
            if not job.future.done():  # its caller has not gone away
                child.send(job)

    async def _read(self, child: _Child, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
                message = pickle.loads(await reader.readexactly(size))
                if message == READY:
                    child.ready = True
                    continue
                ok, value = message
                job = child.in_hand.popleft()
                if job.future.done():
                    pass  # its caller has gone away
                elif ok:
                    job.future.set_result(value)
                else:
                    error, text = value
                    error.__cause__ = RemoteTraceback(text)
                    job.future.set_exception(error)
                self._feed()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # it died, or was told to stop
        except Exception:
            log.exception("a command process sent what could not be read; stopping it")
            child.process.kill()
        await self._died(child)

    async def _died(self, child: _Child) -> None:
        self._children.remove(child)
        assert child.writer is not None
        child.writer.close()
        jobs = list(child.in_hand)
        if self._closing:
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(CommandProcessDied("the server is stopping"))
            return
        # The first in hand was running: it runs once more, but only once, as a command
        # that kills its process must not kill every one in turn. One that had committed
        # before the death is not run twice: its kept answer is delivered when its lease
        # runs out (bot/runtime/inbox.py). The others in hand had not started.
        if jobs and jobs[0].retried:
            twice = jobs.pop(0).future
            if not twice.done():
                twice.set_exception(CommandProcessDied("a command process died twice"))
        if jobs:
            jobs[0].retried = True
        self._waiting.extendleft(reversed(jobs))
        # Replaced before any wait here: a command arriving meanwhile must find the new
        # one, not start another. One that died before it was ready (a bad setting, say)
        # would likely die again: it is replaced only when there is work for it.
        if child.ready or self._waiting:
            await self._attach(_Child(self.services.settings))
        await asyncio.to_thread(child.process.join, STOP_WAIT_S)
        code = child.process.exitcode
        log.error("a command process died (exit code %s)", code)

    def close(self) -> None:
        self._closing = True
        for child in self._starting + self._children:
            child.stop()
        self._threads.shutdown(wait=True, cancel_futures=True)
