"""Bot Framework activities (as Teams sends them) → neutral Commands and roster changes."""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from adapters.teams.render import ACTION_KEY, FORM_KEY, ID_SUFFIX, VALUE_KEY
from bot.text import well_formed
from bot.types import Command, Where

PLATFORM = "teams"
# A channel thread's conversation id is the channel's id and the root message's.
THREAD = ";messageid="
CARD_ACTION = "adaptiveCard/action"  # the invoke an Action.Execute sends
_TAG = re.compile(r"<[^>]*>")


@dataclass(frozen=True)
class Account:
    """A Teams user as an activity names them."""

    id: str  # the Bot Framework's id for them in this bot (29:…)
    aad_object_id: str | None
    name: str

    @property
    def key(self) -> str:
        """Our identity's external id: the AAD object id, stable across bots and Graph."""
        return self.aad_object_id or self.id


def account(raw: Mapping[str, Any] | None) -> Account:
    raw = raw or {}
    return Account(
        str(raw.get("id") or ""), raw.get("aadObjectId") or None, str(raw.get("name") or "")
    )


def conversation_type(activity: Mapping[str, Any]) -> str:
    """personal, channel or groupChat."""
    return str((activity.get("conversation") or {}).get("conversationType") or "personal")


def _channel_data(activity: Mapping[str, Any]) -> Mapping[str, Any]:
    data = activity.get("channelData")
    return data if isinstance(data, Mapping) else {}


def channel_id(activity: Mapping[str, Any]) -> str | None:
    """The channel a channel activity happened in (without any thread part)."""
    channel = _channel_data(activity).get("channel") or {}
    if channel.get("id"):
        return str(channel["id"])
    if conversation_type(activity) == "channel":
        return conversation_id(activity).partition(THREAD)[0]
    return None


def team_id(activity: Mapping[str, Any]) -> str | None:
    team = _channel_data(activity).get("team") or {}
    return str(team["id"]) if team.get("id") else None


def tenant_id(activity: Mapping[str, Any]) -> str | None:
    tenant = _channel_data(activity).get("tenant") or {}
    conversation = activity.get("conversation") or {}
    return tenant.get("id") or conversation.get("tenantId") or None


def conversation_id(activity: Mapping[str, Any]) -> str:
    return str((activity.get("conversation") or {}).get("id") or "")


def thread_root(activity: Mapping[str, Any]) -> str | None:
    """The id of the channel post a message replies under, if it is in a thread."""
    root = conversation_id(activity).partition(THREAD)[2]
    return root or None


def where(activity: Mapping[str, Any]) -> Where:
    return Where(
        channel=channel_id(activity) or conversation_id(activity),
        thread=thread_root(activity),
        team=team_id(activity),
    )


# --- messages ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Said:
    """A message's words, with the bot's own mention taken out and other people's as tokens."""

    text: str
    mentions: dict[str, Account]
    to_bot: bool


def said(activity: Mapping[str, Any]) -> Said:
    text = str(activity.get("text") or "")
    bot = str((activity.get("recipient") or {}).get("id") or "")
    to_bot = conversation_type(activity) == "personal"
    mentions: dict[str, Account] = {}
    for entity in activity.get("entities") or []:
        if not isinstance(entity, Mapping) or entity.get("type") != "mention":
            continue
        mentioned = account(entity.get("mentioned"))
        label = str(entity.get("text") or f"<at>{mentioned.name}</at>")
        if mentioned.id and mentioned.id == bot:
            text, to_bot = text.replace(label, " "), True
            continue
        if not mentioned.id.startswith("29:") and not mentioned.aad_object_id:
            # A channel, team or tag mention (19:…): its name stays as words.
            text = text.replace(label, f" {mentioned.name} ")
            continue
        # One word, so commands see it as one token: `@Maria_Santos`.
        token = "@" + ("_".join(mentioned.name.split()) or "someone")
        mentions[token] = mentioned
        text = text.replace(label, f" {token} ")
    # Teams sends channel messages as HTML: tags out, entities back to characters.
    plain = well_formed(html.unescape(_TAG.sub(" ", text)))
    return Said(" ".join(plain.split()), {well_formed(k): v for k, v in mentions.items()}, to_bot)


