"""Many writers at once: on SQLite they queue for the lock, and nobody is told it is locked."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from bot.db.models import HelpfulVote, KnowledgeEntry
from bot.router import Router
from bot.services import Services
from tests.helpers import notices, say

PEOPLE = ("alex", "maria", "omar", "priya", "tomasz", "rachel")
ROUNDS = 12


@pytest.mark.reliability(19)
def test_concurrent_writers_never_see_database_is_locked(demo: Services, router: Router) -> None:
    with demo.db.unit_of_work() as session:
        entries = session.scalars(select(KnowledgeEntry.id).order_by(KnowledgeEntry.id)).all()
    failures: list[str] = []
    start = threading.Barrier(len(PEOPLE))

    def agent(key: str) -> None:
        start.wait()
        for n in range(ROUNDS):
            # Status changes, helpful votes and questions (each logged): all writes.
            for name, text in (
                ("busy", "30m"),
                ("available", ""),
                ("kb", f"helpful {entries[n % len(entries)]}"),
                ("whoknows", f"refund for a prepaid top-up {key} {n}"),
            ):
                reply = say(demo, router, key, name, text)
                failures.extend(
                    notice.text
                    for notice in notices(reply)
                    if notice.severity == "error" or "locked" in notice.text
                )

    threads = [threading.Thread(target=agent, args=(key,)) for key in PEOPLE]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert failures == []
    with demo.db.unit_of_work() as session:
        votes = session.scalar(select(func.count()).select_from(HelpfulVote))
    # Everyone's votes landed (one per person and entry).
    assert votes == len(PEOPLE) * min(ROUNDS, len(entries))
