"""A neutral Reply → readable terminal text, one function per element type."""

from __future__ import annotations

import re
import textwrap
from functools import singledispatch

from bot.types import (
    Actions,
    Article,
    Form,
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
    return _CONTROL.sub("", text)


def _wrap(text: str, indent: str = "   ") -> str:
    return "\n".join(
        textwrap.fill(paragraph, WIDTH, initial_indent=indent, subsequent_indent=indent)
        for paragraph in safe(text).splitlines()
        if paragraph.strip()
    )


@singledispatch
def render_element(element: object) -> str:
    raise TypeError(f"no console rendering for {type(element).__name__}")


@render_element.register
def _(element: Text) -> str:
    return safe(element.text)


@render_element.register
def _(element: Notice) -> str:
    return f"{NOTICE_MARK[element.severity]} {safe(element.text)}"


@render_element.register
def _(element: PersonCard) -> str:
    presence = element.presence
    status = presence.label
    if presence.until_local is not None:
        status += f" until {presence.until_local}"
    local = f", {presence.local_time} their time" if presence.local_time else ""
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
        lines.append(f"   why: {safe(element.reason)}")
    return "\n".join(lines)


@render_element.register
def _(element: Article) -> str:
    tags = f"  [{', '.join(safe(t) for t in element.tags)}]" if element.tags else ""
    helpful = f"  ({element.helpful} found it helpful)" if element.helpful else ""
    return f"▤ #{element.entry_id} {safe(element.title)}{tags}{helpful}\n{_wrap(element.snippet)}"


@render_element.register
def _(element: Actions) -> str:
    return "   " + "  ".join(f"[{safe(button.label)}]" for button in element.buttons)


@render_element.register
def _(element: Form) -> str:
    fields = "\n".join(f"   {safe(field.label)}: {safe(field.value)}" for field in element.fields)
    return f"{safe(element.title)}\n{fields}"


def render(reply: Reply) -> str:
    return "\n".join(render_element(element) for element in reply.elements)