def text_command(activity: Mapping[str, Any], person_id: int, text: str, mentions: dict) -> Command:
    """`kb refunds` in a 1:1 chat, `@whoknows refunds prepaid` in a channel."""
    name, _, rest = text.partition(" ")
    return Command(
        platform=PLATFORM,
        person_id=person_id,
        name=name.lower() or "help",
        text=rest.strip(),
        where=where(activity),
        mentions=mentions,
        private=conversation_type(activity) == "personal",
    )


def card_data(activity: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """What a card button sent: Action.Submit's `value`, or Action.Execute's `action.data`."""
    value = activity.get("value")
    if not isinstance(value, Mapping):
        return None
    if activity.get("type") == "invoke":
        action = value.get("action") or {}
        data = action.get("data") if isinstance(action, Mapping) else None
        if not isinstance(data, Mapping):
            return None
        value = dict(data)
        if ACTION_KEY not in value and action.get("verb"):
            value[ACTION_KEY] = action["verb"]
    return value if value.get(ACTION_KEY) else None


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else well_formed(str(value))


def card_action(data: Mapping[str, Any], activity: Mapping[str, Any], person_id: int) -> Command:
    """A button press or a form submission: its action, value, and the card's inputs."""
    values = {
        # A repeated input was given an id with a suffix (render.ID_SUFFIX).
        str(key).partition(ID_SUFFIX)[0]: _as_text(value)
        for key, value in data.items()
        if key not in {ACTION_KEY, VALUE_KEY, FORM_KEY, "msteams"}
    }
    return Command(
        platform=PLATFORM,
        person_id=person_id,
        name="",
        text=_as_text(data.get(VALUE_KEY)),
        where=where(activity),
        action_id=str(data[ACTION_KEY]),
        values=values,
    )


def is_form(data: Mapping[str, Any]) -> bool:
    return data.get(FORM_KEY) == "1"


def thread_message(activity: Mapping[str, Any], person_id: int) -> Command:
    """Someone wrote in a channel thread: the huddle skill records it if it is a huddle's."""
    return Command(
        platform=PLATFORM,
        person_id=person_id,
        name="",
        text=said(activity).text,
        where=where(activity),
        action_id="huddle.message",
    )


# --- installs and rosters ---------------------------------------------------------------


@dataclass(frozen=True)
class Roster:
    added: tuple[Account, ...] = ()
    removed: tuple[Account, ...] = ()
    # The bot itself was added (greet) or the app installed or upgraded (sync).
    greet: bool = False
    installed: bool = False
    uninstalled: bool = False
    # channelCreated, channelRenamed, channelDeleted … with the channel's id and name.
    event: str | None = None
    channel: tuple[str, str | None] | None = None


def roster(activity: Mapping[str, Any]) -> Roster:
    bot = str((activity.get("recipient") or {}).get("id") or "")
    added = [account(m) for m in activity.get("membersAdded") or []]
    removed = [account(m) for m in activity.get("membersRemoved") or []]
    action = str(activity.get("action") or "")
    data = _channel_data(activity)
    channel = data.get("channel") or {}
    greet = any(a.id == bot for a in added)
    return Roster(
        added=tuple(a for a in added if a.id != bot and not a.id.startswith("28:")),
        removed=tuple(a for a in removed if a.id != bot and not a.id.startswith("28:")),
        greet=greet,
        installed=greet or (activity.get("type") == "installationUpdate" and action == "add"),
        uninstalled=any(a.id == bot for a in removed)
        or (activity.get("type") == "installationUpdate" and action == "remove"),
        event=data.get("eventType") or None,
        channel=(str(channel["id"]), channel.get("name")) if channel.get("id") else None,
    )
