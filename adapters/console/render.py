"""A neutral Reply → readable terminal text, one function per element type."""

from __future__ import annotations

import re
import textwrap
from functools import singledispatch

from bot import messages
from bot.text import well_formed
from bot.types import (
    Actions,
    Article,
    Button,
    Form,
    Line,
    Mention,
    Notice,
    PersonCard,
    Reply,
    Text,
)

WIDTH = 88
# Terminal control sequences in user text could move the cursor or recolour the
# screen: the console's equivalent of Slack's mention escaping.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
PRESENCE_MARK = {
    "available": "●",
    "busy": "◐",
    "on_call": "☎",
    "away": "◌",
    "off": "○",
    "off_shift": "☾",
}
NOTICE_MARK = {"info": "i", "success": "✓", "warning": "!", "error": "✗"}


def safe(text: str) -> str:
    """No terminal controls, and no lone surrogate (a terminal's encoder refuses it)."""
    return _CONTROL.sub("", well_formed(text))


def _wrap(text: str, indent: str = "   ") -> str:
    return "\n".join(
        textwrap.fill(paragraph, WIDTH, initial_indent=indent, subsequent_indent=indent)
        for paragraph in safe(text).splitlines()
        if paragraph.strip()
    )


class Buttons:
    """Numbers the buttons shown in this terminal, so `!N` can press one."""

    def __init__(self) -> None:
        self.shown: dict[int, Button] = {}

    def number(self, button: Button) -> int:
        number = len(self.shown) + 1
        self.shown[number] = button
        return number


@singledispatch
def render_element(element: object, buttons: Buttons | None = None) -> str:
    raise TypeError(f"no console rendering for {type(element).__name__}")


@render_element.register
def _(element: Text, buttons: Buttons | None = None) -> str:
    return safe(element.text)


@render_element.register
def _(element: Notice, buttons: Buttons | None = None) -> str:
    return f"{NOTICE_MARK[element.severity]} {safe(element.text)}"


def _mention(part: Mention) -> str:
    return f"@{safe(part.handle)}" if part.handle else f"@{safe(part.name)}"


@render_element.register
def _(element: Line, buttons: Buttons | None = None) -> str:
    return "".join(_mention(p) if isinstance(p, Mention) else safe(p) for p in element.parts)


@render_element.register
def _(element: PersonCard, buttons: Buttons | None = None) -> str:
    presence = element.presence
    status = safe(presence.label)
    if presence.until_local is not None:
        status += f" until {safe(presence.until_local)}"
    local = f", {safe(presence.local_time)} their time" if presence.local_time else ""
    team = f" · {safe(element.team)}" if element.team else ""
    lines = [
        f"{PRESENCE_MARK.get(presence.status, '?')} {safe(element.name)} (@{safe(element.key)})"
        f"{team} · {status}{local}"
    ]
    if element.tags:
        tags = ", ".join(
            f"{safe(t.name)} {t.level}{' ✓' if t.verified else ''}" for t in element.tags
        )
        lines.append(f"   knows: {tags}")
    if element.reason:
        mark = messages.BASIS_MARK.get(element.basis)
        lines.append(f"   why: {mark + ' ' if mark else ''}{safe(element.reason)}")
    if element.buttons:
        lines.append(render_element(Actions(element.buttons), buttons))
    return "\n".join(lines)


@render_element.register
def _(element: Article, buttons: Buttons | None = None) -> str:
    tags = f"  [{', '.join(safe(t) for t in element.tags)}]" if element.tags else ""
    helpful = f"  ({element.helpful} found it helpful)" if element.helpful else ""
    return f"▤ #{element.entry_id} {safe(element.title)}{tags}{helpful}\n{_wrap(element.snippet)}"


@render_element.register
def _(element: Actions, buttons: Buttons | None = None) -> str:
    if buttons is None:
        return "   " + "  ".join(f"[{safe(button.label)}]" for button in element.buttons)
    pressed = (f"[!{buttons.number(button)} {safe(button.label)}]" for button in element.buttons)
    return "   " + "  ".join(pressed)


@render_element.register
def _(element: Form, buttons: Buttons | None = None) -> str:
    fields = "\n".join(f"   {safe(field.label)}: {safe(field.value)}" for field in element.fields)
    return f"{safe(element.title)}\n{fields}"


def render(reply: Reply, buttons: Buttons | None = None) -> str:
    return "\n".join(render_element(element, buttons) for element in reply.elements)
