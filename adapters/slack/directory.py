"""Slack's directory: its users as accounts to link to the people whoknows knows."""

from __future__ import annotations

from typing import Any

from bot.services.accounts import Account

PLATFORM = "slack"
SEEN_IN = "slack directory"


def is_member(user: dict[str, Any]) -> bool:
    """A full member of the workspace: not a bot, an app, Slackbot or a guest."""
    return not (
        user.get("is_bot")
        or user.get("is_app_user")
        or user.get("id") == "USLACKBOT"
        or user.get("is_restricted")
        or user.get("is_ultra_restricted")
    )


def account(user: dict[str, Any]) -> Account:
    """A Slack user object (users.list, users.info, team_join, user_change) as an account.

    Its e-mail (the `users:read.email` scope) links it to an imported person; guests
    and bots are linked by their id alone.
    """
    profile = user.get("profile") or {}
    email = profile.get("email") if is_member(user) else None
    return Account(
        platform=PLATFORM,
        external_id=str(user["id"]),
        name=profile.get("real_name") or user.get("real_name") or user.get("name") or "",
        email=email if isinstance(email, str) and email.strip() else None,
        timezone=user.get("tz"),
        key_hint=user.get("name"),
        deleted=bool(user.get("deleted")),
    )
