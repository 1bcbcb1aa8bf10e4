"""whoknows removed from a Slack workspace: `app_uninstalled` and `tokens_revoked`.

When Slack says whoknows was uninstalled from a workspace, or its tokens there
were revoked, `Revocations` deletes them from the installation store
(installations.py), so a later request from there finds no token (as for a
workspace never installed), and stops the deliveries still waiting for that
workspace: failed, with the reason. An uninstall also forgets which channels and
users were there (whereabouts.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from adapters.slack.installations import Workspace
from adapters.slack.translate import PLATFORM
from adapters.slack.whereabouts import Whereabouts
from bot.db import Database
from bot.runtime import outbox

log = logging.getLogger(__name__)

# Why a delivery to a workspace whoknows was removed from failed.
UNINSTALLED = "whoknows was uninstalled from the Slack workspace {team}"
REVOKED = "whoknows's access to the Slack workspace {team} was revoked"
GONE = "whoknows is no longer installed in that Slack workspace"


class Revocations:
    """Slack's `app_uninstalled` and `tokens_revoked` events.

    bolt offers listeners for both (`enable_token_revocation_listeners`), but its
    tokens_revoked leaves the installations' bot tokens in place (see
    `Workspaces.revoke`), so the store is cleared here: slack_sdk's own `delete_all` for
    an uninstall, the workspace keyed as the authorize step keys it (an org-wide install
    has no team id). The events are deduplicated before they get here, and doing one
    twice does nothing more.

    Which waiting deliveries were the workspace's: with no workspace left, every Slack
    one; otherwise those to channels and people any process saw there (whereabouts, read
    before the uninstall forgets them). Any other fails when tried, its workspace's token
    gone and the rest "not found".
    """

    def __init__(
        self,
        whereabouts: Whereabouts | None,
        db: Database,
        clock: Callable[[], datetime],
    ) -> None:
        self.whereabouts = whereabouts
        self.db = db
        self.clock = clock

    async def __call__(self, event: dict[str, Any], context: Any) -> None:
        kind = event.get("type")
        workspace = Workspace.asking(context)
        team = workspace.team_id or workspace.enterprise_id
        if self.whereabouts is None:
            log.warning(
                "%s for workspace %s; whoknows runs with the one bot token of "
                "SLACK_BOT_TOKEN, which is not changed here",
                kind,
                team,
            )
            return
        whereabouts, workspaces = self.whereabouts, self.whereabouts.workspaces
        if kind == "app_uninstalled":
            there = await whereabouts.known_in(workspace)
            await workspaces.uninstall(workspace)
            await whereabouts.forget(workspace)
            reason = UNINSTALLED.format(team=team)
        elif kind == "tokens_revoked":
            tokens = event.get("tokens") or {}
            bots, users = list(tokens.get("bot") or []), list(tokens.get("oauth") or [])
            there = await whereabouts.known_in(workspace) if bots else set()
            await workspaces.revoke(workspace, bot=bool(bots), users=users)
            log.info("tokens revoked in workspace %s: %d bot, %d user", team, len(bots), len(users))
            if not bots:
                return
            reason = REVOKED.format(team=team)
        else:
            return
        if await workspaces.installed():

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
