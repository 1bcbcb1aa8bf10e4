"""The console's Messenger: posts, threads and direct messages printed in this terminal.

Everyone shares the terminal, so a direct message shows who it is for and a
thread reply is indented under the huddle it belongs to.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

from adapters.console.translate import PLATFORM
from bot.runtime.ports import MessageRef
from bot.types import Reply

# (heading, reply, indent) → printed by the chat, which numbers the buttons.
Show = Callable[[str, Reply, str], None]


class ConsoleMessenger:
    platform = PLATFORM

    def __init__(self, show: Show) -> None:
        self._show = show
        # Unique across restarts of the chat, which keeps refs in the database.
        self._ids = itertools.count(int(time.time() * 1000))

    def _ref(self, channel: str) -> MessageRef:
        return MessageRef(channel, str(next(self._ids)))

    async def post(self, channel: str, reply: Reply) -> MessageRef:
        self._show(f"── #{channel} ──", reply, "")
        return self._ref(channel)

    async def reply_in_thread(self, root: MessageRef, reply: Reply) -> MessageRef:
        self._show(f"   ↳ in the thread in #{root.channel}", reply, "   │ ")
        return self._ref(root.channel)

    async def direct_message(self, handle: str, reply: Reply) -> MessageRef:
        self._show(f"✉ to @{handle}", reply, "  ")
        return self._ref(f"@{handle}")

    async def update(self, ref: MessageRef, reply: Reply) -> None:
        self._show(f"✎ #{ref.channel}: the huddle thread now reads", reply, "  ")
