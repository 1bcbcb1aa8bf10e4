"""Each Slack workspace's installation and bot token (OAuth installs).

Installations and OAuth states are kept by slack_sdk's SQLAlchemy stores on our
engine, in the tables of migration 0007 (the stores never create tables); those
stores are synchronous, so here every call runs in a thread. The install flow
that fills them is install.py's.

Every Web API call for a workspace uses that workspace's bot token. During a
request, `InstallationAuthorize` (bolt's authorize step) reads the installation,
and `Workspaces.middleware` lends its token to the adapter's `TokenClient` for the
rest of the request, listener tasks included (a context variable). Work outside
any request (a delivery from the outbox, a presence poll) finds the token of the
channel's or user's workspace through whereabouts.py, or sets one (`use_token`).

Rotating tokens (a refresh token and an expiry) are refreshed once, however many
requests find them near expiry at the same moment: one lock per workspace in this
process, and across processes the refresh runs inside a transaction that locks the
installation (FOR UPDATE on PostgreSQL, BEGIN IMMEDIATE on SQLite) after reading it
again, so a second refresher finds the new token instead of spending the old refresh
token twice (Slack answers that with invalid_refresh_token).

When whoknows is uninstalled or its tokens revoked (revocations.py), `uninstall`
and `revoke` take them out of the store, so a later request from there finds no
token, as for a workspace never installed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from slack_bolt.authorization import AuthorizeResult
from slack_bolt.authorization.async_authorize import AsyncAuthorize
from slack_sdk.oauth.installation_store import Bot, Installation
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.sqlalchemy_utils import normalize_datetime_for_db
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from slack_sdk.oauth.token_rotation import TokenRotator
from slack_sdk.web import WebClient
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import Engine, desc, select

from adapters.slack.settings import SlackSettings

log = logging.getLogger(__name__)

STATE_TTL_S = 600
# A rotating token is refreshed when it has less than this left (bolt's default).
ROTATE_BEFORE_MIN = 120
REFRESH_TIMEOUT_S = 10

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

    @classmethod
    def asking(cls, context: Any) -> Workspace:
        """The workspace a request came from (bolt's context, after authorize)."""
        return cls.of(context.enterprise_id, context.team_id, context.is_enterprise_install)

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


def error_code(error: BaseException) -> str:
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
    """Installed workspaces and their bot tokens, refreshed once when rotating."""

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
        """Every installation and bot token of `workspace`, earlier ones included: gone."""
        await self.installations.async_delete_all(
            enterprise_id=workspace.enterprise_id, team_id=workspace.team_id
        )
        self._locks.pop(workspace, None)

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

    # --- requests ---
    async def middleware(self, context: Any, next: Callable[[], Awaitable[Any]]) -> Any:
        """After bolt's authorize: this request's calls carry its workspace's token.

        Set, not reset: bolt runs the listeners after the last middleware returns, and
        each request (aiohttp) or Socket Mode message is a task of its own, whose
        context variables no other request sees.
        """
        _request_token.set(context.get("bot_token"))
        return await next()


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
                "could not refresh the bot token of workspace %s (%s)", team_id, error_code(error)
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
