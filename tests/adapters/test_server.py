"""whoknows serve's own endpoints: liveness, and readiness that follows the database."""

from __future__ import annotations

import asyncio
import os

from aiohttp.test_utils import TestClient, TestServer

from adapters.server import build_app
from bot.config import Settings
from bot.db import Database
from bot.router import Router
from bot.services import Services


def _get(services: Services, router: Router, path: str) -> tuple[int, dict]:
    async def main() -> tuple[int, dict]:
        client = TestClient(TestServer(build_app(services, router, {})))
        await client.start_server()
        try:
            response = await client.get(path)
            return response.status, await response.json()
        finally:
            await client.close()

    return asyncio.run(main())


def test_healthz_and_readyz_with_a_database(services: Services, router: Router) -> None:
    # The pid says which of several workers answered.
    expected = {"ok": True, "platforms": [], "pid": os.getpid()}
    assert _get(services, router, "/healthz") == (200, expected)
    assert _get(services, router, "/readyz") == (200, {"ok": True, "database": "ok"})


def test_readyz_says_503_while_the_database_is_unreachable(tmp_path, router: Router) -> None:
    # A PostgreSQL server that is not there (nothing listens on port 1).
    url = "postgresql+psycopg://whoknows@127.0.0.1:1/whoknows?connect_timeout=2"
    database = Database(url)
    down = Services(database, Settings(database_url=url, home=tmp_path))
    status, body = _get(down, router, "/readyz")
    assert (status, body) == (503, {"ok": False, "database": "unavailable"})
    # Still alive: a restart would not help, the database has to come back.
    assert _get(down, router, "/healthz")[0] == 200
