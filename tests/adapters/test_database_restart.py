"""PostgreSQL restarted under traffic: only the requests in flight notice, nothing is lost.

The server gets its own PostgreSQL (restarting the suite's shared one would
break other tests' connections), restarted abruptly as after a crash while
slash commands keep arriving.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from adapters.server import build_app
from bot import messages
from bot.config import Settings
from bot.data.demo import seed_demo
from bot.db import open_database
from bot.services import Services
from skills import build_router
from tests.adapters.slack.fake_slack import FakeSlack
from tests.adapters.slack.test_app import SECRET, _link, post, slash
from tests.conftest import NOW
from tests.pg_server import TemporaryPostgres, find_pg_bin

FORM = "application/x-www-form-urlencoded"


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[tuple[TemporaryPostgres, Services]]:
    if find_pg_bin() is None:
        if os.environ.get("CI"):
            pytest.fail("CI must test on PostgreSQL: install Debian's postgresql package")
        pytest.skip("no PostgreSQL server binaries")
    with TemporaryPostgres(durable=True) as server:
        database = open_database(server.url)
        with database.unit_of_work() as session:
            seed_demo(session, NOW)
        # The real clock: requests caught by the outage are taken over when their
        # (short) lease runs out, as another worker would.
        settings = Settings(
            database_url=server.url, home=tmp_path, semantic=False, request_lease_s=15
        )
        services = Services(database, settings)
        _link(services)
        yield server, services
        database.dispose()


@pytest.mark.reliability(20)
def test_a_postgresql_restart_costs_only_the_requests_in_flight(
    own_postgres: tuple[TemporaryPostgres, Services],
) -> None:
    server, services = own_postgres
    fake = FakeSlack()
    acks: list[int] = []

    async def main() -> None:
        await fake.start()
        env = {
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": fake.api_url,
        }
        client = TestClient(
            TestServer(build_app(services, build_router(), env, worker_interval=0.1))
        )
        await client.start_server()
        try:

            async def ask(n: int) -> None:
                response = await post(client, slash(fake, f"refund for a prepaid top-up {n}"), FORM)
                acks.append(response.status)

            async def traffic(first: int, count: int) -> None:
                for n in range(first, first + count):
                    await ask(n)
                    await asyncio.sleep(0.05)

            load = asyncio.gather(traffic(0, 40), traffic(100, 40))
            await asyncio.sleep(0.5)
            started = time.monotonic()
            await asyncio.to_thread(server.restart)  # -m immediate: connections break
            assert time.monotonic() - started < 30
            await load
            await fake.wait_for(lambda f: len(f.called("response_url")) >= 80, timeout=120)
            # Between requests, after the restart: the next one simply works.
            await ask(999)
            await fake.wait_for(lambda f: len(f.called("response_url")) >= 81, timeout=30)
            ready = await client.get("/readyz")
            assert ready.status == 200
            await asyncio.sleep(16)  # a lease and more: nothing arrives twice
        finally:
            await client.close()
            await fake.close()

    asyncio.run(main())
    assert acks == [200] * 81  # Slack had its ack every time, within the request
    answers = fake.called("response_url")
    assert len(answers) == 81
    texts = [str(a.get("blocks")) + a.get("text", "") for a in answers]
    failed = [t for t in texts if messages.DATABASE_UNAVAILABLE[:40] in t]
    answered = [t for t in texts if "Who knows about" in t]
    # Everyone heard back: an answer, or for those caught mid-restart a clear error.
    assert len(failed) + len(answered) == 81
    assert len(failed) <= 20
    asked = [re.findall(r"top-up (\d+)", t)[:1] for t in texts]
    numbers = [n[0] for n in asked if n]
    assert len(numbers) == len(set(numbers))  # nobody answered twice
    # The question asked after the restart (all 80 were answered first) got a real answer.
    assert "Who knows about" in texts[80]
