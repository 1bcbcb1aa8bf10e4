"""Installing whoknows into several Slack workspaces (OAuth), and each workspace's bot token.

With SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (and no SLACK_BOT_TOKEN), `/slack/install`
sends a workspace admin to Slack's consent page and `/slack/oauth_redirect` brings them
back: bolt's OAuth flow checks the state (single use, ten minutes, tied to the browser
by a cookie), exchanges the code (oauth.v2.access, at SLACK_API_URL) and saves the
installation. Installations and states are kept by slack_sdk's SQLAlchemy stores on our
engine, in the tables of migration 0007 (the stores never create tables); those stores
are synchronous, so here every call runs in a thread.

Every Web API call for a workspace uses that workspace's bot token:

- a request: `InstallationAuthorize` (bolt's authorize step) reads the installation,
  and `Workspaces.middleware` lends its token to the adapter's `TokenClient` for the
  rest of the request, listener tasks included (a context variable);
- a delivery from the outbox, or a presence poll: `Workspaces.tokens_for(channel or
  user)`: its workspace when a request from there named it, otherwise each installed
  workspace in turn (a channel or user of another workspace is "not found" there).

Which workspace a channel or user is in is kept in memory and in the table
slack_directory (migration 0008), written after the request that told us (never before
its ack) and read when memory does not know: a restarted process, or another one on the
same database, knows what any of them learned.

When Slack says whoknows was uninstalled from a workspace (`app_uninstalled`), or its
tokens there were revoked (`tokens_revoked`), `Revocations` deletes them from the store,
so a later request from there finds no token (as for a workspace never installed), and
stops the deliveries still waiting for that workspace: failed, with the reason. An
uninstall also forgets which channels and users were there.

Rotating tokens (a refresh token and an expiry) are refreshed once, however many
requests find them near expiry at the same moment: one lock per workspace in this
process, and across processes the refresh runs inside a transaction that locks the
installation (FOR UPDATE on PostgreSQL, BEGIN IMMEDIATE on SQLite) after reading it
again, so a second refresher finds the new token instead of spending the old refresh
token twice (Slack answers that with invalid_refresh_token).
"""

from __future__ import annotations

import asyncio
import html
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_bolt.error import BoltError
from slack_bolt.oauth.async_callback_options import (
    AsyncCallbackOptions,
    AsyncFailureArgs,
    AsyncSuccessArgs,
)
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.response import BoltResponse
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.sqlalchemy_utils import normalize_datetime_for_db
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from slack_sdk.oauth.token_rotation import TokenRotator
from slack_sdk.web import WebClient
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Boolean, Column, Engine, Index, MetaData, String, Table, desc, select

from adapters.slack.settings import SlackSettings
from adapters.slack.translate import PLATFORM
from bot import messages
from bot.db import Database
from bot.db.engine import READING, insert_for
from bot.runtime import outbox

log = logging.getLogger(__name__)

INSTALL_PATH = "/slack/install"
REDIRECT_PATH = "/slack/oauth_redirect"
# manifest.yml's bot scopes (tests/adapters/slack/test_oauth.py keeps the two the same).
BOT_SCOPES = (
    "commands",
    "chat:write",
    "im:write",
    "users:read",
    "users:read.email",
    "dnd:read",
    "app_mentions:read",
    "channels:history",
    "groups:history",
)
STATE_TTL_S = 600
# A rotating token is refreshed when it has less than this left (bolt's default).
ROTATE_BEFORE_MIN = 120
REFRESH_TIMEOUT_S = 10
# Channels and users whose workspace a request told us; past this, the oldest go.
DIRECTORY_SIZE = 50_000
# Slack's answer when a channel or user belongs to another workspace.
ELSEWHERE = {"channel_not_found", "user_not_found"}
# Why a delivery to a workspace whoknows was removed from failed.
UNINSTALLED = "whoknows was uninstalled from the Slack workspace {team}"
REVOKED = "whoknows's access to the Slack workspace {team} was revoked"
GONE = "whoknows is no longer installed in that Slack workspace"

