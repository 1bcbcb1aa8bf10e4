"""The Slack workspaces whoknows serves (bot/services/tenants.py), checked at the edge.

- Every request bolt dispatches passes `middleware`, after bolt's authorize step:
  its workspace (team id, or Enterprise Grid org id) must be served, and so must
  the acting user's when Slack names another (a Slack Connect channel). A person
  from elsewhere is told so politely (commands, buttons, mentions), logged and
  audited; nothing of theirs is kept and nobody is created for them. Other events
  from there (channel messages, profile changes) are dropped. `app_uninstalled` and
  `tokens_revoked` always pass: their tokens must still be cleared.
- An OAuth install into a workspace not served is refused before it is kept
  (`install`, oauth.InstallFlow). With no allow-list configured, the first
  workspace installed becomes the one served; with one bot token, the token's.
- Someone mentioned whom Slack places in a workspace not served is not made a
  person (`foreign`).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.response import BoltResponse
from slack_sdk.oauth.installation_store import Installation

from adapters.slack.settings import SlackSettings
from adapters.slack.translate import PLATFORM
from bot import messages
from bot.services import Services
from bot.services.tenants import FIRST_INSTALL, AllowList

log = logging.getLogger(__name__)

# Events that must reach their listeners from anywhere.
ALWAYS = frozenset({"app_uninstalled", "tokens_revoked"})
# Events a person aims at the bot: refused aloud. Any other event is dropped quietly.
ASKED = frozenset({"app_mention", "app_home_opened"})


class Outsider(Exception):
    """Someone Slack places in a workspace whoknows does not serve."""


class SlackTenancy:
    def __init__(self, services: Services, settings: SlackSettings) -> None:
        self.allow = AllowList(services.db, PLATFORM, settings.workspaces, services.clock)
        self.single_token = not settings.oauth

    async def admits(self, *ids: str | None) -> bool:
        if self.allow.settled:
            return self.allow.admits(*ids)
        return await asyncio.to_thread(self.allow.admits, *ids)

    async def describe(self) -> str:
        if self.single_token and self.allow.configured is None:
            return (
                "the workspace of SLACK_BOT_TOKEN (set WHOKNOWS_SLACK_WORKSPACES to serve others)"
            )
        return await asyncio.to_thread(self.allow.describe)

    # --- requests ---
    async def middleware(
        self, body: dict[str, Any], context: Any, next: Callable[[], Awaitable[Any]]
    ) -> Any:
        event = body.get("event") if body.get("type") == "event_callback" else None
        kind = str(event.get("type")) if isinstance(event, dict) else None
        if kind in ALWAYS:
            return await next()
        if self.single_token and not self.allow.settled:
            # One bot token: its workspace is the one served (bolt's auth.test, cached).
            result = context.authorize_result
            if result is not None and (result.team_id or result.enterprise_id):
                self.allow.fix_home(result.team_id or result.enterprise_id)
        workspace = (context.team_id, context.enterprise_id)
        actor = (context.actor_team_id, context.actor_enterprise_id)
        served = await self.admits(*workspace)
        if served and any(actor) and actor != workspace:
            served = await self.admits(*actor)
        if served:
            return await next()
        return await self._refuse(body, context, kind)

    async def _refuse(self, body: dict[str, Any], context: Any, event: str | None) -> BoltResponse:
        where = context.actor_team_id or context.team_id or context.enterprise_id
        if event is not None and event not in ASKED:
            log.debug("dropped a %s event from Slack workspace %s, not served", event, where)
            return BoltResponse(status=200, body="")
        what = f"a {body['command']} command" if "command" in body else (event or body.get("type"))
        await asyncio.to_thread(
            self.allow.refused,
            where,
            context.actor_user_id or context.user_id,
            f"{what}",
            enterprise=context.enterprise_id,
        )
        if "command" in body:
            # The ack's text is shown to whoever typed it (or, for a kept command, posted
            # to its response_url by the adapter).
            return BoltResponse(status=200, body=messages.SLACK_NOT_SERVED)
        try:
            if context.response_url:
                await context.respond(
                    text=messages.SLACK_NOT_SERVED,
                    response_type="ephemeral",
                    replace_original=False,
                )
            elif event == "app_mention" and context.bot_token:
                await context.client.chat_postMessage(
                    channel=body["event"].get("channel"),
                    thread_ts=body["event"].get("thread_ts") or body["event"].get("ts"),
                    text=messages.SLACK_NOT_SERVED,
                )
        except Exception as error:  # the refusal stands without its explanation
            log.info("could not tell the refused request why (%s)", type(error).__name__)
        return BoltResponse(status=200, body="")

    async def foreign(self, user: dict[str, Any]) -> bool:
        """Whether Slack's profile places this user in a workspace not served."""
        team = user.get("team_id")
        enterprise = (user.get("enterprise_user") or {}).get("enterprise_id")
        return bool(team or enterprise) and not await self.admits(team, enterprise)

    # --- installs ---
    async def install(self, installation: Installation) -> bool:
        """Whether to keep an OAuth installation: a workspace served, or the first one
        installed while no allow-list is configured (then the one served from now on)."""
        org_wide = bool(installation.is_enterprise_install) or not installation.team_id
        workspace = installation.enterprise_id if org_wide else installation.team_id
        if not workspace:
            return False
        name = installation.enterprise_name if org_wide else installation.team_name
        claim = functools.partial(
            self.allow.claim, workspace, FIRST_INSTALL, name, within=installation.enterprise_id
        )
        if await asyncio.to_thread(claim):
            return True
        await asyncio.to_thread(
            self.allow.refused,
            workspace,
            installation.user_id,
            "an installation",
            name=name,
            enterprise=installation.enterprise_id,
        )
        return False
