"""Slack presence for the people about to be shown, polled within Slack's rate limits.

New Slack apps get no presence events (those are RTM-only), so whoknows asks:
`users.getPresence` (one user a call, Tier 3) and `dnd.teamInfo` (up to 50
users a call) for the people on an answer's cards, at most once a minute
each, after the answer is sent: the next asker sees it. Someone away in
Slack shows as away, someone in Do Not Disturb as busy, for ten minutes at a
time. A status someone chose (in the bot, or a Slack status) stands until it
expires; working hours still apply on top.

Slack does send events for what people set themselves (`StatusEvents`): someone
in a Slack huddle is busy until they leave it, and a status emoji that says they
cannot take a question now (a calendar, a phone, a palm tree: STATUS_EMOJI) sets
their status until the Slack status expires.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.translate import PLATFORM
from adapters.slack.whereabouts import Whereabouts
from bot.db.models import Person, Status
from bot.services import Services, presence

log = logging.getLogger(__name__)

SOURCE = "slack-presence"
FRESH_S = 60.0
DND_BATCH = 50
PARALLEL = 4
# Written with an expiry, so a stale answer fades back to working hours.
HOLD = timedelta(minutes=10)
# Calls a minute per workspace: Slack's Tier 3 (users.getPresence) and Tier 2
# (dnd.teamInfo). A busy contact center asks far more often than that.
PER_MINUTE = {"users.getPresence": 50, "dnd.teamInfo": 20}
# Slack statuses that say someone cannot take a question now.
STATUS_EMOJI = {
    ":spiral_calendar_pad:": Status.BUSY,
    ":calendar:": Status.BUSY,
    ":headphones:": Status.BUSY,
    ":phone:": Status.ON_CALL,
    ":telephone_receiver:": Status.ON_CALL,
    ":palm_tree:": Status.AWAY,
    ":face_with_thermometer:": Status.OFF,
    ":house_with_garden:": Status.AWAY,
}


class Budget:
    """A token bucket: up to `per_minute` calls in any minute, refilled evenly."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.left = float(per_minute)
        self.at: float | None = None

    def take(self, now: float) -> bool:
        if self.at is not None:
            self.left = min(self.per_minute, self.left + (now - self.at) * self.per_minute / 60)
        self.at = now
        if self.left < 1:
            return False
        self.left -= 1
        return True


