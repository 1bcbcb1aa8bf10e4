"""`whoknows serve`: one aiohttp application for every configured platform.

Slack at /slack/events (and Socket Mode when SLACK_APP_TOKEN is set), Teams
at /api/messages, /healthz and /readyz; one background worker per process fires due
jobs and delivers the outbox through each platform's Messenger.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from adapters.commands import CommandRunner
from bot.router import Router
from bot.services import Services
from bot.worker import Worker

log = logging.getLogger(__name__)
WORKER = web.AppKey("worker", Worker)
ADAPTERS = web.AppKey("adapters", dict)


SERVICES = web.AppKey("services", Services)


async def readyz(request: web.Request) -> web.Response:
    """Ready when the database answers: a load balancer stops sending work otherwise."""
    services = request.app[SERVICES]

    def ping() -> None:
        with services.db.engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")

    try:
        await asyncio.wait_for(asyncio.to_thread(ping), timeout=5)
    except Exception as error:
        log.warning("not ready: database unavailable (%s)", type(error).__name__)
        return web.json_response({"ok": False, "database": "unavailable"}, status=503)
    return web.json_response({"ok": True, "database": "ok"})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "platforms": sorted(request.app[ADAPTERS])})


def build_app(
    services: Services,
    router: Router,
    env: Mapping[str, str] | None = None,
    *,
    worker_interval: float = 1.0,
) -> web.Application:
    from adapters.slack.settings import SlackSettings

    web_app = web.Application(client_max_size=1024**2)
    web_app.router.add_get("/healthz", healthz)
    web_app.router.add_get("/readyz", readyz)
    web_app[SERVICES] = services
    adapters: dict[str, Any] = {}
    worker = Worker(services, {}, interval=worker_interval)
    environ = os.environ if env is None else env
    commands = CommandRunner(
        services, router, processes=int(environ.get("WHOKNOWS_COMMAND_PROCESSES", "0"))
    )
    slack_settings = SlackSettings.from_env(env)
    if slack_settings.enabled:
        from adapters.slack.app import SlackAdapter

        slack = SlackAdapter(services, router, slack_settings, kick=worker.kick, commands=commands)
        slack.mount(web_app)
        adapters["slack"] = slack
        worker.messengers["slack"] = slack.messenger
        worker.recoverers["slack"] = slack.recover
    from adapters.teams.settings import TeamsSettings

    teams_settings = TeamsSettings.from_env(env)
    if teams_settings.enabled:
        from adapters.teams.app import TeamsAdapter

        teams = TeamsAdapter(services, router, teams_settings, kick=worker.kick, commands=commands)
        teams.mount(web_app)
        adapters["teams"] = teams
        worker.messengers["teams"] = teams.messenger
    from adapters.dashboard import mount_dashboard

    # The leads' dashboard, signed into by a link from chat: on whatever platforms run.
    mount_dashboard(web_app, services)
    web_app[ADAPTERS] = adapters
    web_app[WORKER] = worker

    async def start(app: web.Application) -> None:
        worker.start()
        slack_adapter = adapters.get("slack")
        if slack_adapter is not None and slack_adapter.settings.app_token:
            app["socket_mode"] = await slack_adapter.connect_socket_mode()

    async def stop(app: web.Application) -> None:
        handler = app.get("socket_mode")
        if handler is not None:
            await handler.close_async()
        await worker.stop()
        commands.close()

    web_app.on_startup.append(start)
    web_app.on_cleanup.append(stop)
    return web_app


def serve(services: Services, router: Router, host: str, port: int) -> int:
    # Ranking runs in a worker process unless told otherwise: acks stay fast.
    env = {"WHOKNOWS_COMMAND_PROCESSES": "1", **os.environ}
    web_app = build_app(services, router, env)
    platforms = ", ".join(sorted(web_app[ADAPTERS])) or "no platform (set SLACK_* or MICROSOFT_*)"
    print(f"whoknows serving {platforms} on http://{host}:{port}")
    web.run_app(web_app, host=host, port=port, print=None, access_log=None)
    return 0
