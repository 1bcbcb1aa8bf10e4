"""Slack's directory: its users as accounts, linked to the people whoknows knows.

`account` turns one Slack user object into an `Account`; `DirectorySync` reads a
workspace's whole directory (users.list) and links every member, page by page,
so that people a lead imported (by e-mail) are reachable on Slack before they
ever talk to the bot, and nobody is created twice.

When it runs: when the server starts, after an OAuth install (that workspace, with
its new token, whatever ran before: a reinstall is how an admin adds a scope), and
daily after that. Several worker processes share one pass per workspace: before
reading, a process claims the workspace's row in `platform_event` (key
`directory:<team>`, `received_at` = when the last pass began) with one conditional
write that only one of them can win, on SQLite and PostgreSQL alike. A due job
(bot/runtime/jobs.py) would not fit: jobs run inside one database transaction with a
synchronous handler, and a pass is minutes of network calls (Slack's Tier 2 limit
on users.list) that must never hold a transaction; nor does the job table keep a
workspace-wide row unique (its key is a huddle and a step).

Each page's 200 members are linked in batches of 50 (`LINK_BATCH`), off the event
loop (in `whoknows serve`, in a process started for the pass: linking is Python
work that would take the GIL from the acks), each batch read first and, for the
members not already linked and in step, one unit of work of a few queries
(`accounts.link_accounts`): an ack's own write waits for one batch at most, and a
daily pass over an unchanged directory writes nothing.
A 429 is waited out (Retry-After) and the same page asked again; a pass that fails
gives its claim back, so the next check tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any, TypeVar

from aiohttp import ClientSession, ClientTimeout
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from bot.db import Database
from bot.db.models import Person, PlatformEvent
from bot.db.retry import retrying
from bot.runtime import events
from bot.runtime.processes import start_worker
from bot.services import accounts
from bot.services.accounts import Account

log = logging.getLogger(__name__)

PLATFORM = "slack"
SEEN_IN = "slack directory"
SLACKBOT = "USLACKBOT"
PAGE_SIZE = 200  # Slack's advice for users.list
# Members linked in one unit of work. On SQLite a unit of work holds the one write
# lock throughout, and a request is acked once it is kept (a write): a page of 200
# would hold acks up for a quarter of a second, a batch of 50 for a few tens of ms.
LINK_BATCH = 50
# A page met by this many 429s in a row ends the pass (tried again at the next check).
MAX_RATE_LIMITS = 10
RETRY_AFTER_DEFAULT_S = 1.0  # a 429 without Retry-After (Slack always sends one)
RETRY_AFTER_MAX_S = 300.0
CALL_TIMEOUT_S = 30
PROGRESS_EVERY = 10  # pages between progress lines at INFO
# Processes starting within this long of each other share the first pass.
START_GRACE = timedelta(minutes=10)
CHECK_EVERY_S = 3600.0  # how often a process looks whether a daily pass is due
CLAIM_PREFIX = "directory:"
LINK_ATTEMPTS = 3
T = TypeVar("T")


def is_member(user: dict[str, Any]) -> bool:
    """A full member of the workspace: not a bot, an app, Slackbot or a guest."""
    return not (
        user.get("is_bot")
        or user.get("is_app_user")
        or user.get("id") == SLACKBOT
        or user.get("is_restricted")
        or user.get("is_ultra_restricted")
    )


def is_person(user: dict[str, Any]) -> bool:
    """Someone who could be asked: anyone but bots, apps and Slackbot (guests too)."""
    return bool(user.get("id")) and not (
        user.get("is_bot") or user.get("is_app_user") or user.get("id") == SLACKBOT
    )


def account(user: dict[str, Any]) -> Account:
    """A Slack user object (users.list, users.info, team_join, user_change) as an account.

    Its e-mail (the `users:read.email` scope) links it to an imported person. A
    guest's (single- or multi-channel) is left out: a guest is invited from outside
    and could have registered anyone's address, so a guest is linked by their Slack
    id alone (an id a lead gave in an import's `slack` column, else a person of
    their own). Bots, apps and Slackbot are nobody to ask (`is_person`).
    """
    profile = user.get("profile") or {}
    return Account(
        platform=PLATFORM,
        external_id=str(user["id"]),
        name=profile.get("real_name") or user.get("real_name") or user.get("name") or "",
        email=_email(profile.get("email")) if is_member(user) else None,
        timezone=user.get("tz"),
        key_hint=user.get("name"),
        deleted=bool(user.get("deleted")),
    )


# --- one page -----------------------------------------------------------------------------


@dataclass
class Counts:
    """What linking one page (or a whole pass) did."""

    users: int = 0  # members listed
    skipped: int = 0  # bots, apps, Slackbot; deleted accounts nobody had
    unchanged: int = 0  # linked already, and nothing to bring up to date
    known: int = 0  # linked already by their Slack id, and brought up to date
    linked: int = 0  # linked to someone already here (by e-mail)
    created: int = 0  # new people

    def add(self, other: Counts) -> None:
        for name in (f.name for f in fields(self)):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def link_batch(db: Database, users: list[dict[str, Any]], now: datetime) -> Counts:
    """Link a batch of users.list's members (off the event loop: it blocks)."""
    return link_users(db, users, now)[0]


