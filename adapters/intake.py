"""Keeping requests before their ack, many to a transaction (bot/runtime/inbox.py).

Under load, fifty requests arrive while one is being written. Written one to a
transaction, each waits its turn for the database's one writer (SQLite) and
the acks queue behind them; here whatever arrives while a write is under way
goes into the next one, so a burst costs a few transactions, not one each.
Marking answered requests done is batched the same way, lingering a little to
gather more, since nobody waits on it.

The writes run on a thread of their own, never queued behind other database
work of the process.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from bot.db.retry import UNAVAILABLE
from bot.runtime import inbox
from bot.services import Services
from bot.types import Reply

log = logging.getLogger(__name__)

FORGET_RETRY_S = 1.0
# Nobody waits on a done mark (a request's lease runs for a minute): under load,
# answers delivered within this window are marked in one transaction, not one each,
# and keeps queue behind fewer of them on the intake thread. The cost: a process
# killed outright (SIGKILL, the OOM killer) within the window leaves those requests
# open, and their answers are delivered again once the lease runs out (a stop by
# SIGTERM writes them first). Short, so that window stays small.
DONE_LINGER_S = 0.02


class _Batches:
    """Items handed in one by one, written together by `write(items) -> results`."""

    def __init__(
        self,
        write: Callable[[list[Any]], list[Any]],
        executor: ThreadPoolExecutor,
        linger: float = 0.0,
    ) -> None:
        self.write = write
        self.executor = executor
        self.linger = linger  # how long a batch waits for more items before it is written
        self._waiting: list[tuple[Any, asyncio.Future[Any]]] = []
        self._writer: asyncio.Task[None] | None = None

    def submit(self, item: Any) -> asyncio.Future[Any]:
        """The item's result, once its batch is written."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._waiting.append((item, future))
        if self._writer is None or self._writer.done():
            self._writer = loop.create_task(self._drain())
        return future

    async def settle(self) -> None:
        """Until every item handed in so far is written (or failed)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        while self._waiting:
            if self.linger:
                await asyncio.sleep(self.linger)
            batch, self._waiting = self._waiting, []
            try:
                results = await loop.run_in_executor(
                    self.executor, self.write, [item for item, _ in batch]
                )
            except Exception as error:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)


class Intake:
    """One platform's kept requests: `keep` before the ack, `done` once answered."""

    def __init__(self, services: Services, platform: str) -> None:
        self.services = services
        self.platform = platform
        executor = ThreadPoolExecutor(1, thread_name_prefix=f"{platform}-intake")
        self._keeps = _Batches(self._keep_all, executor)
        self._dones = _Batches(self._done_all, executor, linger=DONE_LINGER_S)
        # The kept requests in this process's hands (kept here, or taken over from a
        # worker that died), until answered: `hand_over` passes them on when stopping.
        self.open: set[int] = set()
        self._forgetting: set[asyncio.Task[None]] = set()  # `forget`s under way

    async def keep(self, key: str, payload: dict[str, Any]) -> int | None:
        """The request's row id; None when this key was kept before (a duplicate)."""
        return await self.kept(self.keeping(key, payload), key)

    def keeping(self, key: str, payload: dict[str, Any]) -> asyncio.Future[int | None]:
        """`keep`, as a future: for a caller that also waits on something else."""
        future: asyncio.Future[int | None] = self._keeps.submit((key, payload))
        future.add_done_callback(self._opened)
        return future

    async def kept(self, keeping: asyncio.Future[int | None], key: str) -> int | None:
        """What `keeping` came to; 0 when the database failed. The request still runs
        then (an answer now beats a refusal), and its row, if written after all, is
        closed so that no worker runs it again later."""
        try:
            return await keeping
        except Exception as error:
            log.warning("could not keep a %s request (%s); running it anyway", self.platform, error)
            task = asyncio.get_running_loop().create_task(self.forget(key))
            self._forgetting.add(task)
            task.add_done_callback(self._forgetting.discard)
            return 0

    def _opened(self, kept: asyncio.Future[int | None]) -> None:
        if not kept.cancelled() and kept.exception() is None and kept.result():
            self.open.add(kept.result())  # type: ignore[arg-type]

    def finish(self, inbound_id: int, reply: Reply | None = None) -> asyncio.Future[Any]:
        """The answer is out (0: a request that was not kept): marked done with the next
        batch. Not done when the command said nothing because another worker answered
        it first: that worker marks it done once its answer is out.

        Returns at once, with a future of the mark for a caller that must know (a
        take-over). The Slack adapter takes its next command once this one is
        finished, and waiting out DONE_LINGER_S there would hold each of its
        dispatchers that long for every command. A mark that fails leaves the request
        open, handed over on stop (`hand_over`) or taken over when its lease runs out,
        as when every caller waited for it.
        """
        if inbound_id and (reply is None or reply.elements):
            marking = self._dones.submit(inbound_id)
            marking.add_done_callback(functools.partial(self._marked, inbound_id))
            return marking
        self.open.discard(inbound_id)
        nothing: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        nothing.set_result(None)
        return nothing

    def _marked(self, inbound_id: int, marking: asyncio.Future[Any]) -> None:
        if marking.cancelled() or marking.exception() is not None:
            log.warning("could not mark a %s request done; it stays open", self.platform)
            return
        self.open.discard(inbound_id)

    async def hand_over(self, running: set[asyncio.Task[Any]], timeout: float) -> None:
        """Stopping: let the requests under way (`running`) finish within `timeout`; hand
        the kept ones still open to the other workers, claimable at once."""
        running = {task for task in running if not task.done()}
        if running:
            log.info("finishing %d request(s) before stopping", len(running))
            _, late = await asyncio.wait(running, timeout=timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self._dones.settle()  # the answers that are out are done, not handed over
        if self.open:
            ids, now = set(self.open), self.services.clock()
            handed = await asyncio.to_thread(inbox.release, self.services.db, ids, now)
            log.warning("handed %d unfinished request(s) to the other workers", handed)

    async def forget(self, key: str) -> None:
        """After a failed keep: close the request's row if it was written after all,
        trying until the database is back, within half a lease."""
        deadline = time.monotonic() + self.services.settings.request_lease_s / 2
        while True:
            try:
                if await asyncio.to_thread(inbox.forget, self.services.db, self.platform, key):
                    log.warning("a request kept despite an error was closed: answered once")
                return
            except UNAVAILABLE:
                if time.monotonic() >= deadline:
                    log.error("could not close a request whose keep failed; it may run twice")
                    return
                await asyncio.sleep(FORGET_RETRY_S)

    def _keep_all(self, requests: list[tuple[str, dict[str, Any]]]) -> list[int | None]:
        lease = timedelta(seconds=self.services.settings.request_lease_s)
        with self.services.db.writing() as connection:
            now = self.services.clock()
            return inbox.accept_many(connection, self.platform, requests, now, lease)

    def _done_all(self, ids: list[int]) -> list[None]:
        inbox.done(self.services.db, *ids)
        return [None] * len(ids)
