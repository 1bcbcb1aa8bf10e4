"""Requests kept before their ack arrive in bursts and are written together."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from adapters.intake import Intake
from bot.db.models import Inbound, InboundState
from bot.runtime import inbox
from bot.services import Services
from tests.helpers import query_plan


def test_a_burst_is_kept_in_a_few_transactions_and_duplicates_once(services: Services) -> None:
    commits: list[int] = []
    event.listen(services.db.engine, "commit", lambda _conn: commits.append(1))

    async def burst() -> list[Any]:
        intake = Intake(services, "slack")
        keys = [f"command:{i}" for i in range(40)] + ["command:7"]  # one delivered twice
        return await asyncio.gather(*(intake.keep(k, {"kind": "command", "n": k}) for k in keys))

    ids = asyncio.run(burst())
    assert len(commits) <= 3  # one each, before: 41
    kept = [i for i in ids if i is not None]
    assert len(kept) == len(set(kept)) == 40
    assert ids[-1] is None  # the second delivery of command:7
    with services.db.reading() as session:
        assert session.scalar(select(Inbound.id).where(Inbound.key == "command:7")) == ids[7]


def test_answered_requests_are_marked_done_together(services: Services) -> None:
    async def scenario() -> list[int]:
        intake = Intake(services, "slack")
        ids = await asyncio.gather(*(intake.keep(f"action:{i}", {"i": i}) for i in range(10)))
        await asyncio.gather(*(intake.finish(i) for i in ids[:7]))
        return ids

    ids = asyncio.run(scenario())
    with services.db.reading() as session:
        states = dict(session.execute(select(Inbound.id, Inbound.state)).all())
        payloads = dict(session.execute(select(Inbound.id, Inbound.payload)).all())
    assert [states[i] for i in ids] == [InboundState.DONE] * 7 + [InboundState.PENDING] * 3
    assert all(payloads[i] is None for i in ids[:7]) and payloads[ids[9]] is not None


def test_answers_delivered_moments_apart_are_marked_done_in_one_go(services: Services) -> None:
    commits: list[int] = []

    async def scenario() -> list[int]:
        intake = Intake(services, "slack")
        ids = await asyncio.gather(*(intake.keep(f"command:{i}", {"i": i}) for i in range(5)))
        event.listen(services.db.engine, "commit", lambda _conn: commits.append(1))

        async def deliver(n: int, inbound: int) -> None:
            await asyncio.sleep(0.002 * n)  # answers arriving one after another
            await intake.finish(inbound)

        await asyncio.gather(*(deliver(n, i) for n, i in enumerate(ids)))
        return ids

    ids = asyncio.run(scenario())
    assert len(commits) <= 2  # one each, before: 5
    with services.db.reading() as session:
        states = session.scalars(select(Inbound.state).where(Inbound.id.in_(ids))).all()
    assert states == [InboundState.DONE] * 5


def test_finishing_does_not_wait_for_the_done_mark_and_a_stop_writes_it(
    services: Services,
) -> None:
    """The Slack adapter's dispatchers go on once an answer is out, not DONE_LINGER_S
    later; a request whose mark is still pending at a stop is done, not handed over."""

    async def scenario() -> tuple[list[int], set[int]]:
        intake = Intake(services, "slack")
        ids = await asyncio.gather(*(intake.keep(f"command:{i}", {"i": i}) for i in range(3)))
        marking = intake.finish(ids[0])
        assert not marking.done() and ids[0] in intake.open  # not written yet
        await marking
        assert ids[0] not in intake.open
        intake.finish(ids[1])  # its answer is out, its mark pending, and the process stops
        await intake.hand_over(set(), timeout=1)
        return ids, intake.open

    ids, still_open = asyncio.run(scenario())
    assert still_open == {ids[2]}  # never answered: handed over
    with services.db.reading() as session:
        rows = {r.id: r for r in session.scalars(select(Inbound))}
    assert [rows[i].state for i in ids] == [InboundState.DONE] * 2 + [InboundState.PENDING]
    assert rows[ids[2]].lease_until <= services.clock()  # claimable at once


@pytest.mark.reliability(20)
def test_a_request_kept_despite_an_error_is_closed_unless_a_worker_took_it(
    services: Services,
) -> None:
    """The keep's connection broke during COMMIT, which went through: the request is
    answered without its row, and the row must not be run again once its lease ends."""

    async def scenario() -> list[int | None]:
        intake = Intake(services, "slack")
        taken = await intake.keep("command:taken", {"kind": "command"})
        # Its lease ran out and a worker claimed it: that worker answers it.
        later = services.clock() + timedelta(hours=1)
        assert [p.id for p in inbox.claim(services.db, later, ("slack",))] == [taken]
        kept = await intake.keep("command:kept", {"kind": "command"})
        for key in ("command:kept", "command:taken", "command:never-written"):
            await intake.forget(key)
        return [kept, taken]

    kept, taken = asyncio.run(scenario())
    with services.db.reading() as session:
        rows = {r.id: r for r in session.scalars(select(Inbound))}
    assert (rows[kept].state, rows[kept].payload) == (InboundState.DONE, None)
    assert rows[taken].state == InboundState.PENDING and rows[taken].attempts == 1
    assert len(rows) == 2


def test_the_take_over_probe_reads_open_requests_only(services: Services) -> None:
    """Every worker asks each second whether a lease ran out: through the (state, lease)
    index, so it never reads the finished requests that make up nearly every row."""
    if services.db.backend != "sqlite":
        pytest.skip("the query plan checked is SQLite's")
    probe = inbox.overdue(("slack", "teams"), services.clock()).with_only_columns(Inbound.id)
    steps = " / ".join(query_plan(services, probe.limit(1)))
    assert "USING INDEX inbound_due_idx (state=? AND lease_until<?)" in steps, steps
