"""The delivery port: how the core causes effects on a platform.

Each adapter implements it with its platform's API; the core never imports one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.types import Reply, Where


@dataclass(frozen=True)
class MessageRef:
    """An opaque reference to a posted message, enough to update or thread on it."""

    channel: str
    message: str


class Messenger(Protocol):
    async def post(self, where: Where, reply: Reply) -> MessageRef: ...

    async def reply_in_thread(self, ref: MessageRef, reply: Reply) -> MessageRef: ...

    async def direct_message(self, person_id: int, reply: Reply) -> MessageRef: ...

    async def update(self, ref: MessageRef, reply: Reply) -> None: ...

    def mention(self, person_id: int) -> str: ...
