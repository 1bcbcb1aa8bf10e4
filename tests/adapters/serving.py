"""Running a real `whoknows serve` process for tests that stop, kill or restart it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import ClientSession

from adapters.slack.verify import sign
from bot.services import Services
from tests.adapters.slack.fake_slack import FakeSlack
from tests.adapters.slack.test_app import SECRET, slash

ROOT = Path(__file__).resolve().parents[2]
FORM = "application/x-www-form-urlencoded"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(
    services: Services,
    fake: FakeSlack,
    port: int,
    home: Path,
    *args: str,
    **extra: str,
) -> subprocess.Popen:
    """`whoknows serve` on the test's database, with Slack's Web API played by `fake`."""
    env = {
        **os.environ,
        "WHOKNOWS_HOME": str(home),
        "WHOKNOWS_DATABASE_URL": services.settings.database_url,
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.api_url,
        "WHOKNOWS_SEMANTIC": "off",
        **extra,
    }
    log = home / f"serve-{port}.log"  # a file, not a pipe nobody reads that could fill up
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "adapters.cli", "serve", "--port", str(port), *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=out,
            start_new_session=True,  # a process group: killing it kills its command process
        )


@contextlib.asynccontextmanager
async def serving(
    services: Services, fake: FakeSlack, home: Path, *args: str
) -> AsyncIterator[tuple[ClientSession, int, subprocess.Popen]]:
    """The fake Slack started, a `serve` on a free port ready to answer, and a client
    session to call it with; on the way out the server is killed, with its command
    processes, if it has not stopped by then, and the fake Slack closed."""
    await fake.start()
    port = free_port()
    server = serve(services, fake, port, home, *args)
    try:
        async with ClientSession() as http:
            await ready(http, port, server)
            yield http, port, server
    finally:
        stop(server, signal.SIGKILL)
        await fake.close()


async def command(http: ClientSession, port: int, fake: FakeSlack, text: str) -> None:
    """A signed /whoknows to the server on `port`; Slack has its ack (200) on return."""
    body = slash(fake, text)
    headers = {"Content-Type": FORM, **sign(SECRET, body, int(time.time()))}
    async with http.post(
        f"http://127.0.0.1:{port}/slack/events", data=body, headers=headers
    ) as response:
        assert response.status == 200


def output(server: subprocess.Popen, home: Path) -> str:
    """What a server started by `serve` printed and logged."""
    port = server.args[server.args.index("--port") + 1]
    return (home / f"serve-{port}.log").read_text(errors="replace")


async def ready(http: ClientSession, port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"whoknows serve exited with {server.returncode}")
        try:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        await asyncio.sleep(0.2)
    raise AssertionError("whoknows serve did not start")


def stop(server: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if server.poll() is None:
        os.killpg(server.pid, sig)
    server.wait(timeout=30)


def children(pid: int) -> set[int]:
    """A process's children, from /proc."""
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found |= {int(n) for n in (task / "children").read_text().split()}
    return found


def named(pid: int) -> str:
    """A process's name, as `ps -o comm` shows it ("" once it is gone)."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def command_processes(pid: int) -> set[int]:
    """A process's command processes: not the directory's linker, nor
    multiprocessing's resource tracker (each names itself once it has started)."""
    from adapters.commands import COMMAND_PROCESS

    return {child for child in children(pid) if running(child) and named(child) == COMMAND_PROCESS}


def running(pid: int) -> bool:
    """Alive: neither gone nor a zombie left for its parent to reap."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"
