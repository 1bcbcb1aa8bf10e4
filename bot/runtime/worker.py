"""The background worker of a server process: fire due jobs, deliver the outbox,
take over requests whose process died after acking them (bot/runtime/inbox.py).

It wakes every `interval` seconds, or at once when a request has just written
something to deliver (`kick`). Several processes may run one each: jobs and
deliveries are claimed in the database, so none is done twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta

from bot.runtime import inbox, jobs, outbox, retention
from bot.runtime.ports import Messenger
from bot.services import Services

log = logging.getLogger(__name__)
PRUNE_EVERY_S = 3600
# Runs a request again, or delivers its kept answer: one per platform (the adapter's).
Recoverer = Callable[[inbox.Pending], Awaitable[None]]


class Worker:
    def __init__(
        self, services: Services, messengers: Mapping[str, Messenger], interval: float = 1.0
    ) -> None:
        self.services = services
        self.messengers = dict(messengers)
        self.recoverers: dict[str, Recoverer] = {}
        self.interval = interval
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._next_prune = 0.0
        self._next_round = 0.0

    def kick(self) -> None:
        """Something was written to deliver: do not wait for the next tick."""
        self._wake.set()

    async def run_once(self, *, kicked: bool = False) -> None:
        """One round. Woken by a kick, only the outbox (what a request just wrote) unless
        a whole round is due: under load every command kicks, and timers, take-overs
        and pruning are matters of time, not of requests."""
        if not kicked or time.monotonic() >= self._next_round:
            self._next_round = time.monotonic() + self.interval
            await asyncio.to_thread(jobs.run_due, self.services)
            if time.monotonic() >= self._next_prune:
                self._next_prune = time.monotonic() + PRUNE_EVERY_S
                await asyncio.to_thread(retention.prune, self.services)
            if self.recoverers:
                await self.recover()
        if self.messengers:
            await outbox.deliver(self.services.db, self.messengers, self.services.clock)

    async def recover(self) -> int:
        """Requests acked by a process that died: the number taken over."""
        lease = timedelta(seconds=self.services.settings.request_lease_s)
        platforms = tuple(self.recoverers)
        now = self.services.clock()
        pending = await asyncio.to_thread(inbox.claim, self.services.db, now, platforms, lease)
        for request in pending:
            log.warning("taking over request %s (attempt %d)", request.id, request.attempts)
            try:
                await self.recoverers[request.platform](request)
            except Exception:  # its lease runs out again; MAX_ATTEMPTS bounds the retries
                log.exception("request %s failed again", request.id)
        return len(pending)

    async def _loop(self) -> None:
        kicked = False
        while not self._stopping:
            try:
                await self.run_once(kicked=kicked)
            except Exception:  # the next tick tries again; nothing is lost
                log.exception("worker tick failed")
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval)
                kicked = True
            except TimeoutError:
                kicked = False
            self._wake.clear()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="whoknows-worker")

    async def stop(self, timeout: float | None = None) -> None:
        """Finish the round under way (for at most `timeout`: what it leaves is leased, and
        another worker retries it once the lease runs out)."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout)
            except TimeoutError:
                log.warning("worker stopped in the middle of a round")
