"""Installing whoknows into a Slack workspace: bolt's OAuth flow and its pages.

With SLACK_CLIENT_ID and SLACK_CLIENT_SECRET (and no SLACK_BOT_TOKEN), `/slack/install`
sends a workspace admin to Slack's consent page and `/slack/oauth_redirect` brings them
back: bolt's OAuth flow checks the state (single use, ten minutes, tied to the browser
by a cookie), exchanges the code (oauth.v2.access, at SLACK_API_URL) and saves the
installation in the stores of installations.py. An install into a workspace whoknows
does not serve (tenancy.py) is undone and not kept (`InstallFlow`). The admin sees a
page of ours either way, saying what happened in words (`FAILURES`), and whoever
writes from a workspace without an installation is told where to install it
(`not_installed`).
"""

from __future__ import annotations

import html
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.error import BoltError
from slack_bolt.oauth.async_callback_options import (
    AsyncCallbackOptions,
    AsyncFailureArgs,
    AsyncSuccessArgs,
)
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_bolt.response import BoltResponse
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.installations import ROTATE_BEFORE_MIN, STATE_TTL_S, Workspaces, error_code
from adapters.slack.settings import SlackSettings
from bot import messages

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
                error_code(error),
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
