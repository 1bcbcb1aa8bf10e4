"""`team digest …`: the team's weekly digest, seen now, and when it is posted (leads).

The digest itself is built and scheduled by bot/services/digest.py; here a lead
turns it on or off, sets its day and time, its time zone and the leaderboard,
each change audited and the next digest moved to match.
"""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

from bot import messages
from bot.db.models import Person, Team
from bot.router import Context, UsageError
from bot.services import digest, huddles, permissions, presence
from bot.services.accounts import CHAT_PLATFORMS
from bot.types import Reply, Text

_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
SWITCH = {"on": True, "off": False}


def _settings_line(ctx: Context, team: Team) -> str:
    schedule = digest.schedule_of(ctx.session, team)
    if not schedule.enabled:
        return messages.DIGEST_SETTINGS_OFF.format(team=team.name)
    channel = digest.channel_of(team)
    return messages.DIGEST_SETTINGS.format(
        channel=huddles.channel_label(channel) if channel else messages.DIGEST_NO_CHANNEL,
        weekday=schedule.day_name,
        time=schedule.at,
        zone=schedule.zone,
        board=messages.DIGEST_SETTINGS_BOARD if schedule.leaderboard else "",
    )


def preview(ctx: Context, team: Team) -> Reply:
    """The digest of the last week as it was (or will be) posted, and when it goes out."""
    schedule = digest.schedule_of(ctx.session, team)
    start, end = digest.latest_window(schedule, ctx.services.clock())
    found = digest.compute(
        ctx.session, team, start, end, zone=schedule.zone, leaderboard=schedule.leaderboard
    )
    lines = [*digest.lines(found), _settings_line(ctx, team)]
    return Reply.of(*(Text(line) for line in lines))


def _weekday(text: str) -> int | None:
    word = text.strip().lower()
    for number, name in enumerate(digest.WEEKDAYS, start=1):
        if len(word) >= 3 and name.startswith(word):
            return number
    return None


def team_digest(ctx: Context, actor: Person, team: Team, words: list[str]) -> Reply:
    if not words:
        return preview(ctx, team)
    sub = words[0].lower()
    if sub not in {"on", "off", "day", "timezone", "zone", "leaderboard"}:
        raise UsageError(messages.DIGEST_USAGE)
    permissions.require_digest_settings(actor, team)
    row = digest.settings_row(ctx.session, team)
    before = {
        "enabled": row.enabled,
        "weekday": row.weekday,
        "minute": row.minute,
        "timezone": row.timezone,
        "leaderboard": row.leaderboard,
    }
    if sub in SWITCH and len(words) == 1:
        row.enabled = SWITCH[sub]
        what = "on" if row.enabled else "off"
    elif sub == "day" and len(words) in {2, 3}:
        day = _weekday(words[1])
        clock = _TIME.match(words[2]) if len(words) == 3 else None
        if day is None or (len(words) == 3 and clock is None):
            raise UsageError(messages.DIGEST_BAD_DAY.format(text=" ".join(words[1:])[:40]))
        row.weekday = day
        if clock is not None:
            row.minute = int(clock.group(1)) * 60 + int(clock.group(2))
        hhmm = f"{row.minute // 60:02d}:{row.minute % 60:02d}"
        what = f"every {digest.WEEKDAYS[day - 1].capitalize()} at {hhmm}"
    elif sub in {"timezone", "zone"} and len(words) == 2:
        if not presence.valid_timezone(words[1]):
            raise UsageError(messages.DIGEST_BAD_ZONE.format(text=words[1][:60]))
        row.timezone = words[1]
        what = f"time zone {words[1]}"
    elif sub == "leaderboard" and len(words) == 2 and words[1].lower() in SWITCH:
        row.leaderboard = SWITCH[words[1].lower()]
        what = f"leaderboard {words[1].lower()}"
    else:
        raise UsageError(messages.DIGEST_USAGE)
    if ctx.command.platform in (*CHAT_PLATFORMS, "console"):
        # Said from where the team works: its channel is on this platform.
        row.platform = ctx.command.platform
    now = ctx.services.clock()
    row.updated_at = now
    ctx.session.flush()
    after = {key: getattr(row, key) for key in before}
    permissions.allowed(
        ctx.session,
        actor,
        permissions.SET_TEAM_DIGEST,
        f"team:{team.name}",
        before=before,
        after=after,
    )
    job = digest.plan_team(ctx.session, team, now, again=True)
    if job is None:
        return Reply.notice(messages.DIGEST_TURNED_OFF.format(team=team.name), "success")
    schedule = digest.schedule_of(ctx.session, team)
    local = job.due_at.astimezone(ZoneInfo(schedule.zone))
    when = f"{local:%a %d %b %H:%M} {schedule.zone}"
    return Reply.notice(
        messages.DIGEST_CHANGED.format(team=team.name, what=what, next=when), "success"
    )
