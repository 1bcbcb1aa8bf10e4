"""`whoknows serve`: one aiohttp application for every configured platform.

Slack at /slack/events (and Socket Mode when SLACK_APP_TOKEN is set), Teams
at /api/messages, /healthz and /readyz; one background worker per process fires due
jobs and delivers the outbox through each platform's Messenger.

`--workers N` runs N such processes on one listening socket, under a parent
that restarts any that dies and passes SIGTERM on. On SIGTERM a process stops
accepting, lets the requests under way finish (WHOKNOWS_DRAIN_TIMEOUT) and
hands whatever is left to the other workers through the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from adapters.commands import CommandRunner
from bot.ops import heap, metrics
from bot.router import Router
from bot.runtime.worker import Worker
from bot.services import Services

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
    return web.json_response(
        {"ok": True, "platforms": sorted(request.app[ADAPTERS]), "pid": os.getpid()}
    )


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
        services,
        router,
        processes=int(environ.get("WHOKNOWS_COMMAND_PROCESSES", "0")),
        kick=worker.kick,
    )
    slack_settings = SlackSettings.from_env(env)
    if slack_settings.enabled:
        from adapters.slack.app import SlackAdapter

        slack = SlackAdapter(services, router, slack_settings, commands=commands)
        slack.mount(web_app)
        adapters["slack"] = slack
        worker.messengers["slack"] = slack.messenger
        worker.recoverers["slack"] = slack.recover
    from adapters.teams.settings import TeamsSettings

    teams_settings = TeamsSettings.from_env(env)
    if teams_settings.enabled:
        from adapters.teams.app import TeamsAdapter

        teams = TeamsAdapter(services, router, teams_settings, commands=commands)
        teams.mount(web_app)
        adapters["teams"] = teams
        worker.messengers["teams"] = teams.messenger
        worker.recoverers["teams"] = teams.recover
    from adapters.dashboard import mount_dashboard

    # The leads' dashboard, signed into by a link from chat: on whatever platforms run.
    mount_dashboard(web_app, services)
    from adapters.observability import mount as mount_observability

    # /metrics, and every request counted and timed.
    mount_observability(web_app, services, env)
    web_app[ADAPTERS] = adapters
    web_app[WORKER] = worker

    async def start(app: web.Application) -> None:
        worker.start()
        slack_adapter = adapters.get("slack")
        if slack_adapter is not None and slack_adapter.settings.app_token:
            app["socket_mode"] = await slack_adapter.connect_socket_mode()

    async def drain(app: web.Application) -> None:
        # No new connections by now; requests acked earlier are still being answered.
        # Take over nobody else's requests from here on: what this process hands back
        # below must go to another worker, not straight back to this one.
        worker.recoverers.clear()
        # A second signal (the supervisor's, systemd's) must not cut that short.
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, lambda: None)
        timeout = services.settings.drain_timeout_s
        await asyncio.gather(*(a.drain(timeout) for a in adapters.values() if hasattr(a, "drain")))

    async def stop(app: web.Application) -> None:
        handler = app.get("socket_mode")
        if handler is not None:
            await handler.close_async()
        await worker.stop(timeout=services.settings.drain_timeout_s)
        for adapter in adapters.values():
            if hasattr(adapter, "close"):
                await adapter.close()
        commands.close()

    web_app.on_startup.append(start)
    web_app.on_shutdown.append(drain)
    web_app.on_cleanup.append(stop)
    return web_app


def serve(
    services: Services,
    router: Router,
    host: str,
    port: int,
    *,
    workers: int = 1,
    fd: int | None = None,
) -> int:
    if workers > 1:
        return supervise(services, host, port, workers)
    if fd is None:
        # Before anything is counted: the command process's figures join this one's.
        # (A worker of --workers inherits its parent's directory and must not empty it.)
        metrics.prepare_multiprocess()
    # Ranking runs in a worker process unless told otherwise: acks stay fast.
    env = {"WHOKNOWS_COMMAND_PROCESSES": "1", **os.environ}
    web_app = build_app(services, router, env)

    async def settle(_app: web.Application) -> None:
        heap.settle()  # once started: what it holds now it keeps for life

    web_app.on_startup.append(settle)
    # The parent's listening socket, shared by every worker (`--workers`).
    sock = socket.socket(fileno=fd) if fd is not None else None
    if sock is None:
        names = sorted(web_app[ADAPTERS])
        platforms = ", ".join(names) or "no platform (set SLACK_* or MICROSOFT_*)"
        print(f"whoknows serving {platforms} on http://{host}:{port}", flush=True)
    web.run_app(
        web_app,
        host=None if sock else host,
        port=None if sock else port,
        sock=sock,
        print=None,
        access_log=None,
        # In-flight HTTP handlers; the requests acked before get drain_timeout_s in drain().
        shutdown_timeout=services.settings.drain_timeout_s,
    )
    return 0


RESTART_DELAY_S = 1.0


def supervise(services: Services, host: str, port: int, workers: int) -> int:
    """Run `workers` serving processes on one socket until SIGTERM or SIGINT."""
    listener = socket.create_server((host, port), backlog=1024)
    listener.set_inheritable(True)
    metrics.prepare_multiprocess()  # every worker's figures in each scrape
    env = {**os.environ, "WHOKNOWS_DATABASE_URL": services.settings.database_url}
    services.db.dispose()  # the workers open their own connections

    def start() -> subprocess.Popen[bytes]:
        command = [sys.executable, "-m", "adapters.cli", "serve", "--fd", str(listener.fileno())]
        return subprocess.Popen(command, env=env, pass_fds=(listener.fileno(),))

    children = [start() for _ in range(workers)]
    print(f"whoknows serving on http://{host}:{port} with {workers} workers", flush=True)
    stopping = False

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        for n, child in enumerate(children):
            code = child.poll()
            if code is not None and not stopping:
                log.error("worker %d exited with %s; starting another", child.pid, code)
                metrics.mark_process_dead(child.pid)
                time.sleep(RESTART_DELAY_S)
                children[n] = start()
        if stopping and all(child.poll() is not None for child in children):
            break
        time.sleep(0.2)
    listener.close()
    for child in children:
        metrics.mark_process_dead(child.pid)
    # A worker stopped by our SIGTERM before it could handle it (still starting) is fine too.
    clean = {0, -signal.SIGTERM}
    return 0 if all(child.returncode in clean for child in children) else 1
