"""Running commands off the event loop: on a few threads, or in worker processes.

Ranking is CPU work in Python. On threads it competes with the event loop for
the GIL, and every ack waits; in a worker process it runs on another core
and the loop only moves bytes. `whoknows serve` uses one worker process by
default (WHOKNOWS_COMMAND_PROCESSES); tests and small setups use threads,
which share the caller's services (and its clock).
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import NamedTuple

from bot import outbox
from bot.config import Settings
from bot.db.retry import UNAVAILABLE, retrying
from bot.router import Router
from bot.services import Services, people
from bot.types import Command, Reply

log = logging.getLogger(__name__)

THREADS = 2
COMMAND_NICENESS = 10
PARENT_CHECK_S = 1.0

# One per worker process, made by `_start_process`.
_process_services: Services | None = None
_process_router: Router | None = None


def _start_process(settings: Settings) -> None:
    global _process_services, _process_router
    from bot import logs
    from bot.db import open_database
    from skills import build_router

    logs.configure(settings)
    _exit_with(os.getppid())
    # Acks have a hard deadline (Slack's 3 seconds) and answers do not: when the
    # cores are busy, the serving process goes first.
    os.nice(COMMAND_NICENESS)

    _process_services = Services(open_database(settings.database_url, upgrade=False), settings)
    _process_router = build_router()
    # Load the index now, not on the first question.
    _process_services.matcher  # noqa: B018


def _exit_with(parent: int) -> None:
    """Go when the serving process goes, however it went.

    Killed outright (SIGKILL, the OOM killer), it leaves its command process
    waiting for work forever, holding a whole index in memory; a supervisor that
    restarts workers would pile them up.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_S)
        os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


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
    reply = router.dispatch(command, services)
    queued = outbox.enqueued != before  # another thread's message at worst wakes it once more
    try:
        handles = reply_handles(services, command.platform, reply)
    except UNAVAILABLE:
        # The answer is kept; without handles, cards show names without links.
        log.warning("database unavailable; answering without platform handles")
        handles = {}
    return Outcome(reply, handles, queued)


def _dispatch_in_process(command: Command) -> Outcome:
    assert _process_services is not None and _process_router is not None
    return _answer(_process_router, _process_services, command)


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
        self._executor: Executor
        if processes > 0:
            self._executor = self._pool()
        else:
            self._executor = ThreadPoolExecutor(THREADS, thread_name_prefix="command")

    def _pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.processes,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_process,
            initargs=(self.services.settings,),
        )

    async def run(self, command: Command) -> tuple[Reply, dict[int, str]]:
        """The command's reply, and the platform ids of the people it names."""
        reply, handles, queued = await self._run(command)
        if queued:
            self.kick()
        return reply, handles

    async def _run(self, command: Command) -> Outcome:
        loop = asyncio.get_running_loop()
        if self.processes == 0:
            return await loop.run_in_executor(
                self._executor, _answer, self.router, self.services, command
            )
        pool = self._executor
        try:
            return await loop.run_in_executor(pool, _dispatch_in_process, command)
        except BrokenProcessPool:
            # A command process died (the OOM killer, a crash in native code). The pool
            # never replaces it: every later command would fail, until a restart.
            if self._executor is pool:  # the first to notice starts new ones
                log.error("a command process died; starting new ones")
                pool.shutdown(wait=False, cancel_futures=True)
                self._executor = self._pool()
            # Once: a command that kills its process must not kill every one in turn. One
            # that had committed before the death is not run twice: its kept answer is
            # delivered when its lease runs out (bot/inbox.py).
            return await loop.run_in_executor(self._executor, _dispatch_in_process, command)

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
