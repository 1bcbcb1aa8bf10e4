"""Slack payloads → neutral Commands (one function per kind of payload)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bot.router import UMBRELLA
from bot.text import well_formed
from bot.types import Command, Where

PLATFORM = "slack"
# Interactive payloads: each comes from a person, named by `user.id`.
INTERACTIVE = frozenset(
    {
        "block_actions",
        "block_suggestion",
        "message_action",
        "shortcut",
        "view_submission",
        "view_closed",
    }
)
# Events whose listener reads `event.user` as a user id.
USER_EVENTS = frozenset({"app_mention", "message", "app_home_opened"})
MAX_ID_CHARS = 255
# `<@U123>` or, with should_escape on, `<@U123|maria>`.
USER_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")
CHANNEL_MENTION = re.compile(r"<#([CG][A-Z0-9]+)(?:\|[^>]*)?>")


def _text(value: Any) -> str:
    """A payload's string as commands carry it: well-formed (no lone surrogate)."""
    return well_formed(str(value))


def mentioned_users(text: str) -> dict[str, str]:
    """Mention token → Slack user id, for every user mentioned in the text."""
    found = USER_MENTION.finditer(_text(text or ""))
    return {match.group(0): match.group(1) for match in found}


def mentioned_channels(text: str) -> dict[str, str]:
    """Channel token → Slack channel id (`<#C123|huddles>` → C123)."""
    found = CHANNEL_MENTION.finditer(_text(text or ""))
    return {match.group(0): match.group(1) for match in found}


def slash_command(payload: Mapping[str, Any], person_id: int, mentions: dict[str, int]) -> Command:
    text = _text(payload.get("text", ""))
    return Command(
        platform=PLATFORM,
        person_id=person_id,
        name=str(payload.get("command", "")).lstrip("/"),
        text=text,
        where=Where(channel=payload.get("channel_id"), team=payload.get("team_id")),
        mentions=mentions,
        channels=mentioned_channels(text),
    )


def _where(body: Mapping[str, Any]) -> Where:
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
        "channel_id"
    )
    message = body.get("message") or {}
    return Where(
        channel=channel,
        thread=message.get("thread_ts") or message.get("ts"),
        team=(body.get("team") or {}).get("id"),
    )


def button_press(
    body: Mapping[str, Any], action_id: str, value: str, person_id: int, values: dict[str, str]
) -> Command:
    return Command(
        platform=PLATFORM,
        person_id=person_id,
        name="",
        text=_text(value),
        where=_where(body),
        action_id=action_id,
        values={key: _text(item) for key, item in values.items()},
    )


def view_submission(view: Mapping[str, Any], person_id: int, values: dict[str, str]) -> Command:
    return Command(
        platform=PLATFORM,
        person_id=person_id,
        name="",
        text=_text(view.get("private_metadata", "")),
        action_id=str(view.get("callback_id", "")),
        values={key: _text(item) for key, item in values.items()},
    )


def message_shortcut(body: Mapping[str, Any], person_id: int) -> Command:
    """*Find an expert for this* on a message: who-knows on that message's text."""
    return Command(
        platform=PLATFORM,
        person_id=person_id,
        name=UMBRELLA,
        text=_text((body.get("message") or {}).get("text", "")),
        where=_where(body),
    )


def app_mention(
    event: Mapping[str, Any], person_id: int, bot_user_id: str | None, mentions: dict[str, int]
) -> Command:
    """`@whoknows refunds prepaid` in a channel: the bot's own mention stripped."""
    text = _text(event.get("text", ""))
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text)
    return Command(
        platform=PLATFORM,
        person_id=person_id,
        name=UMBRELLA,
        text=" ".join(text.split()),
        where=Where(
            channel=event.get("channel"),
            thread=event.get("thread_ts") or event.get("ts"),
            team=event.get("team"),
        ),
        mentions=mentions,
        private=False,
    )


def thread_message(event: Mapping[str, Any], person_id: int) -> Command:
    """Someone wrote in a thread: the huddle skill records it if the thread is a huddle's."""
    return Command(
        platform=PLATFORM,
        person_id=person_id,
        name="",
        text=_text(event.get("text", "")),
        where=Where(channel=event.get("channel"), thread=event.get("thread_ts")),
        action_id="huddle.message",
    )


def is_thread_reply(event: Mapping[str, Any]) -> bool:
    """A person's message in a thread (not the root, not a bot, not an edit or join)."""
    thread = event.get("thread_ts")
    return bool(
        thread
        and thread != event.get("ts")
        and event.get("user")
        and not event.get("bot_id")
        and not event.get("subtype")
    )


def _an_id(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_ID_CHARS


def malformed(body: Any) -> str | None:
    """Why a signed payload cannot be handled (None: it can), before any listener reads it.

    Slack signs what it sends, so this is a sender's bug, not an attack: it gets a 400
    and one log line rather than a 500, or a traceback after the ack.
    """
    if not isinstance(body, Mapping):
        return f"a body that is a JSON {type(body).__name__}, not an object"
    kind = body.get("type")
    if "command" in body:
        return None if _an_id(body.get("user_id")) else "a command without a user_id"
    if kind in INTERACTIVE:
        user = body.get("user")
        if not isinstance(user, Mapping) or not _an_id(user.get("id")):
            return f"{kind} without a user"
        actions = body.get("actions")
        if kind == "block_actions" and not (
            isinstance(actions, list)
            and actions
            and all(isinstance(a, Mapping) and _an_id(a.get("action_id")) for a in actions)
        ):
            return "block_actions without actions"
        if kind.startswith("view_") and not isinstance(body.get("view"), Mapping):
            return f"{kind} without a view"
    if kind == "event_callback":
        event = body.get("event")
        if not isinstance(event, Mapping):
            return "an event that is not an object"
        user = event.get("user")
        if event.get("type") in USER_EVENTS and user is not None and not _an_id(user):
            return f"a {event.get('type')} event whose user is not an id"
        if event.get("type") in {"app_mention", "app_home_opened"} and user is None:
            return f"a {event.get('type')} event without a user"
    return None
