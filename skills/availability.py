"""`status`: say whether you can help now, for how long (`busy 30m`)."""

from __future__ import annotations

from bot import messages
from bot.db.models import Status
from bot.router import Context, Router, UsageError
from bot.services import presence
from bot.types import PresenceView, Reply

WORDS = {
    "available": Status.AVAILABLE,
    "free": Status.AVAILABLE,
    "back": Status.AVAILABLE,
    "busy": Status.BUSY,
    "away": Status.AWAY,
    "oncall": Status.ON_CALL,
    "on_call": Status.ON_CALL,
    "on-call": Status.ON_CALL,
    "call": Status.ON_CALL,
    "off": Status.OFF,
}


def _until(view: PresenceView) -> str:
    return f" until {view.until_local}" if view.until_local else ""


def set_status(ctx: Context) -> Reply:
    words = ctx.args.lower().replace("on a call", "oncall").split()
    if ctx.invoked_as in WORDS:
        words.insert(0, ctx.invoked_as)
    actor = ctx.actor()
    now = ctx.services.clock()
    if not words:
        view = presence.current(actor, now)
        return Reply.notice(
            messages.STATUS_SHOW.format(
                label=view.label, until=_until(view), hours=presence.format_hours(actor)
            )
        )
    status = WORDS.get(words[0])
    if status is None:
        raise UsageError(messages.STATUS_USAGE)
    duration = None
    if len(words) > 1:
        duration = presence.parse_duration(" ".join(words[1:]))
        if duration is None:
            raise UsageError(messages.BAD_DURATION.format(text=" ".join(words[1:])[:40]))
    presence.set_status(ctx.session, actor, status, now, duration)
    view = presence.current(actor, now)
    return Reply.notice(
        messages.STATUS_SET.format(label=presence.LABELS[status.value], until=_until(view)),
        "success",
    )


def register(router: Router) -> None:
    router.command(
        "status",
        aliases=("available", "busy", "away", "oncall", "off"),
        usage="status available|busy|away|oncall|off [30m]",
        summary="say whether you can help now, and for how long",
    )(set_status)
