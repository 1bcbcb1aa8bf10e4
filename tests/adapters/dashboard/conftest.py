"""The dashboard served for real: the whole `whoknows serve` app on a local port.

Links come from the `dashboard` chat command, as a person would get them.
Browser tests drive Debian's Chromium through Playwright; without it they
skip here and fail under CI, which must run them.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters.server import build_app
from bot.router import Router
from bot.services import Services
from tests.helpers import say

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def link(services: Services, router: Router, key: str) -> str:
    """The sign-in link `key` gets by typing `dashboard` in chat."""
    reply = say(services, router, key, "dashboard")
    found = re.search(r"https?://\S+/dashboard/login\?token=\S+", reply.elements[0].text)  # type: ignore[union-attr]
    assert found is not None, reply
    return found.group(0)


def token_of(url: str) -> str:
    return url.split("token=", 1)[1]


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, "no CSRF token on the page"
    return found.group(1)


Scenario = Callable[[TestClient], Awaitable[None]]


def serve(
    services: Services, router: Router, scenario: Scenario, env: dict[str, str] | None = None
) -> None:
    """Run `scenario` against the real application on a free local port."""

    async def main() -> None:
        app = build_app(services, router, env or {}, worker_interval=60)
        client = TestClient(TestServer(app, host="127.0.0.1"))
        await client.start_server()
        try:
            await scenario(client)
        finally:
            await client.close()

    asyncio.run(main())


async def sign_in(client: TestClient, services: Services, router: Router, key: str) -> str:
    """Sign `key` in through a fresh link; the CSRF token of their session."""
    url = await asyncio.to_thread(link, services, router, key)
    response = await client.post(
        "/dashboard/login", data={"token": token_of(url)}, allow_redirects=False
    )
    assert response.status == 303, await response.text()
    landing = await client.get("/dashboard/knowledge")
    return csrf_of(await landing.text())


def find_chromium() -> str | None:
    for candidate in (
        os.environ.get("CHROMIUM_PATH"),
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        "/usr/bin/chromium",
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


@pytest.fixture(scope="session")
def chromium() -> str:
    """Debian's Chromium for Playwright; CI must have it, a laptop may not."""
    reason = None
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        reason = "Playwright is not installed: pip install -e '.[dev]'"
    path = find_chromium()
    if reason is None and path is None:
        reason = "Chromium not found: apt-get install chromium (or set CHROMIUM_PATH)"
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser tests: {reason}")
        pytest.skip(reason)
    assert path is not None
    return path
