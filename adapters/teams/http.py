"""JSON over HTTP to the Bot Framework connector and Graph, retried the way Teams asks.

Teams throttles per bot and thread (7 sends a second, 60 in 30 s) and answers
429, 412, 502 or 504 when it is busy; botbuilder does not retry those. Here
each is retried with exponential backoff and full jitter, honouring
Retry-After. A wait longer than `max_wait` is not slept through in-line: the
error goes up and the outbox tries again later, so one throttled thread does not
hold up every other delivery.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
from yarl import URL

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({412, 429, 500, 502, 503, 504})
ATTEMPTS = 4
BASE_DELAY = 0.5
MAX_WAIT = 10.0
TIMEOUT = aiohttp.ClientTimeout(total=20)


class HttpError(Exception):
    """A status the request cannot succeed with, or the last of the retries."""

    def __init__(self, status: int, body: str, url: str) -> None:
        # The body can echo what we sent; only its start goes into logs and errors.
        super().__init__(f"HTTP {status} from {url.split('?')[0]}: {body[:300]}")
        self.status = status
        self.body = body


def retry_after(header: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (seconds or an HTTP date), if any."""
    if not header:
        return None
    header = header.strip()
    if header.isdigit():
        return float(header)
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def backoff(attempt: int, base: float = BASE_DELAY) -> float:
    """Full jitter: anywhere up to base·2^attempt, so throttled senders spread out."""
    return random.uniform(0, base * 2**attempt)


Sleep = Callable[[float], Awaitable[None]]


async def request_json(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    token: str | None = None,
    body: Any = None,
    attempts: int = ATTEMPTS,
    max_wait: float = MAX_WAIT,
    sleep: Sleep = asyncio.sleep,
) -> Any:
    """The decoded JSON answer (None when empty); HttpError for anything but 2xx."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    for attempt in range(attempts):
        async with session.request(
            method, URL(url, encoded=True), json=body, headers=headers, timeout=TIMEOUT
        ) as response:
            text = await response.text()
            if response.status < 300:
                return await response.json(content_type=None) if text.strip() else None
            error = HttpError(response.status, text, url)
            if response.status not in RETRY_STATUSES or attempt == attempts - 1:
                raise error
            wait = retry_after(response.headers.get("Retry-After"))
            wait = backoff(attempt) if wait is None else wait + random.uniform(0, BASE_DELAY)
            if wait > max_wait:
                raise error
            log.info("%s %s: HTTP %d, retrying in %.1f s", method, url, response.status, wait)
        await sleep(wait)
    raise AssertionError("unreachable")
