"""A neutral Reply → an Adaptive Card (1.5) for Microsoft Teams, one function per element.

User text goes through `escape`, which leaves it readable but inert: Teams turns
`<at>Name</at>` into a mention when an entity names it, renders Markdown links
and expands `{{DATE(…)}}`; a word joiner (U+2060, invisible) after `<`, inside
`](` and between `{{` breaks each of those without changing what people read.
The only mentions are `Mention` elements and expert cards of people with a Teams
handle, each with its `mention` entity in the card's `msteams.entities`; an
expert with no Teams account is shown by name, "not on Teams yet".

Buttons are `Action.Submit`s whose data carries the action id and value under
`wk.action` / `wk.value`; Teams sends them back with the card's inputs (a
picker's choice, a form's fields) in the activity's `value`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import singledispatch
from typing import Any
from urllib.parse import quote

from bot import messages
from bot.text import is_grapheme_boundary, well_formed
from bot.types import (
    Actions,
    Article,
    Button,
    Form,
    FormField,
    Line,
    Mention,
    Notice,
    PersonCard,
    Picker,
    Reply,
    Text,
)

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
CARD_VERSION = "1.5"
# Teams refuses a message past about 28 KB, text and attachments together: the
# card stays below with room for the activity around it.
MAX_CARD_BYTES = 26_000
TEXT_CHARS = 4_000
SNIPPET_CHARS = 1_500
NAME_CHARS = 200
TITLE_CHARS = 250
LABEL_CHARS = 80
INPUT_CHARS = 4_000
SUMMARY_CHARS = 200
CHOICES = 100
# Buttons in one ActionSet: Teams' host config shows five and drops the rest.
ACTIONS_PER_SET = 5
# A repeated input id in one card is suffixed ~2, ~3, … (ids must be unique in a card);
# translate.card_action strips the suffix.
ID_SUFFIX = "~"

ACTION_KEY = "wk.action"
VALUE_KEY = "wk.value"
FORM_KEY = "wk.form"  # a form's submit button: its card can be replaced by the answer
CHAT_URL = "https://teams.microsoft.com/l/chat/0/0?users={user}"
_AAD_ID = re.compile(r"^[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")

# Presence: the mark before a name and the colour of the status line.
PRESENCE = {
    "available": ("🟢", "Good"),
    "busy": ("🟠", "Warning"),
    "on_call": ("📞", "Warning"),
    "away": ("🌙", "Default"),
    "off": ("⚫", "Default"),
    "off_shift": ("💤", "Default"),
}
NOTICE = {
    "info": ("ℹ️", "Default"),
    "success": ("✅", "Good"),
    "warning": ("⚠️", "Warning"),
    "error": ("❌", "Attention"),
}
VERIFIED = "✓"
ELLIPSIS = "…"

# Wording this renderer adds around the neutral text.
CHAT_BUTTON = "Chat"
THEIR_TIME = "their time"
FOUND_HELPFUL = "{count} found it helpful"
REQUIRED = "{label} is needed."
MORE = "…and {count} more (too long for one Teams message)."

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_JOINER = "\u2060"


# --- escaping and truncation ------------------------------------------------------------


def escape(text: str) -> str:
    """User text as TextBlock text: no mentions, links, HTML or date macros of its own."""
    text = _CONTROL.sub("", text)
    return (
        text.replace("<", "<" + _JOINER)
        .replace("](", "]" + _JOINER + "(")
        .replace("{{", "{" + _JOINER + "{")
    )


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, never splitting a visible character, "…" when cut."""
    if len(text) <= limit:
        return text
    cut = max(limit - len(ELLIPSIS), 0)
    while cut > 0 and not is_grapheme_boundary(text, cut):
        cut -= 1
    return text[:cut].rstrip() + ELLIPSIS


def _safe(text: str, limit: int) -> str:
    return escape(clip(text, limit))


def _plain(text: str, limit: int = LABEL_CHARS) -> str:
    """Button titles, labels and choices: shown verbatim by Teams, only cleaned and cut."""
    return clip(_CONTROL.sub("", text), limit) or " "


