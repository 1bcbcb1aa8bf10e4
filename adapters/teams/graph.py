"""Teams presence from Microsoft Graph, as our statuses.

`POST /communications/getPresencesByUserId` takes up to 650 AAD object ids a
request (Graph allows 1,500 requests in 30 s per app and tenant); the adapter
asks for everyone with a Teams identity once per interval and keeps the answer
as a status that lasts two intervals, so a stopped poll fades back to working
hours instead of showing stale presence forever.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import aiohttp
from sqlalchemy.orm import Session

from adapters.teams.credentials import AppToken
from adapters.teams.http import request_json
from adapters.teams.translate import PLATFORM
from bot.db.models import Status
from bot.services import people, presence

BATCH = 650
OWN = "bot"  # the source of a status someone set themselves
SCOPE = "https://graph.microsoft.com/.default"

# What someone is doing says more than their availability (Busy may be a call).
ACTIVITY = {
    "InACall": Status.ON_CALL,
    "InAConferenceCall": Status.ON_CALL,
    "InAMeeting": Status.BUSY,
    "Presenting": Status.BUSY,
    "UrgentInterruptionsOnly": Status.BUSY,
    "Focusing": Status.BUSY,
    "OutOfOffice": Status.OFF,
    "OffWork": Status.OFF,
}
AVAILABILITY = {
    "Available": Status.AVAILABLE,
    "AvailableIdle": Status.AVAILABLE,
    "Busy": Status.BUSY,
    "BusyIdle": Status.BUSY,
    "DoNotDisturb": Status.BUSY,
    "BeRightBack": Status.AWAY,
    "Away": Status.AWAY,
    "Offline": Status.OFF,
}


def to_status(availability: str | None, activity: str | None) -> Status | None:
    """Our status for a Graph presence; None when Teams does not know (PresenceUnknown)."""
    return ACTIVITY.get(activity or "") or AVAILABILITY.get(availability or "")


class GraphPresence:
    def __init__(self, api_url: str, token: AppToken) -> None:
        self.api_url = api_url.rstrip("/")
        self.token = token

    async def fetch(
        self, session: aiohttp.ClientSession, ids: Iterable[str]
    ) -> dict[str, Status | None]:
        """AAD object id → our status, in batches of 650."""
        wanted = list(dict.fromkeys(ids))
        found: dict[str, Status | None] = {}
        for start in range(0, len(wanted), BATCH):
            data = await request_json(
                session,
                "POST",
                f"{self.api_url}/communications/getPresencesByUserId",
                token=await self.token.get(),
                body={"ids": wanted[start : start + BATCH]},
            )
            for item in (data or {}).get("value") or []:
                found[str(item.get("id"))] = to_status(
                    item.get("availability"), item.get("activity")
                )
        return found


def apply(
    session: Session, statuses: dict[str, Status | None], now: datetime, lasts: timedelta
) -> int:
    """Write Teams presence as people's status; only a status they set in the bot stands.

    Returns how many people changed.
    """
    changed = 0
    for aad_object_id, status in statuses.items():
        person = people.by_identity(session, PLATFORM, aad_object_id)
        if person is None:
            continue
        current = person.presence
        own = current is not None and current.source == OWN
        if own and (current.until is None or current.until > now):  # type: ignore[union-attr]
            continue  # set by the person themselves in the bot, and not run out
        if status is None:
            if current is not None and current.source == PLATFORM:
                current.until = now  # Teams no longer knows: back to working hours
                changed += 1
            continue
        if current is None or current.status != status or current.source != PLATFORM:
            changed += 1
        presence.set_status(session, person, status, now, lasts, PLATFORM)
    return changed
