"""GET /metrics for Prometheus, and a middleware that counts and times every request.

/metrics is open unless WHOKNOWS_METRICS_TOKEN is set; then a scrape must send
`Authorization: Bearer <token>` (Prometheus: `authorization: {credentials: …}`
in the scrape config), compared in constant time. Keep it open only where the
port is not reachable from outside.

Requests are labelled by the route's canonical path (`/dashboard/people/{key}`),
never the URL asked for, so a scanner trying random paths cannot add series:
whatever matched no route is `unmatched`.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from bot.ops import metrics
from bot.services import Services

log = logging.getLogger(__name__)

PATH = "/metrics"
TOKEN_ENV = "WHOKNOWS_METRICS_TOKEN"
UNMATCHED = "unmatched"
SCRAPE_TIMEOUT_S = 10

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def route_label(request: web.Request) -> str:
    """The matched route's canonical path; `unmatched` when none matched (404, 405)."""
    match_info = request.match_info
    route = getattr(match_info, "route", None)
    resource = getattr(route, "resource", None)
    if resource is None or getattr(match_info, "http_exception", None) is not None:
        return UNMATCHED
    return resource.canonical


@web.middleware
async def measure(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status: int | None = None
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as error:
        status = error.status
        raise
    except Exception:
        status = 500
        raise
    finally:
        # A client that went away (cancelled) is not counted.
        if status is not None:
            metrics.http_request(route_label(request), status, time.perf_counter() - started)


def _authorised(request: web.Request, token: str) -> bool:
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


def metrics_handler(services: Services, token: str | None) -> Handler:
    async def scrape(request: web.Request) -> web.Response:
        if token and not _authorised(request, token):
            raise web.HTTPUnauthorized(
                text="unauthorised\n", headers={"WWW-Authenticate": 'Bearer realm="metrics"'}
            )
        # The database gauges are read on a thread: the event loop keeps serving.
        body, content_type = await asyncio.wait_for(
            asyncio.to_thread(metrics.render, services), SCRAPE_TIMEOUT_S
        )
        return web.Response(body=body, headers={"Content-Type": content_type})

    return scrape


def mount(
    web_app: web.Application, services: Services, env: Mapping[str, str] | None = None
) -> None:
    """GET /metrics, and request counting for every route of `web_app` (and its sub-apps)."""
    environ = os.environ if env is None else env
    token = environ.get(TOKEN_ENV) or None
    if token is None:
        log.info("%s is open: set %s to protect it", PATH, TOKEN_ENV)
    # First, so that it sees what every other middleware answers too.
    web_app.middlewares.insert(0, measure)
    web_app.router.add_get(PATH, metrics_handler(services, token))