def _block(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextBlock", "text": text, "wrap": True, **style}


# --- mentions ---------------------------------------------------------------------------


@dataclass
class _Card:
    """What the element renderers share: people's Teams ids and the mentions made."""

    handles: Mapping[int, str]
    entities: list[dict[str, Any]] = field(default_factory=list)
    ids: set[str] = field(default_factory=set)

    def input_id(self, name: str) -> str:
        candidate, number = name, 1
        while candidate in self.ids:
            number += 1
            candidate = f"{name}{ID_SUFFIX}{number}"
        self.ids.add(candidate)
        return candidate

    def handle(self, person_id: int, handle: str | None = None) -> str | None:
        return handle or self.handles.get(person_id)

    def mention(self, part: Mention) -> str:
        user = self.handle(part.person_id, part.handle)
        if not user:
            return escape(part.name)  # no Teams account: a name, never a ping
        # Inside <at>…</at> too, a name makes no link or date macro, and is cut whole.
        name = _safe(re.sub(r"[<>]", "", part.name).strip(), NAME_CHARS) or "?"
        text = f"<at>{name}</at>"
        entity = {"type": "mention", "text": text, "mentioned": {"id": user, "name": name}}
        if entity not in self.entities:
            self.entities.append(entity)
        return text


# --- one renderer per element type ------------------------------------------------------


@singledispatch
def render_element(element: object, card: _Card) -> list[dict[str, Any]]:
    raise TypeError(f"no Teams rendering for {type(element).__name__}")


@render_element.register
def _(element: Text, card: _Card) -> list[dict[str, Any]]:
    return [_block(_safe(element.text, TEXT_CHARS))] if element.text.strip() else []


@render_element.register
def _(element: Notice, card: _Card) -> list[dict[str, Any]]:
    mark, colour = NOTICE.get(element.severity, NOTICE["info"])
    return [_block(f"{mark} {_safe(element.text, TEXT_CHARS)}", color=colour)]


@render_element.register
def _(element: Line, card: _Card) -> list[dict[str, Any]]:
    text = "".join(
        card.mention(part) if isinstance(part, Mention) else _safe(part, TEXT_CHARS)
        for part in element.parts
    )
    return [_block(text)] if text.strip() else []


def chat_url(handle: str) -> str | None:
    """A deep link to a 1:1 chat with someone, from their AAD object id."""
    return CHAT_URL.format(user=quote(handle)) if _AAD_ID.match(handle) else None


@render_element.register
def _(element: PersonCard, card: _Card) -> list[dict[str, Any]]:
    presence = element.presence
    mark, colour = PRESENCE.get(presence.status, ("⚪", "Default"))
    handle = card.handle(element.person_id)
    if handle:  # a real mention: Teams shows who it is, and the chat opens from it
        head = f"{mark} {card.mention(Mention(element.person_id, element.name, handle))}"
    else:
        head = f"{mark} **{_safe(element.name, NAME_CHARS)}**"
    if element.team:
        head += f" · {_safe(element.team, NAME_CHARS)}"
    status = escape(presence.label)
    if presence.until_local:
        status += f" until {escape(presence.until_local)}"
    if presence.local_time:
        status += f" · {escape(presence.local_time)} {THEIR_TIME}"
    items = [_block(head)]
    if not handle:  # still worth knowing; reached some other way
        items.append(_block(messages.NOT_ON_TEAMS, isSubtle=True, spacing="None", size="Small"))
    items.append(_block(status, color=colour, spacing="None", size="Small"))
    if element.tags:
        tags = " · ".join(
            f"{_safe(t.name, NAME_CHARS)} {t.level}{' ' + VERIFIED if t.verified else ''}"
            for t in element.tags
        )
        items.append(_block(tags, spacing="Small"))
    if element.reason.strip():
        mark = messages.BASIS_MARK.get(element.basis)
        reason = _safe(element.reason, TEXT_CHARS)
        items.append(_block(f"{mark} {reason}" if mark else reason, isSubtle=True, size="Small"))
    url = chat_url(handle) if handle else None
    # An Action.OpenUrl is never reported to the bot: the card's contact goes unused.
    actions = [{"type": "Action.OpenUrl", "title": CHAT_BUTTON, "url": url}] if url else []
    actions += [_button(button) for button in element.buttons]
    if actions:
        items.append({"type": "ActionSet", "actions": actions})
    return [{"type": "Container", "separator": True, "items": items}]


@render_element.register
def _(element: Article, card: _Card) -> list[dict[str, Any]]:
    items = [_block(f"#{element.entry_id} {_safe(element.title, TITLE_CHARS)}", weight="Bolder")]
    if element.snippet.strip():
        items.append(_block(_safe(element.snippet, SNIPPET_CHARS), spacing="Small"))
    notes = [escape(tag) for tag in element.tags]
    if element.helpful:
        notes.append(FOUND_HELPFUL.format(count=element.helpful))
    if notes:
        items.append(_block(" · ".join(notes), isSubtle=True, size="Small", spacing="Small"))
    return [{"type": "Container", "separator": True, "items": items}]


def submit(title: str, action_id: str, value: str, style: str = "default", **extra: str) -> dict:
    action: dict[str, Any] = {
        "type": "Action.Submit",
        "title": _plain(title),
        "data": {ACTION_KEY: action_id, VALUE_KEY: value, **extra},
    }
    if style == "primary":
        action["style"] = "positive"
    elif style == "danger":
        action["style"] = "destructive"
    return action


def _choice_set(input_id: str, label: str, choices: list[tuple[str, str]], **extra: Any) -> dict:
    return {
        "type": "Input.ChoiceSet",
        "id": input_id,
        "label": _plain(label),
        "style": "compact",
        "choices": [{"title": _plain(title), "value": value} for value, title in choices][:CHOICES],
        **extra,
    }


def _picker(picker: Picker, card: _Card) -> dict[str, Any] | None:
    # A multi-select's value comes back as "1,2": the same as Command.values wants.
    choices = [(o.value, o.label) for o in picker.options if o.value and "," not in o.value]
    if not choices:
        return None  # nothing to choose: a choice set must have choices
    return _choice_set(
        card.input_id(picker.name),
        picker.label,
        choices,
        isMultiSelect=True,
        value=",".join(picker.selected),
    )


def _button(button: Button) -> dict[str, Any]:
    return submit(button.label, button.action_id, button.value, button.style)


@render_element.register
def _(element: Actions, card: _Card) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    picker = _picker(element.picker, card) if element.picker is not None else None
    if picker is not None:
        items.append(picker)
    buttons = [_button(b) for b in element.buttons]
    for start in range(0, len(buttons), ACTIONS_PER_SET):
        items.append({"type": "ActionSet", "actions": buttons[start : start + ACTIONS_PER_SET]})
    return items


def _input(form_field: FormField, card: _Card) -> dict[str, Any]:
    extra: dict[str, Any] = {"isRequired": form_field.required}
    if form_field.required:
        extra["errorMessage"] = _plain(REQUIRED.format(label=form_field.label), 200)
    input_id = card.input_id(form_field.name)
    choices = [(c, c) for c in form_field.options if c]
    if form_field.kind == "select" and choices:
        if form_field.value:
            extra["value"] = form_field.value
        return _choice_set(input_id, form_field.label, choices, **extra)
    # A select with nothing to choose from is typed instead, as on Slack.
    element = {
        "type": "Input.Text",
        "id": input_id,
        "label": _plain(form_field.label),
        "isMultiline": form_field.kind == "multiline",
        "maxLength": INPUT_CHARS,
        **extra,
    }
    if form_field.value:
        element["value"] = clip(_CONTROL.sub("", form_field.value), INPUT_CHARS)
    return element


@render_element.register
def _(element: Form, card: _Card) -> list[dict[str, Any]]:
    action = submit(element.submit_label, element.action_id, element.value, "primary")
    action["data"][FORM_KEY] = "1"
    # Only this form's inputs travel with its submission (and those around it).
    action["associatedInputs"] = "auto"
    items = [
        _block(_safe(element.title, TITLE_CHARS), weight="Bolder", size="Medium"),
        *(_input(f, card) for f in element.fields),
        {"type": "ActionSet", "actions": [action]},
    ]
    return [{"type": "Container", "items": items}]


# --- cards and activities ---------------------------------------------------------------


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def _well_formed(value: Any) -> Any:
    """Every string in a card as text any encoder takes: no lone surrogates."""
    if isinstance(value, str):
        return well_formed(value)
    if isinstance(value, list):
        return [_well_formed(item) for item in value]
    if isinstance(value, dict):
        return {key: _well_formed(item) for key, item in value.items()}
    return value


def render_card(reply: Reply, *, handles: Mapping[int, str] | None = None) -> dict[str, Any]:
    """The Adaptive Card for a reply; `handles` maps our person ids to AAD object ids.

    Whole elements are kept in order while the card stays under MAX_CARD_BYTES;
    a last line says how many did not fit.
    """
    card = _Card(handles or {})
    groups = [_well_formed(render_element(element, card)) for element in reply.elements]
    card.entities = _well_formed(card.entities)
    budget = MAX_CARD_BYTES - _size(card.entities) - 1_000
    body: list[dict[str, Any]] = []
    used = 0
    for shown, group in enumerate(groups):
        used += _size(group)
        if used > budget:
            body.append(_block(MORE.format(count=len(groups) - shown), isSubtle=True))
            break
        body.extend(group)
    text = json.dumps(body)
    msteams: dict[str, Any] = {"width": "Full"}
    # Only mentions still in the card: Teams rejects an entity its text does not contain.
    entities = [e for e in card.entities if json.dumps(e["text"])[1:-1] in text]
    if entities:
        msteams["entities"] = entities
    return {
        "type": "AdaptiveCard",
        "$schema": CARD_SCHEMA,
        "version": CARD_VERSION,
        "body": body,
        "msteams": msteams,
    }


@singledispatch
def _summary(element: object) -> str:
    return ""


@_summary.register
def _(element: Text | Notice) -> str:
    return element.text


@_summary.register
def _(element: Line) -> str:
    return "".join(p.name if isinstance(p, Mention) else p for p in element.parts)


@_summary.register
def _(element: Form | Article) -> str:
    return element.title


def summary(reply: Reply) -> str:
    """The plain words Teams shows where the card cannot be (notifications)."""
    for element in reply.elements:
        text = " ".join(_CONTROL.sub("", well_formed(_summary(element))).split())
        if text:
            return clip(text, SUMMARY_CHARS)
    return ""


def render_activity(reply: Reply, *, handles: Mapping[int, str] | None = None) -> dict[str, Any]:
    """A message activity carrying the reply's card."""
    activity: dict[str, Any] = {
        "type": "message",
        "attachments": [
            {"contentType": CARD_CONTENT_TYPE, "content": render_card(reply, handles=handles)}
        ],
    }
    words = summary(reply)
    if words:
        activity["summary"] = words
    return activity