class SlackPresence:
    """With `whereabouts` (OAuth installs), someone known to be in another workspace than
    the asker's is asked about with that workspace's token; everyone else with the
    client's (during a request, the asker's workspace's)."""

    def __init__(
        self, client: AsyncWebClient, services: Services, whereabouts: Whereabouts | None = None
    ) -> None:
        self.client = client
        self.services = services
        self.whereabouts = whereabouts
        self._checked: dict[str, float] = {}  # Slack user id → when; safe to lose
        self._budgets: dict[tuple[str | None, str], Budget] = {}  # (token, method) → calls left
        self.per_minute = dict(PER_MINUTE)

    def _budget(self, token: str | None, method: str = "users.getPresence") -> Budget:
        key = (token, method)
        if key not in self._budgets:
            self._budgets[key] = Budget(self.per_minute[method])
        return self._budgets[key]

    async def refresh(self, people: dict[int, str]) -> None:
        """Ask Slack about these people (person id → Slack user id) unless asked lately.

        Within each workspace's budget of calls (Slack's rate tiers); whoever does
        not fit is left as they are and asked about on a later answer.
        """
        now = time.monotonic()
        due = {p: u for p, u in people.items() if now - self._checked.get(u, -FRESH_S) >= FRESH_S}
        if not due:
            return
        for user in due.values():  # before any await: a concurrent refresh skips them
            self._checked[user] = now
        tokens = await self._tokens(list(due.values()))
        over = {u for u in due.values() if not self._budget(tokens[u]).take(now)}
        for user in over:
            self._checked.pop(user, None)
        due = {p: u for p, u in due.items() if u not in over}
        in_dnd: set[str] = set()
        for token in {tokens[u] for u in due.values()}:
            group = [u for u in due.values() if tokens[u] == token]
            for start in range(0, len(group), DND_BATCH):
                batch = group[start : start + DND_BATCH]
                if self._budget(token, "dnd.teamInfo").take(now):
                    in_dnd |= await self._dnd(batch, token)
                else:  # Do Not Disturb unknown: not asked about this time
                    due = {p: u for p, u in due.items() if u not in batch}
                    for user in batch:
                        self._checked.pop(user, None)
        if not due:
            return
        users = list(due.values())
        gate = asyncio.Semaphore(PARALLEL)

        async def away(user: str) -> bool:
            async with gate:
                try:
                    answer = await self._presence(user, tokens)
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

    async def _presence(self, user: str, tokens: dict[str, str | None]) -> Any:
        """users.getPresence; someone unknown to the asker's workspace is looked for in the
        other installed ones (once: the workspace that answers is remembered)."""
        try:
            return await self.client.users_getPresence(user=user, **_auth(tokens[user]))
        except SlackApiError as error:
            elsewhere = error.response.get("error") == "user_not_found"
            if (
                not elsewhere
                or self.whereabouts is None
                or await self.whereabouts.workspace_of(user)
            ):
                raise
            tried = tokens[user] or self.client.token
            for workspace, token in await self.whereabouts.tokens_for(None):
                if token == tried:
                    continue
                try:
                    answer = await self.client.users_getPresence(user=user, token=token)
                except SlackApiError:
                    continue
                self.whereabouts.remember(workspace, user)
                tokens[user] = token
                return answer
            raise

    async def _tokens(self, users: list[str]) -> dict[str, str | None]:
        """Each user's workspace token when it is not the client's (None: the client's)."""
        tokens: dict[str, str | None] = dict.fromkeys(users)
        if self.whereabouts is None:
            return tokens
        known = await self.whereabouts.workspaces_of(users)
        for user in users:
            workspace = known.get(user)
            if workspace is not None:
                try:
                    tokens[user] = await self.whereabouts.workspaces.token(workspace)
                except Exception:
                    log.warning("no token for a user's workspace; asking with the asker's")
        return tokens

    async def _dnd(self, users: list[str], token: str | None = None) -> set[str]:
        try:
            params = {"users": ",".join(users), **_auth(token)}
            answer = await self.client.api_call("dnd.teamInfo", params=params)
        except Exception:
            log.warning("dnd.teamInfo failed; Do Not Disturb unknown")
            return set()
        now = time.time()
        found: dict[str, Any] = answer.get("users") or {}
        return {user for user, info in found.items() if _in_dnd(info, now)}

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


class StatusEvents:
    """Slack's user_huddle_changed and user_status_changed events, as a status.

    Only what Slack set is undone (a huddle left, a status cleared): a status set
    in the bot stands. `person_id`: the person behind a Slack user id (users.py).
    """

    def __init__(self, services: Services, person_id: Callable[[str], Awaitable[int]]) -> None:
        self.services = services
        self.person_id = person_id

    async def huddle(self, event: dict) -> None:
        user = event.get("user") or {}
        in_huddle = (user.get("profile") or {}).get("huddle_state") == "in_a_huddle"
        await self._set(user.get("id"), Status.BUSY if in_huddle else None, None)

    async def status(self, event: dict) -> None:
        user = event.get("user") or {}
        profile = user.get("profile") or {}
        status = STATUS_EMOJI.get(profile.get("status_emoji") or "")
        expires = profile.get("status_expiration") or 0
        await self._set(user.get("id"), status, int(expires) or None)

    async def _set(
        self, user_id: str | None, status: Status | None, until_epoch: int | None
    ) -> None:
        if not user_id:
            return
        person_id = await self.person_id(user_id)

        def write() -> None:
            with self.services.db.unit_of_work() as session:
                person = session.get(Person, person_id)
                if person is None:
                    return
                now = self.services.clock()
                current = person.presence
                if status is None:
                    # Only undo what Slack set; a status set in the bot stands.
                    if current is not None and current.source == PLATFORM:
                        presence.set_status(session, person, Status.AVAILABLE, now, None, PLATFORM)
                    return
                duration = None
                if until_epoch:
                    duration = timedelta(seconds=max(0, until_epoch - int(now.timestamp())))
                presence.set_status(session, person, status, now, duration, PLATFORM)

        await asyncio.to_thread(write)


def _auth(token: str | None) -> dict[str, str]:
    """A call's own token (slack_sdk sends it as the Authorization header), when it has one."""
    return {"token": token} if token else {}


def _in_dnd(info: dict[str, Any], now: float) -> bool:
    start = float(info.get("next_dnd_start_ts") or 0)
    end = float(info.get("next_dnd_end_ts") or 0)
    return bool(info.get("dnd_enabled")) and start <= now < end
