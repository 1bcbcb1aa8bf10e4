"""Requests acked by a process that then died are answered once, by whoever is left.

The first test kills a real `whoknows serve` (SIGKILL, no cleanup) after Slack
got its ack and while the answer is on its way, starts another, and counts
what reaches response_url. The others drive the worker's take-over in process.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from adapters.server import WORKER
from bot.db.models import Huddle, Inbound, InboundState
from bot.router import Router
from bot.runtime import codec, inbox
from bot.services import Services, people
from bot.types import Command, Notice
from tests.adapters.serving import command, free_port, ready, serve, stop
from tests.adapters.slack.fake_slack import FakeSlack
from tests.adapters.slack.test_app import _link, run, slash

FORM = "application/x-www-form-urlencoded"


@pytest.mark.reliability(21)
def test_an_answer_whose_process_died_after_the_ack_is_delivered_once(
    demo: Services, tmp_path: Path
) -> None:
    _link(demo)
    fake = FakeSlack()

    async def main() -> None:
        await fake.start()
        first_port, second_port = free_port(), free_port()
        first = serve(demo, fake, first_port, tmp_path, WHOKNOWS_REQUEST_LEASE="5")
        second = None
        try:
            async with ClientSession() as http:
                await ready(http, first_port, first)
                fake.hold_responses = True  # the answer leaves, and never arrives
                await command(http, first_port, fake, "refund for a prepaid top-up")
                await fake.wait_for(lambda f: len(f.called("response_url")) == 1, timeout=60)
                stop(first, signal.SIGKILL)
                fake.hold_responses = False

                second = serve(demo, fake, second_port, tmp_path, WHOKNOWS_REQUEST_LEASE="5")
                await ready(http, second_port, second)
                await fake.wait_for(lambda f: len(f.called("response_url")) == 2, timeout=60)
                # Another lease and more go by: nobody answers a third time.
                await asyncio.sleep(7)
        finally:
            for server in (first, second):
                if server is not None:
                    stop(server)
            await fake.close()

    asyncio.run(main())
    lost, delivered = fake.called("response_url")
    assert delivered == lost  # the answer the dead process had computed
    assert "Who knows about" in str(delivered["blocks"])
    with demo.db.unit_of_work() as session:
        (state,) = session.scalars(select(Inbound.state)).all()
        assert state == InboundState.DONE


def _accept_as_the_adapter_would(services: Services, payload: dict) -> int:
    """What the ack path writes before acking, left as a process that died would leave it."""
    with services.db.unit_of_work() as session:
        inbound = inbox.accept_many(
            session, "slack", [("command:lost", payload)], services.clock()
        )[0]
    assert inbound is not None
    return inbound


def _kept_command(fake: FakeSlack, text: str, over: str) -> dict:
    """A slash command as the adapter keeps it: over HTTP, the form as it came; over
    Socket Mode, the fields bolt parsed."""
    from urllib.parse import parse_qsl

    form = slash(fake, text).decode()
    if over == "http":
        return {"kind": "command", "form": form}
    return {"kind": "command", "body": dict(parse_qsl(form))}


@pytest.mark.reliability(30)
@pytest.mark.parametrize("over", ["http", "socket mode"])
def test_a_command_that_never_ran_is_run_once_when_its_lease_runs_out(
    demo: Services, router: Router, over: str
) -> None:
    _link(demo)

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        worker = client.app[WORKER]
        await worker.stop()  # its rounds are driven by hand here, not raced by its loop
        _accept_as_the_adapter_would(
            demo, _kept_command(fake, "huddle prepaid top-up refund", over)
        )
        assert await worker.recover() == 0  # still leased to the process that acked it
        demo.clock.advance(61)
        assert await worker.recover() == 1
        await fake.wait_for(lambda f: len(f.called("response_url")) == 1, timeout=60)
        demo.clock.advance(61)
        assert await worker.recover() == 0

    fake = run(demo, router, scenario, worker_interval=3600)
    (answer,) = fake.called("response_url")
    assert "huddle" in answer["text"].lower()
    with demo.db.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(Huddle)) == 1
        inbound = session.scalars(select(Inbound)).one()
        assert inbound.state == InboundState.DONE
        assert inbound.payload is None  # what they asked is not kept once answered


def test_a_request_answered_elsewhere_is_not_run_again(demo: Services, router: Router) -> None:
    """A slow original and a take-over race: the second commit is rolled back whole."""
    with demo.db.unit_of_work() as session:
        alex = people.by_key(session, "alex").id
        inbound = inbox.accept_many(session, "slack", [("k", {"kind": "command"})], demo.clock())[0]
    command = Command("slack", alex, "huddle", "prepaid top-up refund", inbound_id=inbound)
    first = router.dispatch(command, demo)  # the original commits: answered
    assert any(isinstance(e, Notice) and "huddle" in e.text.lower() for e in first.elements)
    again = router.dispatch(command, demo)  # the take-over: nothing happens twice
    assert again.elements == ()
    with demo.db.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(Huddle)) == 1
        row = session.scalars(select(Inbound)).one()
        assert row.state == InboundState.ANSWERED
        assert codec.loads(row.reply or "") == first


def test_a_request_that_keeps_failing_is_given_up(services: Services) -> None:
    with services.db.unit_of_work() as session:
        inbox.accept_many(
            session, "slack", [("k", {"kind": "command", "body": {}})], services.clock()
        )
        assert inbox.accept_many(session, "slack", [("k", {})], services.clock()) == [
            None
        ]  # a duplicate
    for _ in range(inbox.MAX_ATTEMPTS):
        services.clock.advance(61)
        assert len(inbox.claim(services.db, services.clock(), ("slack",))) == 1
        assert inbox.claim(services.db, services.clock(), ("slack",)) == []  # leased
    services.clock.advance(61)
    assert inbox.claim(services.db, services.clock(), ("slack",)) == []
    assert inbox.claim(services.db, services.clock(), ("teams",)) == []
    with services.db.unit_of_work() as session:
        row = session.scalars(select(Inbound)).one()
        assert (row.state, row.payload) == (InboundState.FAILED, None)
