"""Slack presence for the people about to be shown, polled within Slack's rate limits.

New Slack apps get no presence events (those are RTM-only), so whoknows asks:
`users.getPresence` (one user a call, Tier 3) and `dnd.teamInfo` (up to 50
users a call) for the people on an answer's cards, at most once a minute
each, after the answer is sent: the next asker sees it. Someone away in
Slack shows as away, someone in Do Not Disturb as busy, for ten minutes at a
time. A status someone chose (in the bot, or a Slack status) stands until it
expires; working hours still apply on top.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.db.models import Person, Status
from bot.services import Services, presence

log = logging.getLogger(__name__)

SOURCE = "slack-presence"
FRESH_S = 60.0
DND_BATCH = 50
PARALLEL = 4
# Written with an expiry, so a stale answer fades back to working hours.
HOLD = timedelta(minutes=10)


class SlackPresence:
    def __init__(self, client: AsyncWebClient, services: Services) -> None:
        self.client = client
        self.services = services
        self._checked: dict[str, float] = {}  # Slack user id → when; safe to lose

    async def refresh(self, people: dict[int, str]) -> None:
        """Ask Slack about these people (person id → Slack user id) unless asked lately."""
        now = time.monotonic()
        due = {p: u for p, u in people.items() if now - self._checked.get(u, -FRESH_S) >= FRESH_S}
        if not due:
            return
        for user in due.values():
            self._checked[user] = now
        users = list(due.values())
        in_dnd: set[str] = set()
        for start in range(0, len(users), DND_BATCH):
            in_dnd |= await self._dnd(users[start : start + DND_BATCH])
        gate = asyncio.Semaphore(PARALLEL)

        async def away(user: str) -> bool:
            async with gate:
                try:
                    answer = await self.client.users_getPresence(user=user)
                except Exception:
                    log.warning("users.getPresence failed; presence unchanged")
                    return False
                return answer.get("presence") == "away"

        found = await asyncio.gather(*(away(user) for user in users))
        states = {
            person: Status.BUSY if user in in_dnd else Status.AWAY if is_away else Status.AVAILABLE
            for (person, user), is_away in zip(due.items(), found, strict=True)
        }
        await asyncio.to_thread(self._write, states)

    async def _dnd(self, users: list[str]) -> set[str]:
        try:
            answer = await self.client.api_call("dnd.teamInfo", params={"users": ",".join(users)})
        except Exception:
            log.warning("dnd.teamInfo failed; Do Not Disturb unknown")
            return set()
        now = time.time()
        found: dict[str, Any] = answer.get("users") or {}
        return {
            user
            for user, info in found.items()
            if info.get("dnd_enabled")
            and float(info.get("next_dnd_start_ts") or 0)
            <= now
            < float(info.get("next_dnd_end_ts") or 0)
        }

    def _write(self, states: dict[int, Status]) -> None:
        with self.services.db.unit_of_work() as session:
            now = self.services.clock()
            for person_id, status in states.items():
                person = session.get(Person, person_id)
                if person is None:
                    continue
                current = person.presence
                # A status someone chose (busy, on a call, away…) stands until it
                # expires; plain "available" is what Slack knows better.
                chosen = (
                    current is not None
                    and current.source != SOURCE
                    and current.status != Status.AVAILABLE
                    and (current.until is None or current.until > now)
                )
                if chosen:
                    continue
                presence.set_status(session, person, status, now, HOLD, SOURCE)


def _in_dnd(info: dict[str, Any], now: float) -> bool:
    start = float(info.get("next_dnd_start_ts") or 0)
    end = float(info.get("next_dnd_end_ts") or 0)
    return bool(info.get("dnd_enabled")) and start <= now < end
