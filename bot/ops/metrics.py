"""Prometheus metrics, defined in one place and all named `whoknows_*`.

Counters and histograms live in each process. What several processes (and
several hosts) share is read from the database when Prometheus scrapes, by
`DatabaseCollector`: the outbox's depth, the lag of the oldest due job, open
huddles. So those gauges are right whichever worker answers the scrape.

`whoknows serve` runs commands in other processes (a spawned command process,
and `--workers N` forks), so it uses prometheus_client's multiprocess mode:
each process writes its counters to files in PROMETHEUS_MULTIPROC_DIR and any
of them renders the sum. prometheus_client chooses the mode when it is first
imported, so this module imports it only when the first metric is recorded or
rendered; the server's parent calls `prepare_multiprocess()` before that and
before it starts another process, and `mark_process_dead(pid)` when a worker
exits. Without the directory (tests, `whoknows chat`), counters stay in memory.

Counts about a transaction's work (answers, huddles, escalations, jobs) are
recorded when that transaction commits, so a rolled-back or retried unit of
work is never counted twice. Recording never raises: a metric that fails is
logged once and the command goes on.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, SessionTransaction

from bot.config import LADDER_STEPS
from bot.db.models import DeliveryState, Huddle, HuddleState, Job, JobState, Outbox

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from bot.services import Services

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
HUDDLE_EVENTS = ("opened", "resolved", "cancelled", "expired")
DELIVERY_RESULTS = ("sent", "retry", "failed")
COMMAND_ERRORS = ("internal", "database")
# The files prometheus_client's multiprocess mode writes (`<type>[_<mode>]_<pid>.db`).
_MULTIPROC_FILES = ("counter_*.db", "histogram_*.db", "gauge_*.db", "summary_*.db")


class _Metrics:
    """The process's counters and histograms, made on first use (see the module's note)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Histogram

        # registry=None: each scrape collects them into a fresh registry (`render`).
        self.requests = Counter(
            "whoknows_http_requests",
            "HTTP requests answered, by route (its canonical path) and status.",
            ["route", "status"],
            registry=None,
        )
        self.request_seconds = Histogram(
            "whoknows_http_request_duration_seconds",
            "Time to answer an HTTP request, by route.",
            ["route"],
            registry=None,
        )
        self.command_seconds = Histogram(
            "whoknows_command_duration_seconds",
            "Time to run a chat command as one unit of work, by command.",
            ["command"],
            registry=None,
        )
        self.command_errors = Counter(
            "whoknows_command_errors",
            "Commands that failed: internal (a bug) or database (unavailable after retries).",
            ["command", "error"],
            registry=None,
        )
        self.answers = Counter(
            "whoknows_answers",
            "Who-knows questions answered, by whether the ranking was confident.",
            ["confident"],
            registry=None,
        )
        self.huddles = {
            name: Counter(f"whoknows_huddles_{name}", f"Huddle threads {name}.", registry=None)
            for name in HUDDLE_EVENTS
        }
        self.escalations = Counter(
            "whoknows_escalations",
            "Escalation ladder steps taken (someone new was asked), by step.",
            ["step"],
            registry=None,
        )
        self.deliveries = Counter(
            "whoknows_outbox_deliveries",
            "Outbox delivery attempts, by platform and result (sent, retry, failed).",
            ["platform", "result"],
            registry=None,
        )
        self.jobs = Counter(
            "whoknows_jobs_run", "Due jobs fired, by kind.", ["kind"], registry=None
        )
        # Series that exist before their first event read 0 rather than missing.
        for confident in ("true", "false"):
            self.answers.labels(confident)
        for step in LADDER_STEPS:
            self.escalations.labels(step)

    def collectors(self) -> list[Any]:
        return [
            self.requests,
            self.request_seconds,
            self.command_seconds,
            self.command_errors,
            self.answers,
            *self.huddles.values(),
            self.escalations,
            self.deliveries,
            self.jobs,
        ]


_built: _Metrics | None = None
_lock = threading.Lock()
_warned = False


