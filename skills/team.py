"""`team …`: a lead sets where their team's huddle threads go and where escalations call."""

from __future__ import annotations

import re

from bot import messages
from bot.db.models import Team
from bot.router import Context, Router, UsageError
from bot.services import permissions
from bot.services.audit import record
from bot.types import Reply, Text

SETTINGS = {"huddles": "huddle_channel", "channel": "channel"}
CHANNEL_NAME = re.compile(r"^[\w.-]{1,80}$")


def _channel(ctx: Context, token: str) -> str:
    """A platform channel token, or `#name` where channels are names (the local chat)."""
    if token in ctx.command.channels:
        return ctx.command.channels[token]
    name = token.removeprefix("#")
    if not CHANNEL_NAME.match(name):
        raise UsageError(messages.TEAM_BAD_CHANNEL.format(token=token[:60]))
    return name


def team(ctx: Context) -> Reply:
    actor = ctx.actor()
    words = ctx.args.split()
    current: Team | None = actor.team
    if current is None:
        raise UsageError(messages.TEAM_NONE)
    if not words:
        return Reply.of(
            Text(
                messages.TEAM_SHOW.format(
                    team=current.name,
                    huddles=current.huddle_channel or messages.TEAM_UNSET,
                    channel=current.channel or messages.TEAM_UNSET,
                )
            )
        )
    if len(words) != 2 or words[0].lower() not in SETTINGS:
        raise UsageError(messages.TEAM_USAGE)
    permissions.require_team_settings(actor, current)
    field = SETTINGS[words[0].lower()]
    value = _channel(ctx, words[1])
    before = getattr(current, field)
    setattr(current, field, value)
    record(
        ctx.session,
        actor.id,
        permissions.SET_TEAM_CHANNEL,
        f"team:{current.name}",
        setting=field,
        before=before,
        after=value,
    )
    return Reply.notice(
        messages.TEAM_SET.format(team=current.name, what=words[0].lower(), channel=words[1]),
        "success",
    )


def register(router: Router) -> None:
    router.command(
        "team",
        usage="team | team huddles #channel | team channel #channel",
        summary="where your team's huddle threads go (leads set it)",
    )(team)