# Which workspace a channel or user is in: migration 0008's table (a test compares them).
DIRECTORY = Table(
    "slack_directory",
    MetaData(),
    Column("slack_id", String(32), primary_key=True),
    Column("enterprise_id", String(32)),
    Column("team_id", String(32)),
    Column("is_enterprise_install", Boolean, nullable=False),
    Index("slack_directory_workspace_idx", "enterprise_id", "team_id"),
)
# Ids looked up, and rows written, in one statement (within SQLite's bound parameters).
LOOKUP_BATCH = 500
SAVE_BATCH = 200

# The bot token of the workspace the current request came from (see TokenClient).
_request_token: ContextVar[str | None] = ContextVar("slack_request_token", default=None)


@dataclass(frozen=True)
class Workspace:
    """An installation's key: a workspace, or a whole Enterprise Grid org (team_id None)."""

    enterprise_id: str | None
    team_id: str | None

    @classmethod
    def of(
        cls, enterprise_id: str | None, team_id: str | None, org_wide: bool | None = False
    ) -> Workspace:
        return cls(enterprise_id or None, None if org_wide else (team_id or None))

    @property
    def org_wide(self) -> bool:
        return self.team_id is None


def use_token(token: str | None) -> None:
    """Calls made from here on in this task carry `token` (work outside any request)."""
    _request_token.set(token)


class TokenClient(AsyncWebClient):
    """The adapter's Web API client: calls made while handling a request carry the bot
    token of the workspace it came from, with no token passed around."""

    @property  # type: ignore[override]
    def token(self) -> str | None:
        return _request_token.get() or self._fixed_token

    @token.setter
    def token(self, value: str | None) -> None:
        self._fixed_token = value


# --- the stores ------------------------------------------------------------------------


class _States(SQLAlchemyOAuthStateStore):
    """slack_sdk's state store, with a state that works once even when two callbacks race."""

    def issue(self, *args: Any, **kwargs: Any) -> str:
        now = normalize_datetime_for_db(datetime.now(UTC))
        with self.engine.begin() as connection:  # states nobody came back with
            connection.execute(
                self.oauth_states.delete().where(self.oauth_states.c.expire_at <= now)
            )
        return super().issue(*args, **kwargs)

    def consume(self, state: str) -> bool:
        now = normalize_datetime_for_db(datetime.now(UTC))
        c = self.oauth_states.c
        with self.engine.begin() as connection:
            gone = connection.execute(
                self.oauth_states.delete().where(c.state == state, c.expire_at > now)
            )
            return bool(gone.rowcount)


class AsyncStates(AsyncOAuthStateStore):
    def __init__(self, store: SQLAlchemyOAuthStateStore) -> None:
        self.store = store

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_issue(self, *args: Any, **kwargs: Any) -> str:
        return await asyncio.to_thread(self.store.issue)

    async def async_consume(self, state: str) -> bool:
        return await asyncio.to_thread(self.store.consume, state)


class AsyncInstallations(AsyncInstallationStore):
    """slack_sdk's SQLAlchemy installation store, each call in a thread."""

    def __init__(self, store: SQLAlchemyInstallationStore) -> None:
        self.store = store

    @property
    def logger(self) -> logging.Logger:
        return log

    async def async_save(self, installation: Installation) -> None:
        await asyncio.to_thread(self.store.save, installation)

    async def async_save_bot(self, bot: Bot) -> None:
        await asyncio.to_thread(self.store.save_bot, bot)

    async def async_find_bot(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        is_enterprise_install: bool | None = False,
    ) -> Bot | None:
        return await asyncio.to_thread(
            self.store.find_bot,
            enterprise_id=enterprise_id,
            team_id=team_id,
            is_enterprise_install=is_enterprise_install,
        )

    async def async_find_installation(
        self,
        *,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None = None,
        is_enterprise_install: bool | None = False,
    ) -> Installation | None:
        return await asyncio.to_thread(
            self.store.find_installation,
            enterprise_id=enterprise_id,
            team_id=team_id,
            user_id=user_id,
            is_enterprise_install=is_enterprise_install,
        )

    async def async_delete_bot(self, *, enterprise_id: str | None, team_id: str | None) -> None:
        await asyncio.to_thread(self.store.delete_bot, enterprise_id=enterprise_id, team_id=team_id)

    async def async_delete_installation(
        self, *, enterprise_id: str | None, team_id: str | None, user_id: str | None = None
    ) -> None:
        await asyncio.to_thread(
            self.store.delete_installation,
            enterprise_id=enterprise_id,
            team_id=team_id,
            user_id=user_id,
        )