def _metrics() -> _Metrics:
    global _built
    if _built is None:
        with _lock:
            if _built is None:
                _built = _Metrics()
    return _built


def _safe(record: Callable[[], object]) -> None:
    """Record a metric; a failure is logged once and never reaches the caller."""
    global _warned
    try:
        record()
    except Exception as error:
        if not _warned:
            _warned = True
            log.warning("recording a metric failed (%s); carrying on", type(error).__name__)


# --- counting when the transaction commits -----------------------------------------------

_PENDING = "whoknows.metrics.pending"


def _on_commit(session: Session | None, record: Callable[[], object]) -> None:
    """Record once `session`'s transaction commits; dropped if it rolls back."""
    if session is None:
        _safe(record)
        return
    try:
        transaction = session.get_nested_transaction() or session.get_transaction()
        if transaction is None:
            _safe(record)
            return
        session.info.setdefault(_PENDING, []).append((transaction, record))
    except Exception:
        _safe(record)


def _within(transaction: SessionTransaction | None, ended: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ended:
            return True
        transaction = transaction.parent
    return False


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint: its counts wait for the outer transaction
    for _transaction, record in session.info.pop(_PENDING, ()):
        _safe(record)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous: SessionTransaction) -> None:
    pending = session.info.get(_PENDING)
    if pending:
        pending[:] = [(t, record) for t, record in pending if not _within(t, previous)]


@event.listens_for(Session, "after_transaction_end")
def _after_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


# --- what the code records ---------------------------------------------------------------


def http_request(route: str, status: int | str, seconds: float) -> None:
    def record() -> None:
        metrics = _metrics()
        metrics.requests.labels(route, str(status)).inc()
        metrics.request_seconds.labels(route).observe(seconds)

    _safe(record)


@contextmanager
def command(name: str) -> Iterator[None]:
    """Time a command's unit of work; what the command raises passes through untouched."""
    started = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - started
        _safe(lambda: _metrics().command_seconds.labels(name).observe(elapsed))


def command_error(name: str, error: str) -> None:
    """error: internal (an unexpected exception) or database (unavailable after retries)."""
    _safe(lambda: _metrics().command_errors.labels(name, error).inc())


def answer(session: Session | None, confident: bool) -> None:
    label = "true" if confident else "false"
    _on_commit(session, lambda: _metrics().answers.labels(label).inc())


def huddle(session: Session | None, what: str) -> None:
    """what: opened, resolved, cancelled or expired."""
    _on_commit(session, lambda: _metrics().huddles[what].inc())


def escalation(session: Session | None, step: str) -> None:
    _on_commit(session, lambda: _metrics().escalations.labels(step).inc())


def job_run(session: Session | None, kind: str) -> None:
    _on_commit(session, lambda: _metrics().jobs.labels(kind).inc())


def delivery(platform: str, result: str) -> None:
    """One outbox delivery attempt: result sent, retry (a fault, tried again) or failed."""
    _safe(lambda: _metrics().deliveries.labels(platform, result).inc())


# --- gauges read from the database at scrape time ----------------------------------------


