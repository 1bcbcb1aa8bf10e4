"""Requests kept before their ack arrive in bursts and are written together."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event, select

from adapters.intake import Intake
from bot.db.models import Inbound, InboundState
from bot.services import Services


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
        await asyncio.gather(*(intake.done(i) for i in ids[:7]))
        return ids

    ids = asyncio.run(scenario())
    with services.db.reading() as session:
        states = dict(session.execute(select(Inbound.id, Inbound.state)).all())
        payloads = dict(session.execute(select(Inbound.id, Inbound.payload)).all())
    assert [states[i] for i in ids] == [InboundState.DONE] * 7 + [InboundState.PENDING] * 3
    assert all(payloads[i] is None for i in ids[:7]) and payloads[ids[9]] is not None