def _expiring(installation: Installation, minutes: int = ROTATE_BEFORE_MIN) -> bool:
    soon = time.time() + minutes * 60
    return any(
        expires is not None and refresh is not None and expires <= soon
        for expires, refresh in (
            (installation.bot_token_expires_at, installation.bot_refresh_token),
            (installation.user_token_expires_at, installation.user_refresh_token),
        )
    )


def _as_db_time(epoch: int | None) -> datetime | None:
    return None if epoch is None else normalize_datetime_for_db(datetime.fromtimestamp(epoch, UTC))


def _error_code(error: BaseException) -> str:
    """What went wrong, without anything secret: Slack's error code or the exception's type."""
    cause = getattr(error, "api_error", error)
    response = getattr(cause, "response", None)
    if response is not None:
        try:
            return str(response.get("error") or type(error).__name__)
        except Exception:
            pass
    return type(error).__name__


# --- workspaces and their tokens -------------------------------------------------------


class Workspaces:
    """Installed workspaces: their tokens (refreshed once when rotating), and which
    workspace a channel or user is in."""

    def __init__(self, engine: Engine, settings: SlackSettings) -> None:
        assert settings.client_id and settings.client_secret
        self.engine = engine
        self.client_id = settings.client_id
        self._client_secret = settings.client_secret
        self.api_url = (settings.api_url or "https://slack.com/api/").rstrip("/") + "/"
        self.store = SQLAlchemyInstallationStore(client_id=settings.client_id, engine=engine)
        self.installations = AsyncInstallations(self.store)
        self.states = AsyncStates(_States(expiration_seconds=STATE_TTL_S, engine=engine))
        self.rotate_before_min = ROTATE_BEFORE_MIN
        self.refreshes = 0  # token refreshes done by this process
        self._locks: dict[Workspace, asyncio.Lock] = {}
        self._directory: OrderedDict[str, Workspace] = OrderedDict()
        self._unsaved: dict[str, Workspace] = {}  # learned, not yet in slack_directory
        self._saving: asyncio.Task[None] | None = None

    # --- installations, tokens refreshed when near expiry ---
    async def find(self, workspace: Workspace) -> Installation | None:
        installation = await self.installations.async_find_installation(
            enterprise_id=workspace.enterprise_id,
            team_id=workspace.team_id,
            is_enterprise_install=workspace.org_wide,
        )
        if installation is None or not _expiring(installation, self.rotate_before_min):
            return installation
        lock = self._locks.setdefault(workspace, asyncio.Lock())
        async with lock:
            # Read again under the lock: another request may have refreshed it meanwhile.
            return await asyncio.to_thread(self._refresh, workspace)

    def _refresh(self, workspace: Workspace) -> Installation | None:
        table, c = self.store.installations, self.store.installations.c
        # One transaction around read, refresh and write. SQLite: BEGIN IMMEDIATE (our
        # engine) holds the write lock; PostgreSQL: FOR UPDATE locks the installation.
        # Either way another process's refresh waits here, then reads the new token.
        with self.engine.begin() as connection:
            row = (
                connection.execute(
                    select(table)
                    .where(
                        c.client_id == self.client_id,
                        c.enterprise_id == workspace.enterprise_id,
                        c.team_id == workspace.team_id,
                    )
                    .order_by(desc(c.installed_at))
                    .limit(1)
                    .with_for_update()
                )
                .mappings()
                .first()
            )
            if row is None:
                return None
            installation = self.store.build_installation_entity(row)
            if not _expiring(installation, self.rotate_before_min):
                return installation
            rotator = TokenRotator(
                client_id=self.client_id,
                client_secret=self._client_secret,
                # No retries: a refresh token works once, a blind retry would spend it twice.
                client=WebClient(base_url=self.api_url, timeout=REFRESH_TIMEOUT_S),
            )
            refreshed = rotator.perform_token_rotation(
                installation=installation, minutes_before_expiration=self.rotate_before_min
            )
            if refreshed is None:
                return installation
            self.refreshes += 1
            bot = {
                "bot_token": refreshed.bot_token,
                "bot_refresh_token": refreshed.bot_refresh_token,
                "bot_token_expires_at": _as_db_time(refreshed.bot_token_expires_at),
            }
            user = {
                "user_token": refreshed.user_token,
                "user_refresh_token": refreshed.user_refresh_token,
                "user_token_expires_at": _as_db_time(refreshed.user_token_expires_at),
            }
            connection.execute(table.update().where(c.id == row["id"]).values(**bot, **user))
            bots = self.store.bots
            connection.execute(
                bots.update()
                .where(
                    bots.c.client_id == self.client_id,
                    bots.c.enterprise_id == workspace.enterprise_id,
                    bots.c.team_id == workspace.team_id,
                    bots.c.bot_refresh_token == installation.bot_refresh_token,
                )
                .values(**bot)
            )
            log.info("refreshed the bot token of workspace %s", workspace.team_id)
            return refreshed

    async def token(self, workspace: Workspace) -> str | None:
        installation = await self.find(workspace)
        return installation.bot_token if installation is not None else None

    def _installed(self) -> list[Workspace]:
        c = self.store.installations.c
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(c.enterprise_id, c.team_id, c.is_enterprise_install)
                .where(c.client_id == self.client_id, c.bot_token.is_not(None))
                .distinct()
            ).all()
        return sorted(
            {Workspace.of(*row) for row in rows},
            key=lambda w: (str(w.enterprise_id), str(w.team_id)),
        )

    async def installed(self) -> list[Workspace]:
        return await asyncio.to_thread(self._installed)

    # --- removed from a workspace ---
    async def uninstall(self, workspace: Workspace) -> None:
        """Every installation and bot token of `workspace`, earlier ones included: gone,
        and what slack_directory knew of its channels and users (this process still
        knows, to say why a delivery there fails)."""
        await self.installations.async_delete_all(
            enterprise_id=workspace.enterprise_id, team_id=workspace.team_id
        )
        self._locks.pop(workspace, None)
        await self.saved()  # nothing learned before this is written after it
        await asyncio.to_thread(self._forget, workspace)

    def _forget(self, workspace: Workspace) -> None:
        c = DIRECTORY.c
        with self.engine.begin() as connection:
            connection.execute(
                DIRECTORY.delete().where(
                    c.enterprise_id == workspace.enterprise_id, c.team_id == workspace.team_id
                )
            )

    def _revoke(self, workspace: Workspace, bot: bool, users: list[str]) -> None:
        installations, c = self.store.installations, self.store.installations.c
        mine = (
            c.client_id == self.client_id,
            c.enterprise_id == workspace.enterprise_id,
            c.team_id == workspace.team_id,
        )
        with self.engine.begin() as connection:
            if bot:  # the installations keep who installed and when; their bot tokens go
                connection.execute(
                    installations.update()
                    .where(*mine)
                    .values(bot_token=None, bot_refresh_token=None, bot_token_expires_at=None)
                )
                bots = self.store.bots
                connection.execute(
                    bots.delete().where(
                        bots.c.client_id == self.client_id,
                        bots.c.enterprise_id == workspace.enterprise_id,
                        bots.c.team_id == workspace.team_id,
                    )
                )
            if users:  # we ask for no user scopes, but an older installation may have some
                connection.execute(
                    installations.update()
                    .where(*mine, c.user_id.in_(users))
                    .values(user_token=None, user_refresh_token=None, user_token_expires_at=None)
                )

    async def revoke(self, workspace: Workspace, *, bot: bool, users: list[str]) -> None:
        """The bot token of `workspace` (when `bot`) and these users' tokens: gone.

        Not slack_sdk's delete_bot / delete_installation(user_id) as bolt's listener does:
        the first leaves the bot token on the installation (which authorize reads), the
        second deletes the installer's whole installation, bot token included."""
        await asyncio.to_thread(self._revoke, workspace, bot, users)
        if bot:
            self._locks.pop(workspace, None)

    # --- which workspace a channel or user is in ---
    def remember(self, workspace: Workspace, *slack_ids: str | None) -> None:
        """`slack_ids` are in `workspace`. Known at once in this process; written to
        slack_directory, when new or changed, by a task of its own after the caller's
        work (a request's ack) rather than during it."""
        for slack_id in slack_ids:
            if slack_id:
                if self._directory.get(slack_id) != workspace:
                    self._unsaved[slack_id] = workspace
                self._directory[slack_id] = workspace
                self._directory.move_to_end(slack_id)
        self._trim()
        if not self._unsaved or (self._saving is not None and not self._saving.done()):
            return  # nothing new, or the running save takes it too
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop: write now
            batch, self._unsaved = self._unsaved, {}
            self._save(batch)
            return
        self._saving = loop.create_task(self._saving_all())

    def _trim(self) -> None:
        while len(self._directory) > DIRECTORY_SIZE:
            self._directory.popitem(last=False)

    async def _saving_all(self) -> None:
        while self._unsaved:
            batch, self._unsaved = self._unsaved, {}
            try:
                await asyncio.to_thread(self._save, batch)
            except Exception as error:
                log.warning(
                    "could not keep the workspaces of %d Slack channel(s) or user(s) (%s)",
                    len(batch),
                    _error_code(error),
                )
                for slack_id, workspace in batch.items():  # learned again next time
                    if self._directory.get(slack_id) == workspace:
                        del self._directory[slack_id]

    def _save(self, batch: dict[str, Workspace]) -> None:
        """One upsert: each id's workspace, the latest told. In the order of the ids, so
        that two processes writing the same rows lock them in the same order."""
        rows = [
            {
                "slack_id": slack_id,
                "enterprise_id": workspace.enterprise_id,
                "team_id": workspace.team_id,
                "is_enterprise_install": workspace.org_wide,
            }
            for slack_id, workspace in sorted(batch.items(), key=lambda item: item[0])
        ]
        insert = insert_for(self.engine.dialect.name)
        with self.engine.begin() as connection:
            for start in range(0, len(rows), SAVE_BATCH):
                statement = insert(DIRECTORY).values(rows[start : start + SAVE_BATCH])
                excluded = statement.excluded
                connection.execute(
                    statement.on_conflict_do_update(
                        index_elements=[DIRECTORY.c.slack_id],
                        set_={
                            "enterprise_id": excluded.enterprise_id,
                            "team_id": excluded.team_id,
                            "is_enterprise_install": excluded.is_enterprise_install,
                        },
                    )
                )

    async def saved(self) -> None:
        """Everything remembered so far is in slack_directory (or could not be written)."""
        while self._saving is not None and not self._saving.done():
            await asyncio.shield(self._saving)

    def _lookup(self, slack_ids: list[str]) -> dict[str, Workspace]:
        c = DIRECTORY.c
        found: dict[str, Workspace] = {}
        with self.engine.connect().execution_options(**{READING: True}) as connection:
            for start in range(0, len(slack_ids), LOOKUP_BATCH):
                rows = connection.execute(
                    select(c.slack_id, c.enterprise_id, c.team_id, c.is_enterprise_install).where(
                        c.slack_id.in_(slack_ids[start : start + LOOKUP_BATCH])
                    )
                )
                for slack_id, enterprise_id, team_id, org_wide in rows:
                    found[slack_id] = Workspace.of(enterprise_id, team_id, org_wide)
        return found

    async def workspaces_of(self, slack_ids: list[str]) -> dict[str, Workspace]:
        """The workspace of each of these channels and users that any process learned:
        from memory, else from slack_directory (then kept in memory)."""
        found = {i: self._directory[i] for i in slack_ids if i in self._directory}
        missing = sorted({i for i in slack_ids if i and i not in found})
        if missing:
            stored = await asyncio.to_thread(self._lookup, missing)
            for slack_id, workspace in stored.items():
                # Unless this process learned otherwise meanwhile.
                found[slack_id] = self._directory.setdefault(slack_id, workspace)
            self._trim()
        return found

    async def workspace_of(self, slack_id: str) -> Workspace | None:
        return (await self.workspaces_of([slack_id])).get(slack_id)

    def _stored_in(self, workspace: Workspace) -> set[str]:
        c = DIRECTORY.c
        with self.engine.connect().execution_options(**{READING: True}) as connection:
            return set(
                connection.scalars(
                    select(c.slack_id).where(
                        c.enterprise_id == workspace.enterprise_id,
                        c.team_id == workspace.team_id,
                    )
                )
            )

    async def known_in(self, workspace: Workspace) -> set[str]:
        """The channels and users any process learned are in `workspace`."""
        await self.saved()
        stored = await asyncio.to_thread(self._stored_in, workspace)
        here = {i for i in stored if self._directory.get(i, workspace) == workspace}
        return here | {i for i, w in self._directory.items() if w == workspace}

    async def tokens_for(self, slack_id: str | None) -> list[tuple[Workspace, str]]:
        """The tokens to try for a channel or user: its workspace's when known, else every
        installed workspace's (the right one answers; the others say "not found")."""
        known = await self.workspace_of(slack_id) if slack_id else None
        candidates = [known] if known is not None else await self.installed()
        found = []
        for workspace in candidates:
            token = await self.token(workspace)
            if token:
                found.append((workspace, token))
        return found

    # --- requests ---
    async def middleware(self, context: Any, next: Callable[[], Awaitable[Any]]) -> Any:
        """After bolt's authorize: this request's calls carry its workspace's token.

        Set, not reset: bolt runs the listeners after the last middleware returns, and
        each request (aiohttp) or Socket Mode message is a task of its own, whose
        context variables no other request sees.
        """
        token = context.get("bot_token")
        workspace = Workspace.of(
            context.enterprise_id, context.team_id, context.is_enterprise_install
        )
        if token:
            self.remember(workspace, context.user_id, context.channel_id)
        _request_token.set(token)
        return await next()