def link_users(
    db: Database, users: list[dict[str, Any]], now: datetime
) -> tuple[Counts, dict[str, int]]:
    """Link Slack users (a batch of a page, or the one a team_join / user_change
    brings): what it did, and the person id of each user linked.

    Read first, without the write lock: accounts linked already and in step with
    their people (most of them, when a directory is read again) need no write. The
    others are linked in one unit of work."""
    counts = Counts(users=len(users))
    wanted = [u for u in users if isinstance(u, dict) and is_person(u)]
    ids: dict[str, int] = {}
    with db.reading() as session:
        known = accounts.find_identities(session, PLATFORM, [str(u["id"]) for u in wanted])
        # A deactivated account nobody had is nobody to link: no one is made for it.
        found = [
            account(u) for u in wanted if not u.get("deleted") or str(u["id"]).lower() in known
        ]
        current = accounts.is_current(session, found, now)
        for found_account, in_step in zip(found, current, strict=True):
            if in_step:
                ids[found_account.external_id] = known[found_account.external_id.lower()].person_id
    todo = [a for a, in_step in zip(found, current, strict=True) if not in_step]
    counts.skipped = len(users) - len(found)
    counts.unchanged = len(found) - len(todo)
    if not todo:
        return counts, ids
    with db.unit_of_work() as session:
        before = session.scalar(select(func.count(Person.id))) or 0
        linked = accounts.link_accounts(session, todo, now, seen_in=SEEN_IN)
        after = session.scalar(select(func.count(Person.id))) or 0
        ids |= {a.external_id: p.id for a, p in zip(todo, linked, strict=True)}
    counts.known = sum(1 for a in todo if a.external_id.lower() in known)
    counts.created = after - before
    counts.linked = len(todo) - counts.known - counts.created
    return counts, ids


