"""Many writers at once: on SQLite they queue for the lock, and nobody is told it is locked."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy import text as sql

from bot.db import engine, open_database
from bot.db.models import HelpfulVote, KnowledgeEntry
from bot.db.retry import UNAVAILABLE
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


class _HeldByAnotherProcess(threading.Thread):
    """Another connection (as another process would) holds the write lock for a while."""

    def __init__(self, path: str, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.released_at = float("inf")
        self.other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.other.execute("BEGIN IMMEDIATE")
        self.start()

    def run(self) -> None:
        time.sleep(self.seconds)
        self.released_at = time.monotonic()
        self.other.execute("COMMIT")
        self.other.close()


def test_a_writer_waits_for_another_process_then_writes(tmp_path: Path) -> None:
    path = str(tmp_path / "w.db")
    database = open_database(f"sqlite:///{path}")
    holder = _HeldByAnotherProcess(path, 0.05)
    with database.unit_of_work() as session:
        session.execute(sql("CREATE TABLE t (x INTEGER)"))
    wrote_at = time.monotonic()
    holder.join()
    assert wrote_at > holder.released_at  # it waited for the lock instead of failing


def test_a_writer_held_up_past_the_busy_timeout_gets_the_error_retries_know(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "w.db")
    database = open_database(f"sqlite:///{path}")
    monkeypatch.setattr(engine, "SQLITE_BUSY_TIMEOUT_MS", 200)
    holder = _HeldByAnotherProcess(path, 1.0)
    with pytest.raises(UNAVAILABLE), database.unit_of_work() as session:
        session.execute(sql("CREATE TABLE t (x INTEGER)"))
    holder.join()
    with database.engine.connect() as connection:  # the pooled connection, as it was
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 200
    with database.unit_of_work() as session:  # and it writes once the lock is free
        session.execute(sql("CREATE TABLE t (x INTEGER)"))