class Revocations:
    """Slack's `app_uninstalled` and `tokens_revoked` events.

    bolt offers listeners for both (`enable_token_revocation_listeners`), but its
    tokens_revoked leaves the installations' bot tokens in place (see `revoke`), so the
    store is cleared here: slack_sdk's own `delete_all` for an uninstall, the workspace
    keyed as the authorize step keys it (an org-wide install has no team id). The events
    are deduplicated before they get here, and doing one twice does nothing more.

    Which waiting deliveries were the workspace's: with no workspace left, every Slack
    one; otherwise those to channels and people any process saw there (`remember`, read
    before the uninstall forgets them). Any other fails when tried, its workspace's token
    gone and the rest "not found".
    """

    def __init__(
        self, workspaces: Workspaces | None, db: Database, clock: Callable[[], datetime]
    ) -> None:
        self.workspaces = workspaces
        self.db = db
        self.clock = clock

    async def __call__(self, event: dict[str, Any], context: Any) -> None:
        kind = event.get("type")
        workspace = Workspace.of(
            context.enterprise_id, context.team_id, context.is_enterprise_install
        )
        team = workspace.team_id or workspace.enterprise_id
        if self.workspaces is None:
            log.warning(
                "%s for workspace %s; whoknows runs with the one bot token of "
                "SLACK_BOT_TOKEN, which is not changed here",
                kind,
                team,
            )
            return
        if kind == "app_uninstalled":
            there = await self.workspaces.known_in(workspace)
            await self.workspaces.uninstall(workspace)
            reason = UNINSTALLED.format(team=team)
        elif kind == "tokens_revoked":
            tokens = event.get("tokens") or {}
            bots, users = list(tokens.get("bot") or []), list(tokens.get("oauth") or [])
            there = await self.workspaces.known_in(workspace) if bots else set()
            await self.workspaces.revoke(workspace, bot=bool(bots), users=users)
            log.info("tokens revoked in workspace %s: %d bot, %d user", team, len(bots), len(users))
            if not bots:
                return
            reason = REVOKED.format(team=team)
        else:
            return
        if await self.workspaces.installed():

            def goes_to(slack_id: str | None) -> bool:
                return slack_id is not None and slack_id in there

        else:  # no workspace left: every Slack delivery was for this one

            def goes_to(slack_id: str | None) -> bool:
                return True

        stopped = await asyncio.to_thread(
            outbox.stop, self.db, PLATFORM, reason, self.clock(), goes_to=goes_to
        )
        log.warning(
            "%s: whoknows no longer has a bot token for workspace %s; "
            "%d pending delivery(ies) there stopped",
            kind,
            team,
            stopped,
        )


