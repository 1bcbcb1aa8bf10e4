"""Due jobs: timers kept in the database.

A restart loses none (they are rows) and fires none twice: each job is claimed,
run and marked done in one transaction, so its effects commit with its
completion or not at all. On PostgreSQL the claim is `FOR UPDATE SKIP LOCKED`,
so several workers share the work and each job runs exactly once; on SQLite
every writing transaction begins IMMEDIATE, which serialises the claims.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.db.models import Job, JobState
from bot.ops import metrics

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)

RETRY_AFTER = timedelta(seconds=30)

JobHandler = Callable[["Services", Session, Job, datetime], None]
HANDLERS: dict[str, JobHandler] = {}


def handler(kind: str) -> Callable[[JobHandler], JobHandler]:
    def register(function: JobHandler) -> JobHandler:
        HANDLERS[kind] = function
        return function

    return register


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:64]


def schedule(
    session: Session, kind: str, due_at: datetime, *, huddle_id: int | None = None, step: int = 0
) -> Job:
    """Set the timer (kind, huddle, step) to fire at `due_at`, pending again if it had fired."""
    job = session.scalar(
        select(Job).where(Job.kind == kind, Job.huddle_id == huddle_id, Job.step == step)
    )
    if job is None:
        job = Job(kind=kind, huddle_id=huddle_id, step=step, due_at=due_at)
        session.add(job)
    else:
        job.due_at, job.state, job.fired_at, job.fired_by = due_at, JobState.PENDING, None, None
    return job


def cancel(session: Session, huddle_id: int, kind: str | None = None) -> None:
    """Cancel a huddle's pending timers (of one kind, or all)."""
    statement = update(Job).where(Job.huddle_id == huddle_id, Job.state == JobState.PENDING)
    if kind is not None:
        statement = statement.where(Job.kind == kind)
    session.execute(statement.values(state=JobState.CANCELLED))


def run_due(services: Services, *, worker: str | None = None, limit: int = 100) -> int:
    """Fire the jobs that are due, each in its own transaction; the number fired."""
    worker = worker or worker_name()
    fired = 0
    with services.db.reading() as session:  # most rounds find nothing: ask without a lock
        due = select(Job.id).where(Job.state == JobState.PENDING, Job.due_at <= services.clock())
        if session.scalar(due.limit(1)) is None:
            return 0
    while fired < limit:
        job_id = None
        try:
            with services.db.unit_of_work() as session:
                now = services.clock()
                job = session.scalar(
                    select(Job)
                    .where(Job.state == JobState.PENDING, Job.due_at <= now)
                    .order_by(Job.due_at, Job.id)
                    .limit(1)
                    .with_for_update(skip_locked=True)
                )
                if job is None:
                    return fired
                job_id = job.id
                run = HANDLERS.get(job.kind)
                if run is None:
                    log.error("no handler for job kind %r; cancelled", job.kind)
                    job.state = JobState.CANCELLED
                    continue
                run(services, session, job, now)
                job.state, job.fired_at, job.fired_by = JobState.DONE, now, worker
                metrics.job_run(session, job.kind)
            fired += 1
        except Exception:
            # Rolled back: try again later rather than spin on a job that fails.
            log.exception("job %s failed; retrying later", job_id)
            if job_id is None:
                raise
            with services.db.unit_of_work() as session:
                failed = session.get(Job, job_id)
                if failed is not None:
                    failed.due_at = services.clock() + RETRY_AFTER
            return fired
    return fired
