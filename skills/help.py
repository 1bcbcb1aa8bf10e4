"""`help`: what the bot can do, drawn from the commands registered."""

from __future__ import annotations

from functools import partial

from bot import messages
from bot.router import Context, Router
from bot.types import Reply, Text


def show_help(router: Router, ctx: Context) -> Reply:
    lines = [f"• `{route.usage}`: {route.summary}" for route in router.routes.values()]
    return Reply.of(Text(messages.HELP_HEADER), Text("\n".join(lines)), Text(messages.HELP_FOOTER))


def register(router: Router) -> None:
    router.command("help", aliases=("?", "commands"), usage="help", summary="this list")(
        partial(show_help, router)
    )
