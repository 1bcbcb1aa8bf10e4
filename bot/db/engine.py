"""Engines and units of work for SQLite (the embedded default) and PostgreSQL."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, event, exc
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from bot.db import revision

MIGRATIONS = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000
WRITER_POLL_S, WRITER_POLL_MAX_S = 0.0002, 0.002  # a writer's first and longest pause
READING = "whoknows_reading"  # execution option of `Database.reading()` sessions


def insert_for(dialect: str) -> Callable[..., Any]:
    """The dialect's INSERT, the one that can do nothing or update on a conflict
    (`on_conflict_do_nothing`, `on_conflict_do_update`): PostgreSQL's or SQLite's."""
    return pg_insert if dialect == "postgresql" else sqlite_insert


def make_engine(url: str) -> Engine:
    if make_url(url).get_backend_name() == "sqlite":
        return _sqlite_engine(url)
    return create_engine(url, pool_pre_ping=True)


def _sqlite_engine(url: str) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    # isolation_level=None hands transaction control to us, so that every unit of
    # work can BEGIN IMMEDIATE: a writer then waits on busy_timeout at its start
    # instead of failing with "database is locked" when it upgrades a read lock.
    engine = create_engine(url, connect_args={"isolation_level": None, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # A reader (`Database.reading`) takes no lock: WAL lets it read alongside
        # the one writer, so long reads (ranking) never hold writers up.
        if connection.get_execution_options().get(READING, False):
            connection.exec_driver_sql("BEGIN")
        else:
            _begin_writing(connection.connection.dbapi_connection)

    return engine


def _begin_writing(dbapi_connection: Any) -> None:
    """BEGIN IMMEDIATE, waiting for another process's writer in short steps.

    SQLite's own busy handler sleeps 1, 2, 5, 10 … up to 100 ms between tries, so
    a writer that another process holds up for one millisecond (an answer's log
    row, a batch of kept requests) often waits ten or more. Writers of this
    process queue on `Database._writer` first, so only other processes wait here.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    pause = WRITER_POLL_S
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=0")
    try:
        while True:
            try:
                cursor.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as error:
                busy = getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY
                if not busy or time.monotonic() >= deadline:
                    # As SQLAlchemy raises it: the callers' retries know this one.
                    raise exc.OperationalError("BEGIN IMMEDIATE", None, error) from error
            time.sleep(pause)
            pause = min(pause * 2, WRITER_POLL_MAX_S)
    finally:
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()


# Full-text search lives where the models do not look: SQLite FTS5 tables and a
# PostgreSQL expression index. Slack's installation tables are slack_sdk's own
# (migration 0007; the adapter's tests compare them with slack_sdk's metadata).
UNMODELLED_PREFIXES = ("knowledge_fts", "ix_knowledge_entry_fts", "slack_")


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """For Alembic: leave the full-text tables out of schema comparisons."""
    return not (type_ in {"table", "index"} and (name or "").startswith(UNMODELLED_PREFIXES))


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


class Database:
    """An engine and its session factories.

    `unit_of_work()` is one transaction that may write; on SQLite it holds the
    write lock from its first statement to its end, so it is for short work.
    `reading()` is one transaction that only reads: a consistent snapshot that
    holds no lock, for long reads such as ranking.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._readers = sessionmaker(
            self.engine, expire_on_commit=False, execution_options={READING: True}
        )
        event.listen(self._readers, "before_flush", _refuse_writes)
        # SQLite has one writer at a time. Its busy handler polls with sleeps that grow
        # to 100 ms, so threads of one process that all wait on it are woken late and
        # out of turn; they queue here instead, and only other processes poll.
        self._writer: AbstractContextManager[Any] = (
            threading.RLock() if self.backend == "sqlite" else nullcontext()
        )
        revision.track_changes(self._sessions)

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def upgrade(self) -> None:
        command.upgrade(alembic_config(self.engine), "head")

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        with self._writer, self._sessions() as session, session.begin():
            yield session

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A write transaction on a bare connection, for a hot path of Core statements
        (no ORM objects, nothing for `revision` to track): a batch of kept requests
        costs a fifth to a third less than in a session."""
        with self._writer, self.engine.begin() as connection:
            yield connection

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """A read-only transaction; objects read in it stay usable after it ends."""
        with self._readers() as session:  # closing it ends the snapshot (a rollback)
            yield session

    def dispose(self) -> None:
        self.engine.dispose()


def _refuse_writes(session: Session, _context: Any, _instances: Any) -> None:
    if session.new or session.dirty or session.deleted:
        raise RuntimeError("a read-only unit of work tried to write; use unit_of_work()")


def open_database(url: str, *, upgrade: bool = True) -> Database:
    database = Database(url)
    if upgrade:
        database.upgrade()
    return database