class InstallationAuthorize(AsyncAuthorize):
    """bolt's authorize step from our installation store, the token refreshed once when
    it nears expiry. The installation already names the bot, so no auth.test per request."""

    def __init__(self, workspaces: Workspaces) -> None:
        self.workspaces = workspaces

    async def __call__(
        self,
        *,
        context: Any,
        enterprise_id: str | None,
        team_id: str | None,
        user_id: str | None,
        **_: Any,
    ) -> AuthorizeResult | None:
        workspace = Workspace.of(enterprise_id, team_id, context.is_enterprise_install)
        try:
            installation = await self.workspaces.find(workspace)
        except Exception as error:  # Slack refused the refresh, or did not answer
            log.error(
                "could not refresh the bot token of workspace %s (%s)", team_id, _error_code(error)
            )
            return None
        if installation is None or not installation.bot_token:
            log.warning("a request from workspace %s, where whoknows is not installed", team_id)
            return None
        return AuthorizeResult(
            enterprise_id=installation.enterprise_id,
            team_id=installation.team_id or team_id,
            team=installation.team_name,
            bot_id=installation.bot_id,
            bot_user_id=installation.bot_user_id,
            bot_token=installation.bot_token,
            bot_scopes=installation.bot_scopes,
            user_id=user_id,
        )


