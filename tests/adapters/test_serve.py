"""A real `whoknows serve` stopping and scaling out: SIGTERM drains, --workers supervises."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest
from aiohttp import ClientError, ClientSession, ClientTimeout
from sqlalchemy import select

from bot.db.models import Inbound, InboundState
from bot.services import Services
from tests.adapters.serving import (
    children,
    command,
    command_processes,
    free_port,
    output,
    ready,
    running,
    serve,
    serving,
    stop,
)
from tests.adapters.slack.fake_slack import FakeSlack
from tests.adapters.slack.test_app import _link, all_text

FORM = "application/x-www-form-urlencoded"


async def _refused(port: int) -> bool:
    """A new connection is refused (keep-alive ones are the HTTP server's business)."""
    try:
        async with (
            ClientSession(timeout=ClientTimeout(total=5)) as fresh,
            fresh.get(f"http://127.0.0.1:{port}/healthz"),
        ):
            return False
    except (ClientError, OSError):
        return True


def _inbound(services: Services) -> list[Inbound]:
    with services.db.unit_of_work() as session:
        rows = session.scalars(select(Inbound).order_by(Inbound.id)).all()
        session.expunge_all()
        return list(rows)


def test_sigterm_stops_accepting_and_finishes_the_answer_under_way(
    demo: Services, tmp_path: Path
) -> None:
    _link(demo)
    fake = FakeSlack()

    async def main() -> None:
        async with serving(demo, fake, tmp_path) as (http, port, server):
            fake.hold_responses = True
            await command(http, port, fake, "refund for a prepaid top-up")
            await fake.wait_for(lambda f: len(f.called("response_url")) == 1, timeout=60)
            os.kill(server.pid, signal.SIGTERM)
            await asyncio.sleep(1)
            assert server.poll() is None  # still finishing the answer
            assert await _refused(port)  # but taking nothing new
            fake.hold_responses = False
            for _ in range(100):
                if server.poll() is not None:
                    break
                await asyncio.sleep(0.1)
            assert server.returncode == 0, output(server, tmp_path)

    asyncio.run(main())
    assert len(fake.called("response_url")) == 1
    assert [row.state for row in _inbound(demo)] == [InboundState.DONE]


def test_what_is_not_finished_in_time_is_handed_to_the_next_worker_at_once(
    demo: Services, tmp_path: Path
) -> None:
    _link(demo)
    fake = FakeSlack()

    async def main() -> None:
        await fake.start()
        first_port, second_port = free_port(), free_port()
        first = serve(demo, fake, first_port, tmp_path, WHOKNOWS_DRAIN_TIMEOUT="1")
        second = None
        try:
            async with ClientSession() as http:
                await ready(http, first_port, first)
                fake.hold_responses = True
                await command(http, first_port, fake, "refund for a prepaid top-up")
                await fake.wait_for(lambda f: len(f.called("response_url")) == 1, timeout=60)
                started = time.monotonic()
                os.kill(first.pid, signal.SIGTERM)
                while first.poll() is None and time.monotonic() - started < 30:
                    await asyncio.sleep(0.1)  # not first.wait(): the fake Slack runs on this loop
                assert time.monotonic() - started < 15
                assert first.returncode == 0, output(first, tmp_path)
                (row,) = _inbound(demo)
                # Answered, and released: the lease (60 s by default) is not waited out.
                assert row.state == InboundState.ANSWERED
                fake.hold_responses = False
                second = serve(demo, fake, second_port, tmp_path)
                await ready(http, second_port, second)
                await fake.wait_for(lambda f: len(f.called("response_url")) == 2, timeout=30)
                await fake.wait_for(
                    lambda _: [r.state for r in _inbound(demo)] == [InboundState.DONE],
                    timeout=60,
                )
        finally:
            for server in (first, second):
                if server is not None:
                    stop(server, signal.SIGKILL)
            await fake.close()

    asyncio.run(main())
    held, delivered = fake.called("response_url")
    assert delivered == held
    assert [row.state for row in _inbound(demo)] == [InboundState.DONE]


def _serving(pid: int) -> set[int]:
    """The serving workers among a supervisor's children (not their command processes)."""
    workers = set()
    for child in children(pid):
        command = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        if b"--fd" in command:
            workers.add(child)
    return workers


def test_workers_share_the_port_are_restarted_and_stop_together(
    demo: Services, tmp_path: Path
) -> None:
    _link(demo)
    fake = FakeSlack()

    async def main() -> None:
        async with serving(demo, fake, tmp_path, "--workers", "2") as (http, port, parent):
            deadline = time.monotonic() + 60
            while len(_serving(parent.pid)) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            workers = _serving(parent.pid)
            assert len(workers) == 2
            # Every worker answers on the one port.
            pids = set()
            for _ in range(40):
                async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                    pids.add((await response.json())["pid"])
            assert pids <= workers
            await command(http, port, fake, "refund for a prepaid top-up")
            await fake.wait_for(lambda f: len(f.called("response_url")) == 1, timeout=60)
            # One scrape sums every worker (and its command process).
            async with http.get(f"http://127.0.0.1:{port}/metrics") as response:
                scraped = await response.text()
            assert 'whoknows_answers_total{confident="true"} 1.0' in scraped
            served = [
                float(line.rsplit(" ", 1)[1])
                for line in scraped.splitlines()
                if line.startswith('whoknows_http_requests_total{route="/healthz"')
            ]
            assert sum(served) >= 40

            # One dies: another takes its place, and the port keeps answering.
            victim = min(workers)
            left = children(victim)  # its command process
            os.kill(victim, signal.SIGKILL)
            while time.monotonic() < deadline + 30:
                now = _serving(parent.pid)
                if len(now) == 2 and victim not in now:
                    break
                await asyncio.sleep(0.2)
            assert len(_serving(parent.pid)) == 2 and victim not in _serving(parent.pid)
            await ready(http, port, parent)
            # The dead worker's command process went with it: restarts pile nothing up.
            while [p for p in left if running(p)] and time.monotonic() < deadline + 40:
                await asyncio.sleep(0.2)
            assert left and not [p for p in left if running(p)]

            os.kill(parent.pid, signal.SIGTERM)
            stopping = time.monotonic()
            while parent.poll() is None and time.monotonic() - stopping < 60:
                await asyncio.sleep(0.1)
            assert parent.returncode == 0, output(parent, tmp_path)
            assert await _refused(port)

    asyncio.run(main())


@pytest.mark.reliability(28)
def test_a_command_process_that_dies_is_replaced_and_the_next_question_answered(
    demo: Services, tmp_path: Path
) -> None:
    """The OOM killer takes the command process: the server does not go on failing every
    command until someone restarts it."""
    _link(demo)
    fake = FakeSlack()

    async def main() -> None:
        async with serving(demo, fake, tmp_path) as (http, port, server):
            await command(http, port, fake, "refund for a prepaid top-up")
            await fake.wait_for(lambda f: len(f.called("response_url")) == 1, timeout=60)
            (victim,) = command_processes(server.pid)
            os.kill(victim, signal.SIGKILL)
            while running(victim):
                await asyncio.sleep(0.05)
            await command(http, port, fake, "roaming charges abroad")
            await fake.wait_for(lambda f: len(f.called("response_url")) == 2, timeout=60)
            assert server.poll() is None
            (successor,) = command_processes(server.pid)
            assert successor != victim
            await command(http, port, fake, "chargeback on a card payment")
            await fake.wait_for(lambda f: len(f.called("response_url")) == 3, timeout=60)
            stop(server)  # SIGTERM: done marks still lingering are written first
        assert "a command process died" in output(server, tmp_path)
        answers = [all_text(c["blocks"]) for c in fake.called("response_url")]
        assert all("Who knows about" in a for a in answers), answers
        assert [s for s in _inbound(demo) if s.state != InboundState.DONE] == []

    asyncio.run(main())
