"""Neutral types: what adapters turn platform events into, and what they render back.

Nothing here knows a platform. Text in these types is plain user text; renderers
escape it for their platform.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Severity = Literal["info", "success", "warning", "error"]


@dataclass(frozen=True)
class Where:
    """Where a command came from, as opaque platform references."""

    channel: str | None = None
    thread: str | None = None
    team: str | None = None


@dataclass(frozen=True)
class Command:
    platform: str
    person_id: int
    name: str
    text: str = ""
    where: Where = field(default_factory=Where)
    # Platform mention tokens in `text` ("<@U123>", "@maria") resolved to person ids.
    mentions: dict[str, int] = field(default_factory=dict)
    # Channel tokens in `text` ("<#C123|huddles>") resolved to the platform's channel ids.
    channels: dict[str, str] = field(default_factory=dict)
    # Set when the command came from a button or a form.
    action_id: str | None = None
    values: dict[str, str] = field(default_factory=dict)
    private: bool = True
    # The inbound request this command answers (bot/runtime/inbox.py): marked answered with it.
    inbound_id: int | None = None


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Notice:
    text: str
    severity: Severity = "info"


@dataclass(frozen=True)
class Mention:
    """A person named so that the platform notifies them (the only way to ping)."""

    person_id: int
    name: str
    # Their id on the platform the message goes to; filled in at delivery.
    handle: str | None = None


@dataclass(frozen=True)
class Line:
    """Plain text with people mentioned in it; the strings are user text, escaped on render."""

    parts: tuple[str | Mention, ...]


@dataclass(frozen=True)
class TagMatch:
    name: str
    level: int
    verified: bool


@dataclass(frozen=True)
class PresenceView:
    status: str  # available, busy, away, on_call, off, off_shift
    label: str
    until: datetime | None = None
    local_time: str | None = None  # "14:05" in the person's time zone
    until_local: str | None = None  # when `until` falls, in their time zone

    @property
    def reachable(self) -> bool:
        return self.status == "available"


@dataclass(frozen=True)
class PersonCard:
    person_id: int
    key: str
    name: str
    team: str | None
    presence: PresenceView
    tags: tuple[TagMatch, ...] = ()
    reason: str = ""
    score: float = 0.0
    # What the reason rests on, marked by every renderer: "verified", "self-declared"
    # or "earned" (evidence without the tag); "" when the card explains no match.
    basis: str = ""
    # Buttons that belong to this person's card (*Helpful*: "this person helped").
    buttons: tuple[Button, ...] = ()
    # What to tell the bot when the asker opens a chat with this person from the card
    # (its action id and value; the renderer draws its own Message link), where the
    # platform says so: Slack's link buttons do, a Teams Action.OpenUrl does not.
    contact: Button | None = None


@dataclass(frozen=True)
class Article:
    entry_id: int
    title: str
    snippet: str
    tags: tuple[str, ...] = ()
    score: float = 0.0
    helpful: int = 0


@dataclass(frozen=True)
class Button:
    label: str
    action_id: str
    value: str = ""
    style: Literal["default", "primary", "danger"] = "default"


@dataclass(frozen=True)
class Option:
    value: str
    label: str


@dataclass(frozen=True)
class Picker:
    """A multi-select beside buttons; its choice comes back in Command.values[name]
    (comma-separated values) when one of those buttons is pressed."""

    name: str
    label: str
    options: tuple[Option, ...]
    selected: tuple[str, ...] = ()


@dataclass(frozen=True)
class Actions:
    buttons: tuple[Button, ...]
    picker: Picker | None = None


@dataclass(frozen=True)
class FormField:
    name: str
    label: str
    kind: Literal["text", "multiline", "select"] = "text"
    options: tuple[str, ...] = ()
    required: bool = True
    value: str = ""


@dataclass(frozen=True)
class Form:
    title: str
    action_id: str
    fields: tuple[FormField, ...]
    submit_label: str = "Save"
    # Comes back as the submission's Command.text (which huddle, which entry).
    value: str = ""


Element = Text | Notice | Line | PersonCard | Article | Actions | Form


@dataclass(frozen=True)
class Reply:
    elements: tuple[Element, ...]
    # Only the asking person sees it (ephemeral in Slack, a 1:1 answer in Teams).
    private: bool = True

    @classmethod
    def of(cls, *elements: Element, private: bool = True) -> Reply:
        return cls(tuple(elements), private=private)

    @classmethod
    def notice(cls, text: str, severity: Severity = "info") -> Reply:
        return cls((Notice(text, severity),))
