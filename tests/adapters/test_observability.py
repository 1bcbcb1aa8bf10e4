"""GET /metrics and the request-counting middleware, on a small aiohttp application."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from adapters.observability import mount
from bot.runtime import jobs, outbox
from bot.services import Services
from bot.types import Reply

TOKEN = "scrape-7f3a9c1e2b4d"

Scenario = Callable[[TestClient], Awaitable[Any]]


def _app(services: Services, env: dict[str, str]) -> web.Application:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=f"hello {request.match_info['name']}")

    async def broken(request: web.Request) -> web.Response:
        raise RuntimeError("a bug")

    async def gone(request: web.Request) -> web.Response:
        raise web.HTTPGone()

    inner = web.Application()
    inner.router.add_get("/page/{number}", hello_number)
    app = web.Application()
    app.router.add_get("/hello/{name}", hello)
    app.router.add_get("/broken", broken)
    app.router.add_get("/gone", gone)
    app.add_subapp("/inner", inner)
    mount(app, services, env)
    return app


async def hello_number(request: web.Request) -> web.Response:
    return web.Response(text=request.match_info["number"])


def _run(services: Services, env: dict[str, str], scenario: Scenario) -> Any:
    async def main() -> Any:
        client = TestClient(TestServer(_app(services, env)))
        await client.start_server()
        try:
            return await scenario(client)
        finally:
            await client.close()

    return asyncio.run(main())


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def _scrape(client: TestClient, **headers: str) -> dict:
    response = await client.get("/metrics", headers=headers)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"].startswith("text/plain")
    return _samples(await response.text())


def _requests(route: str, status: int) -> tuple[str, tuple[tuple[str, str], ...]]:
    return ("whoknows_http_requests_total", (("route", route), ("status", str(status))))


def test_requests_are_counted_by_route_never_by_url(services: Services) -> None:
    async def scenario(client: TestClient) -> tuple[dict, dict]:
        before = await _scrape(client)
        for name in ("ana", "bo", "cy"):
            assert (await client.get(f"/hello/{name}")).status == 200
        assert (await client.get("/inner/page/7")).status == 200
        assert (await client.get("/broken")).status == 500
        assert (await client.get("/gone")).status == 410
        for n in range(3):
            assert (await client.get(f"/no/such/{n}")).status == 404
        return before, await _scrape(client)

    before, after = _run(services, {}, scenario)

    def change(route: str, status: int) -> float:
        key = _requests(route, status)
        return after.get(key, 0) - before.get(key, 0)

    assert change("/hello/{name}", 200) == 3
    assert change("/inner/page/{number}", 200) == 1
    assert change("/broken", 500) == 1
    assert change("/gone", 410) == 1
    assert change("unmatched", 404) == 3
    assert change("/metrics", 200) == 1  # the first scrape
    routes = {dict(labels).get("route") for name, labels in after if "http_request" in name}
    assert not any("ana" in str(route) or "/no/such" in str(route) for route in routes)
    key = ("whoknows_http_request_duration_seconds_count", (("route", "/hello/{name}"),))
    assert after[key] - before.get(key, 0) == 3


def test_metrics_shows_outbox_depth_and_job_lag_from_the_database(services: Services) -> None:
    now = services.clock()
    with services.db.unit_of_work() as session:
        for person in range(4):
            outbox.enqueue(
                session,
                platform="teams",
                kind="post",
                channel=f"c{person}",
                reply=Reply(()),
                now=now,
            )
        jobs.schedule(session, "escalate", now - timedelta(seconds=125))
        jobs.schedule(session, "escalate", now + timedelta(seconds=60), step=1)

    samples = _run(services, {}, _scrape)
    assert samples[("whoknows_outbox_depth", (("state", "pending"),))] == 4
    assert samples[("whoknows_outbox_depth", (("state", "failed"),))] == 0
    assert samples[("whoknows_job_lag_seconds", ())] == 125
    assert samples[("whoknows_huddles_open", ())] == 0
    assert samples[("whoknows_database_up", ())] == 1
    # The counters are there before anything happened, at 0 where they have no labels.
    assert ("whoknows_huddles_expired_total", ()) in samples


def test_a_metrics_token_is_required_when_set(services: Services) -> None:
    async def scenario(client: TestClient) -> list[tuple[int, str]]:
        results = []
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": f"Basic {TOKEN}"},
            {"Authorization": f"Bearer {TOKEN}x"},
            {"Authorization": f"Bearer {TOKEN}"},
            {"Authorization": f"bearer {TOKEN}"},
        ):
            response = await client.get("/metrics", headers=headers)
            results.append((response.status, await response.text()))
        return results

    results = _run(services, {"WHOKNOWS_METRICS_TOKEN": TOKEN}, scenario)
    assert [status for status, _ in results] == [401, 401, 401, 401, 200, 200]
    assert all(TOKEN not in text for _, text in results)
    assert "whoknows_outbox_depth" in results[4][1]


def test_metrics_is_open_without_a_token(services: Services) -> None:
    async def scenario(client: TestClient) -> int:
        return (await client.get("/metrics")).status

    assert _run(services, {}, scenario) == 200