def _email(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return accounts.valid_email(value)
    except ValueError:  # not one: the account is linked by its id alone
        return None


def linking(work: Callable[..., T], *args: Any) -> T:
    """`work(*args)`, a unit of work that links accounts: through a database outage
    (`retrying`), and again when another process linked the same account or e-mail
    at the same moment (a unique key refused the second; the next try finds it)."""
    for attempt in range(1, LINK_ATTEMPTS + 1):
        try:
            return retrying(work, *args)
        except IntegrityError:
            if attempt == LINK_ATTEMPTS:
                raise
            log.info("an account was linked meanwhile by another request; linking again")
    raise AssertionError("unreachable")


# --- linking in a process of its own -----------------------------------------------------

# Linking is CPU work in Python (SQLAlchemy's ORM): on a thread of the serving process
# it takes the GIL from the event loop, and every ack waits. In `whoknows serve` a pass
# links in a process of its own, started for the pass and gone after it.
# Not niced, as command processes are: a batch holds SQLite's write lock, and a
# linker starved while holding it would hold every ack's write up with it.
# Its name in `ps` and /proc.
LINKER_PROCESS = "whoknows-link"
_linker_db: Database | None = None


def _start_linker(url: str, parent: int) -> None:
    global _linker_db
    from bot.db import open_database

    start_worker(LINKER_PROCESS, parent)
    _linker_db = open_database(url, upgrade=False)


def _link_in_linker(users: list[dict[str, Any]], now: datetime) -> Counts:
    assert _linker_db is not None, "not a linker process"
    return linking(link_batch, _linker_db, users, now)


# --- who reads when ---------------------------------------------------------------------


def claim(db: Database, team: str, now: datetime, fresh: timedelta | None) -> bool:
    """This process reads `team`'s directory now: True unless a pass began within
    `fresh` (None: claim it whatever ran before). One winner across processes."""
    key = CLAIM_PREFIX + team
    with db.unit_of_work() as session:
        if events.first_delivery(session, PLATFORM, key, now):
            return True
        statement = update(PlatformEvent).where(
            PlatformEvent.platform == PLATFORM, PlatformEvent.key == key
        )
        if fresh is not None:
            statement = statement.where(PlatformEvent.received_at <= now - fresh)
        return bool(session.execute(statement.values(received_at=now)).rowcount)


def release(db: Database, team: str) -> None:
    """A pass that failed: the next check may try again."""
    with db.unit_of_work() as session:
        session.execute(
            delete(PlatformEvent).where(
                PlatformEvent.platform == PLATFORM, PlatformEvent.key == CLAIM_PREFIX + team
            )
        )


def _retry_after(error: SlackApiError) -> float:
    headers = getattr(error.response, "headers", None) or {}
    value: Any = None
    for name, found in headers.items():
        if name.lower() == "retry-after":
            value = found[0] if isinstance(found, list | tuple) else found
    try:
        return min(max(float(value), 0.0), RETRY_AFTER_MAX_S)
    except (TypeError, ValueError):
        return RETRY_AFTER_DEFAULT_S


def _status(error: SlackApiError) -> int:
    return int(getattr(error.response, "status_code", 0) or 0)


def _code(error: SlackApiError) -> str:
    try:
        return str(error.response.get("error") or "unknown")
    except Exception:
        return "unknown"


@dataclass
class Pass:
    """One read of a workspace's directory, as it went."""

    team: str
    pages: int = 0
    counts: Counts = field(default_factory=Counts)
    rate_limited: int = 0  # 429s waited out
    waited_s: float = 0.0
    seconds: float = 0.0


class DirectoryError(Exception):
    """A pass that could not finish: Slack's error code (never a token)."""


class DirectorySync:
    """Reads Slack's directories: at start, after an install, and daily.

    `workspaces`: the OAuth installs (oauth.Workspaces), each read with its own token;
    without them, the one bot token's workspace. `in_process`: link in a process of
    the pass's own (`whoknows serve`, as its commands run in command processes), else
    on a thread (tests, small setups).
    """

    def __init__(
        self,
        db: Database,
        clock: Callable[[], datetime],
        *,
        api_url: str | None,
        bot_token: str | None = None,
        workspaces: Any = None,
        every: timedelta = timedelta(days=1),
        check_every_s: float = CHECK_EVERY_S,
        in_process: bool = False,
        serves: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        self.db = db
        self.in_process = in_process
        self.serves = serves  # whether a workspace is served (tenancy.py); None: all
        self.clock = clock
        self.api_url = (api_url or "https://slack.com/api/").rstrip("/") + "/"
        self._bot_token = bot_token
        self.workspaces = workspaces
        self.every = every
        self.check_every_s = check_every_s
        self.passes: list[Pass] = []  # finished in this process, newest last
        self._tasks: set[asyncio.Task[Any]] = set()
        self._running: dict[str, asyncio.Task[Pass | None]] = {}

    @property
    def enabled(self) -> bool:
        return self.every > timedelta(0)

    # --- reading one workspace ---
    def _client(self, token: str, session: ClientSession) -> AsyncWebClient:
        # 429s are ours to wait out (and log); 5xx and dropped connections slack_sdk's.
        return AsyncWebClient(
            token=token,
            base_url=self.api_url,
            session=session,
            timeout=CALL_TIMEOUT_S,
            retry_handlers=[
                AsyncConnectionErrorRetryHandler(max_retry_count=2),
                AsyncServerErrorRetryHandler(max_retry_count=2),
            ],
        )

    async def _page(self, client: AsyncWebClient, cursor: str, run: Pass) -> dict[str, Any]:
        for _ in range(MAX_RATE_LIMITS):
            try:
                response = await client.users_list(limit=PAGE_SIZE, cursor=cursor or None)
                return dict(response.data) if isinstance(response.data, dict) else {}
            except SlackApiError as error:
                if _status(error) != 429:
                    raise DirectoryError(_code(error)) from None
                wait = _retry_after(error)
                run.rate_limited += 1
                run.waited_s += wait
                log.info(
                    "Slack directory %s: users.list rate-limited at page %d; waiting %.0f s",
                    run.team,
                    run.pages + 1,
                    wait,
                )
                await asyncio.sleep(wait)
        raise DirectoryError("ratelimited")

    async def read(self, team: str, token: str) -> Pass:
        """Every member of `team`'s directory, linked page by page."""
        run = Pass(team)
        started = time.monotonic()
        seen: set[str] = set()
        log.info("Slack directory %s: reading users.list", team)
        async with (
            ClientSession(timeout=ClientTimeout(total=CALL_TIMEOUT_S * 2)) as session,
            self._linker() as link,
        ):
            client = self._client(token, session)
            cursor = ""
            while True:
                data = await self._page(client, cursor, run)
                members = [m for m in data.get("members") or [] if isinstance(m, dict)]
                for start in range(0, len(members), LINK_BATCH):
                    run.counts.add(await link(members[start : start + LINK_BATCH]))
                run.pages += 1
                if run.pages % PROGRESS_EVERY == 0:
                    self._progress(run, "so far")
                cursor = str((data.get("response_metadata") or {}).get("next_cursor") or "")
                if not cursor:
                    break
                if cursor in seen:  # Slack would never; a loop must not read forever
                    raise DirectoryError("cursor_repeated")
                seen.add(cursor)
        run.seconds = time.monotonic() - started
        self._progress(run, f"done in {run.seconds:.1f} s")
        return run

    @contextlib.asynccontextmanager
    async def _linker(self) -> AsyncIterator[Callable[[list[dict[str, Any]]], Awaitable[Counts]]]:
        """Links a batch: on a thread, or in a process started for this pass."""
        if not self.in_process:

            async def on_a_thread(batch: list[dict[str, Any]]) -> Counts:
                return await asyncio.to_thread(linking, link_batch, self.db, batch, self.clock())

            yield on_a_thread
            return
        loop = asyncio.get_running_loop()
        pool = ProcessPoolExecutor(
            1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_linker,
            initargs=(self.db.url, os.getpid()),
        )

        # Started now, while the first page is asked for: a pool starts its process
        # on the first task, and a spawned process takes a few seconds to import.
        started = loop.run_in_executor(pool, os.getpid)

        async def in_its_process(batch: list[dict[str, Any]]) -> Counts:
            return await loop.run_in_executor(pool, _link_in_linker, batch, self.clock())

        try:
            yield in_its_process
        finally:
            started.cancel()
            # Not waited for on the event loop: a batch in hand finishes on its own.
            pool.shutdown(wait=False, cancel_futures=True)

    @staticmethod
    def _progress(run: Pass, when: str) -> None:
        c = run.counts
        log.info(
            "Slack directory %s: %d page(s), %d user(s) %s: %d linked by e-mail, "
            "%d created, %d already linked (%d of them unchanged), %d skipped; "
            "%d rate limit(s) waited out (%.0f s)",
            run.team,
            run.pages,
            c.users,
            when,
            c.linked,
            c.created,
            c.known + c.unchanged,
            c.unchanged,
            c.skipped,
            run.rate_limited,
            run.waited_s,
        )

    async def sync(self, team: str, token: str, fresh: timedelta | None) -> Pass | None:
        """Read `team` if this process wins it (see `claim`); None when another has it,
        or the pass failed (logged, claim given back)."""
        running = self._running.get(team)
        if running is not None and not running.done():
            return await asyncio.shield(running)
        won = await asyncio.to_thread(retrying, claim, self.db, team, self.clock(), fresh)
        if not won:
            log.debug("Slack directory %s: read recently, or being read elsewhere", team)
            return None
        task = asyncio.get_running_loop().create_task(self._sync(team, token))
        self._running[team] = task
        return await asyncio.shield(task)

    async def _sync(self, team: str, token: str) -> Pass | None:
        try:
            run = await self.read(team, token)
        except asyncio.CancelledError:
            await asyncio.shield(asyncio.to_thread(release, self.db, team))
            raise
        except Exception as error:
            code = str(error) if isinstance(error, DirectoryError) else type(error).__name__
            log.warning("Slack directory %s: the read stopped (%s); tried again later", team, code)
            await asyncio.to_thread(retrying, release, self.db, team)
            return None
        self.passes.append(run)
        return run

    # --- which workspaces ---
    async def _targets(self) -> list[tuple[str, str]]:
        """(team, token) of every workspace to read."""
        if self.workspaces is None:
            if not self._bot_token:
                return []
            async with ClientSession(timeout=ClientTimeout(total=CALL_TIMEOUT_S)) as session:
                try:
                    who = await self._client(self._bot_token, session).auth_test()
                except SlackApiError as error:
                    raise DirectoryError(_code(error)) from None
            team = who.get("team_id")
            return [(str(team), self._bot_token)] if team else []
        found = []
        for workspace in await self.workspaces.installed():
            if workspace.org_wide:
                # users.list with an org token wants a team: its members are linked
                # as they arrive (users.info) instead.
                log.info("Slack directory: org-wide install %s not read", workspace.enterprise_id)
                continue
            token = await self.workspaces.token(workspace)
            if token:
                found.append((str(workspace.team_id), token))
        return found

    async def sync_due(self, fresh: timedelta | None = None) -> list[Pass]:
        """Read every workspace not read within `fresh` (default: the daily period)."""
        try:
            targets = await self._targets()
        except Exception as error:
            code = str(error) if isinstance(error, DirectoryError) else type(error).__name__
            log.warning("Slack directory: could not tell which workspace to read (%s)", code)
            return []
        done = []
        for team, token in targets:
            if self.serves is not None and not await self.serves(team):
                log.info("Slack directory %s: not read, whoknows does not serve it", team)
                continue
            run = await self.sync(team, token, self.every if fresh is None else fresh)
            if run is not None:
                done.append(run)
        return done

    # --- in the background ---
    def _spawn(self, work: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_log_failure)
        return task

    def start(self) -> None:
        """At start (the processes of one server share the pass), then daily."""
        if self.enabled:
            self._spawn(self._loop())

    async def _loop(self) -> None:
        await self.sync_due(min(START_GRACE, self.every))
        while True:
            await asyncio.sleep(min(self.check_every_s, self.every.total_seconds()))
            await self.sync_due()

    def installed(self, team: str | None, token: str | None) -> None:
        """Installed (or installed again) in `team`: read it now with its new token."""
        if self.enabled and team and token:
            self._spawn(self.sync(team, token, None))

    async def close(self) -> None:
        tasks = list(self._tasks) + list(self._running.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):  # failures logged
                await task


def _log_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("the Slack directory read failed", exc_info=task.exception())
