"""Slack's settings, under Slack's customary environment variable names."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from bot.services.tenants import parse_ids

DIRECTORY_HOURS = "WHOKNOWS_SLACK_DIRECTORY_HOURS"


def _hours(text: str | None) -> float:
    if text is None or not text.strip():
        return 24.0
    try:
        hours = float(text)
    except ValueError:
        hours = -1.0
    if not 0 <= hours < 24 * 366:
        raise ValueError(
            f"{DIRECTORY_HOURS}: {text.strip()[:40]!r} is not a number of hours "
            "(24 reads Slack's directory daily, 0 never)"
        )
    return hours


@dataclass(frozen=True)
class SlackSettings:
    bot_token: str | None = None
    signing_secret: str | None = None
    # Socket Mode: the bot connects out, no public URL needed.
    app_token: str | None = None
    # Multi-workspace installs (OAuth): used when there is no bot token.
    client_id: str | None = None
    client_secret: str | None = None
    # Only when the app lists several redirect URLs: the one to come back to.
    redirect_uri: str | None = None
    # The Web API's base URL ("https://slack.com/api/" unless told otherwise).
    api_url: str | None = None
    # Hours between reads of each workspace's directory (users.list); 0: never read,
    # people are linked only as they arrive (users.info, team_join, user_change).
    directory_hours: float = 24.0
    # The workspaces (team ids) and Enterprise Grid orgs (enterprise ids) served; None:
    # the bot token's, or the first installed (bot/services/tenants.py).
    workspaces: frozenset[str] | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SlackSettings:
        env = os.environ if env is None else env
        return cls(
            bot_token=env.get("SLACK_BOT_TOKEN") or None,
            signing_secret=env.get("SLACK_SIGNING_SECRET") or None,
            app_token=env.get("SLACK_APP_TOKEN") or None,
            client_id=env.get("SLACK_CLIENT_ID") or None,
            client_secret=env.get("SLACK_CLIENT_SECRET") or None,
            redirect_uri=env.get("SLACK_REDIRECT_URI") or None,
            api_url=env.get("SLACK_API_URL") or None,
            directory_hours=_hours(env.get(DIRECTORY_HOURS)),
            workspaces=parse_ids(env.get("WHOKNOWS_SLACK_WORKSPACES")),
        )

    @property
    def oauth(self) -> bool:
        """Installed into workspaces through OAuth, each with its own token (no bot token)."""
        return bool(not self.bot_token and self.client_id and self.client_secret)

    @property
    def enabled(self) -> bool:
        return bool(self.signing_secret and (self.bot_token or self.oauth))

    def __repr__(self) -> str:  # never print a secret
        return (
            f"SlackSettings(enabled={self.enabled}, oauth={self.oauth}, "
            f"socket_mode={bool(self.app_token)})"
        )
