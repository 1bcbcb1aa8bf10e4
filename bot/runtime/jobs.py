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
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.db.engine import insert_for
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


# Planners make sure the recurring jobs exist (a team's weekly digest): the worker runs
# them at start and hourly (`plan`). Each must be safe to run on several workers at once.
Planner = Callable[["Services"], None]
PLANNERS: dict[str, Planner] = {}


def planner(name: str) -> Callable[[Planner], Planner]:
    def register(function: Planner) -> Planner:
        PLANNERS[name] = function
        return function

    return register


# Jobs that come round again: kind → how long after one run the next is due.
EVERY: dict[str, timedelta] = {}


def recurring(kind: str, every: timedelta) -> Callable[[JobHandler], JobHandler]:
    """A handler whose job comes round again `every` after each run (a sweep).

    Two rows take turns, steps 0 and 1 (each run schedules the other), so the table
    does not grow; a partial unique index on (kind, step) for jobs of no huddle keeps
    one of each however many workers schedule it at once.
    """

    def register(function: JobHandler) -> JobHandler:
        def run_and_again(services: Services, session: Session, job: Job, now: datetime) -> None:
            function(services, session, job, now)
            schedule(session, kind, now + every, step=1 - job.step)

        HANDLERS[kind] = run_and_again
        EVERY[kind] = every
        return function

    return register


def plan(services: Services) -> None:
    """Run every planner; one that fails is logged and tried again next time."""
    for name, run in PLANNERS.items():
        try:
            run(services)
        except Exception:
            log.exception("planning %s failed; trying again later", name)


def ensure_recurring(services: Services) -> int:
    """Each recurring job pending (due now) unless it already is: a worker calls this as
    it starts. The number scheduled; one another worker scheduled at the same moment
    is left to it."""
    scheduled = 0
    with services.db.unit_of_work() as session:
        for kind in sorted(EVERY):
            pending = session.scalar(
                select(Job.id)
                .where(
                    Job.kind == kind,
                    Job.huddle_id.is_(None),
                    Job.team_id.is_(None),
                    Job.state == JobState.PENDING,
                )
                .limit(1)
            )
            if pending is not None:
                continue
            try:
                with session.begin_nested():
                    schedule(session, kind, services.clock(), step=0)
                scheduled += 1
            except IntegrityError:
                pass  # another worker inserted it first: one is enough
    return scheduled


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


def schedule_for_team(
    session: Session, kind: str, due_at: datetime, *, team_id: int, step: int
) -> Job | None:
    """Set the team's timer (kind, team, step) to fire at `due_at`; None when it has
    already fired. Two workers scheduling it at once make one row (the insert does
    nothing on conflict, then the row is locked and set)."""
    insert = insert_for(session.get_bind().dialect.name)
    session.execute(
        insert(Job)
        .values(kind=kind, team_id=team_id, step=step, due_at=due_at, state=JobState.PENDING)
        .on_conflict_do_nothing()
    )
    job = session.scalar(
        select(Job)
        .where(Job.kind == kind, Job.team_id == team_id, Job.step == step)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if job is None or job.state == JobState.DONE:
        return None
    job.due_at, job.state, job.fired_at, job.fired_by = due_at, JobState.PENDING, None, None
    return job


def cancel_for_team(session: Session, team_id: int, kind: str) -> None:
    """Cancel a team's pending timers of one kind."""
    session.execute(
        update(Job)
        .where(Job.team_id == team_id, Job.kind == kind, Job.state == JobState.PENDING)
        .values(state=JobState.CANCELLED)
    )


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