class DatabaseCollector:
    """Outbox depth, job lag and open huddles, as the database has them now."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def _families(self) -> tuple[Any, Any, Any, Any]:
        from prometheus_client.core import GaugeMetricFamily

        return (
            GaugeMetricFamily(
                "whoknows_outbox_depth",
                "Outbox messages not delivered, by state (pending, failed).",
                labels=["state"],
            ),
            GaugeMetricFamily(
                "whoknows_job_lag_seconds",
                "Age of the oldest due job not yet fired; 0 when none is due.",
            ),
            GaugeMetricFamily("whoknows_huddles_open", "Huddle threads open now."),
            GaugeMetricFamily(
                "whoknows_database_up", "1 when the database answered this scrape's queries."
            ),
        )

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def read(self) -> tuple[dict[str, int], float, int]:
        """(outbox rows by state, job lag in seconds, open huddles)."""
        now = self.services.clock()
        with self.services.db.engine.connect() as connection:
            depth = {state.value: 0 for state in (DeliveryState.PENDING, DeliveryState.FAILED)}
            for state, count in connection.execute(
                select(Outbox.state, func.count())
                .where(Outbox.state.in_([DeliveryState.PENDING, DeliveryState.FAILED]))
                .group_by(Outbox.state)
            ):
                depth[DeliveryState(state).value] = count
            oldest: datetime | None = connection.execute(
                select(func.min(Job.due_at)).where(Job.state == JobState.PENDING, Job.due_at <= now)
            ).scalar()
            open_huddles = connection.execute(
                select(func.count()).select_from(Huddle).where(Huddle.state == HuddleState.OPEN)
            ).scalar_one()
        lag = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
        return depth, lag, int(open_huddles)

    def collect(self) -> Iterable[Metric]:
        depth_family, lag_family, open_family, up_family = self._families()
        try:
            depth, lag, open_huddles = self.read()
        except Exception as error:
            # Said without the error's text: a driver's message may name the server.
            log.warning("metrics: database unavailable (%s)", type(error).__name__)
            up_family.add_metric([], 0)
            return [up_family]
        for state, count in depth.items():
            depth_family.add_metric([state], count)
        lag_family.add_metric([], lag)
        open_family.add_metric([], open_huddles)
        up_family.add_metric([], 1)
        return [depth_family, lag_family, open_family, up_family]


# --- rendering and multiprocess mode -----------------------------------------------------


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def _multiprocess_values() -> bool:
    """Whether this process's counters are written to PROMETHEUS_MULTIPROC_DIR's files."""
    from prometheus_client import values

    return bool(getattr(values.ValueClass, "_multiprocess", False))


def prepare_multiprocess(path: str | os.PathLike[str] | None = None) -> str:
    """In the server's parent process, before it starts any other process: the directory
    where every process's counters are written, and the scrape sums them.

    `path`, else PROMETHEUS_MULTIPROC_DIR, else a new temporary directory that
    this process removes when it exits. It is created if need be, emptied of an
    earlier run's files, and set in the environment the other processes
    inherit. Call it before any metric is recorded in this process.
    """
    if path is not None:
        os.environ[MULTIPROC_ENV] = str(path)
    directory = multiprocess_dir()
    if directory is None:
        directory = tempfile.mkdtemp(prefix="whoknows-metrics-")
        os.environ[MULTIPROC_ENV] = directory
        owner = os.getpid()
        # Forked workers inherit this hook: only the process that made it removes it.
        atexit.register(lambda: os.getpid() == owner and shutil.rmtree(directory, True))
    if _built is not None and not _multiprocess_values():
        raise RuntimeError(
            f"{MULTIPROC_ENV} must be set before the first metric is recorded in this process"
        )
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    for pattern in _MULTIPROC_FILES:
        for stale in folder.glob(pattern):
            stale.unlink(missing_ok=True)
    return directory


def mark_process_dead(pid: int) -> None:
    """A worker process exited: call from the parent with its pid (multiprocess mode only).

    Its counters stay in the totals; prometheus_client drops its live gauges.
    """
    directory = multiprocess_dir()
    if directory is None:
        return
    from prometheus_client import multiprocess

    _safe(lambda: multiprocess.mark_process_dead(pid, directory))


def _set_too_late() -> None:
    raise RuntimeError(f"{MULTIPROC_ENV} was set after prometheus_client was imported")


def registry(services: Services) -> Any:
    """A fresh registry for one scrape: this process's (or all workers') metrics, and
    the database's gauges once."""
    from prometheus_client import CollectorRegistry

    metrics = _metrics()
    fresh = CollectorRegistry()
    directory = multiprocess_dir()
    if directory is not None and _multiprocess_values():
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(fresh, path=directory)
    else:
        if directory is not None:
            _safe(_set_too_late)
        for collector in metrics.collectors():
            fresh.register(collector)
    fresh.register(DatabaseCollector(services))
    return fresh


def render(services: Services) -> tuple[bytes, str]:
    """The scrape's body and content type (Prometheus' text format). Reads the database."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(registry(services)), CONTENT_TYPE_LATEST