# --- the install pages -----------------------------------------------------------------

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;
line-height:1.5}}a{{color:#1d3557}}</style></head>
<body><h1>{title}</h1>{body}</body></html>
"""
AGAIN = f'<p><a href="{INSTALL_PATH}">Start the installation again</a>.</p>'
FAILURES = {
    "invalid_state": "This installation link has expired or was already used.",
    "invalid_browser": (
        "This installation was started in another browser, or too long ago: "
        "please finish it in the browser you started it in."
    ),
    "access_denied": "The installation was cancelled in Slack, so nothing was installed.",
    "missing_code": "Slack did not confirm the installation, so nothing was installed.",
    "invalid_code": "Slack did not confirm the installation, so nothing was installed.",
    "storage_error": "The installation could not be saved; please try again in a moment.",
}
FAILURE_OTHER = "Slack did not complete the installation, so nothing was installed."


def _page(status: int, title: str, body: str, settings: AsyncOAuthSettings) -> BoltResponse:
    return BoltResponse(
        status=status,
        body=PAGE.format(title=html.escape(title), body=body),
        headers={
            "Content-Type": "text/html; charset=utf-8",
            # The state's cookie has done its job, whatever happened.
            "Set-Cookie": settings.state_utils.build_set_cookie_for_deletion(),
        },
    )


async def _success(args: AsyncSuccessArgs) -> BoltResponse:
    installation = args.installation
    where = installation.team_name or installation.enterprise_name or "your workspace"
    log.info("installed in workspace %s", installation.team_id or installation.enterprise_id)
    if installation.team_id and installation.app_id:
        open_url = f"slack://app?team={installation.team_id}&id={installation.app_id}"
    else:
        open_url = "slack://open"
    body = (
        f"<p>whoknows is now in <strong>{html.escape(where)}</strong>.</p>"
        "<p>In Slack, type <code>/whoknows</code> and a topic, for example "
        "<code>/whoknows refund for a prepaid top-up</code>, and invite the bot to each "
        "team's huddle channel (<code>/invite @whoknows</code>).</p>"
        f'<p><a href="{html.escape(open_url)}">Open Slack</a></p>'
    )
    return _page(200, "whoknows is installed", body, args.settings)


async def _failure(args: AsyncFailureArgs) -> BoltResponse:
    if isinstance(args.error, NotServed):
        installation = args.error.installation
        where = installation.team_name or installation.enterprise_name or "that workspace"
        workspace = installation.team_id or installation.enterprise_id or "?"
        text = messages.INSTALL_NOT_SERVED.format(where=where, workspace=workspace)
        return _page(
            403, "whoknows was not installed", f"<p>{html.escape(text)}</p>", args.settings
        )
    reason = FAILURES.get(args.reason, FAILURE_OTHER)
    log.warning("a Slack installation did not complete (%.40r)", args.reason)
    status = args.suggested_status_code
    if args.reason == "access_denied" or status < 400:
        status = 400
    body = f"<p>{html.escape(reason)}</p>{AGAIN}"
    return _page(status, "whoknows was not installed", body, args.settings)


def not_installed(public_url: str) -> str:
    """What someone in a workspace without an installation is told."""
    return (
        "whoknows is not installed in this workspace yet (or its installation has lapsed). "
        f"A workspace admin can add it at {public_url.rstrip('/')}{INSTALL_PATH}"
    )


class NotServed(BoltError):
    """An installation into a workspace whoknows does not serve (adapters/slack/tenancy.py)."""

    def __init__(self, installation: Installation) -> None:
        super().__init__("installation into a workspace not served")
        self.installation = installation


class InstallFlow(AsyncOAuthFlow):
    """bolt's OAuth flow, but an installation into a workspace whoknows does not serve is
    not kept: Slack is asked to remove the app from there again (apps.uninstall), and
    the admin sees a page that says why."""

    def __init__(
        self,
        *,
        settings: AsyncOAuthSettings,
        serves: Callable[[Installation], Awaitable[bool]],
    ) -> None:
        super().__init__(settings=settings)
        self.serves = serves

    async def store_installation(self, request: Any, installation: Installation) -> None:
        if not await self.serves(installation):
            await self._uninstall(installation)
            raise NotServed(installation)
        await super().store_installation(request, installation)

    async def _uninstall(self, installation: Installation) -> None:
        if not installation.bot_token:
            return
        client = AsyncWebClient(token=installation.bot_token, base_url=self.client.base_url)
        try:
            await client.apps_uninstall(
                client_id=self.settings.client_id, client_secret=self.settings.client_secret
            )
        except Exception as error:  # the token is not kept either way
            log.warning(
                "could not remove whoknows from the Slack workspace %s again (%s)",
                installation.team_id or installation.enterprise_id,
                _error_code(error),
            )


def oauth_settings(
    settings: SlackSettings,
    workspaces: Workspaces,
    *,
    on_installed: Callable[[str | None, str | None], None] | None = None,
) -> AsyncOAuthSettings:
    """bolt's OAuth flow on our stores; `on_installed(team, bot token)` once an install
    is saved (the directory is read then)."""
    assert settings.client_id and settings.client_secret

    async def success(args: AsyncSuccessArgs) -> BoltResponse:
        page = await _success(args)
        if on_installed is not None and not args.installation.is_enterprise_install:
            on_installed(args.installation.team_id, args.installation.bot_token)
        return page

    return AsyncOAuthSettings(
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        scopes=list(BOT_SCOPES),
        user_scopes=[],
        redirect_uri=settings.redirect_uri,
        install_path=INSTALL_PATH,
        redirect_uri_path=REDIRECT_PATH,
        # Straight to Slack's consent page: no page of ours that loads Slack's button image.
        install_page_rendering_enabled=False,
        callback_options=AsyncCallbackOptions(success=success, failure=_failure),
        installation_store=workspaces.installations,
        state_store=workspaces.states,
        state_expiration_seconds=STATE_TTL_S,
        token_rotation_expiration_minutes=ROTATE_BEFORE_MIN,
        logger=log,
    )
