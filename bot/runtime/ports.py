"""The delivery port: how the core causes effects on a platform.

Each adapter implements it with its platform's API; the core never imports one.
The core writes what to deliver to the outbox in the same transaction as the
change it reports (`bot.runtime.outbox`), and a worker hands it to the platform's
Messenger after the commit. People to notify are `Mention` elements in the
reply, their platform handles filled in before delivery: a renderer turns
those, and only those, into pings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.types import Reply


@dataclass(frozen=True)
class MessageRef:
    """An opaque reference to a posted message, enough to update or thread on it."""

    channel: str
    message: str


class Messenger(Protocol):
    platform: str

    async def post(self, channel: str, reply: Reply) -> MessageRef:
        """A new message in a channel (a huddle's thread root, a team announcement)."""
        ...

    async def reply_in_thread(self, root: MessageRef, reply: Reply) -> MessageRef: ...

    async def direct_message(self, handle: str, reply: Reply) -> MessageRef:
        """A one-to-one message to the person with this platform handle."""
        ...

    async def update(self, ref: MessageRef, reply: Reply) -> None: ...


class DeliveryError(Exception):
    """The platform refused a message for good (no retry will help).

    Its text is the reason in words a person can act on; `code` the platform's own.
    """

    def __init__(self, reason: str, code: str | None = None) -> None:
        super().__init__(reason)
        self.code = code or reason
