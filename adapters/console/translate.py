"""A typed line → a neutral Command (the console's half of translate-at-the-edge)."""

from __future__ import annotations

import re
from collections.abc import Callable

from bot.text import well_formed
from bot.types import Command, Where

PLATFORM = "console"
MENTION = re.compile(r"@[\w.-]+")


def to_command(line: str, person_id: int, resolve: Callable[[str], int | None]) -> Command | None:
    """`whoknows refunds`, `/kb apn`, `expertise tag @maria refunds:4` …; None for a blank line.

    `resolve` maps a handle (without the @) to a person id, or None.
    """
    text = well_formed(line).strip().lstrip("/").strip()
    if not text:
        return None
    name, _, rest = text.partition(" ")
    mentions = {}
    for token in MENTION.findall(rest):
        person_id_for = resolve(token[1:].rstrip(".").lower())
        if person_id_for is not None:
            mentions[token] = person_id_for
    return Command(
        platform=PLATFORM,
        person_id=person_id,
        name=name.lower(),
        text=rest.strip(),
        where=Where(channel="console"),
        mentions=mentions,
    )
