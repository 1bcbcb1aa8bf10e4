"""The weekly team digest: what a team did together, posted to its channel.

Each team's digest is due once a week, on its day at its time in its time zone
(Monday 09:00 in the team lead's zone unless a lead sets another), and covers the
seven days before that moment. It is a due job keyed by (kind, team, ISO week of
the day it is due), so however many workers plan it there is one a week, and the
worker that claims it (`FOR UPDATE SKIP LOCKED` on PostgreSQL) posts it once and
schedules the next. A team that turns it off has its pending one cancelled.

The figures, for the team's huddle threads and people, over [start, end):
- resolved: its huddle threads resolved in the window;
- time to first expert: the median wait for the first expert reply, over its huddle
  threads opened in the window that had one before the end;
- answers: knowledge entries created in the window with an author in the team;
- unanswered: its huddle threads opened in the window with no expert reply by the
  end, and its people's who-knows questions that found nobody clearly;
- helpers: whoever replied in its huddle threads (from any team) and its people who
  wrote answers, credited as the team's result: names only, alphabetically, unless
  the team turned its leaderboard on (then ranked, with their counts).
"""

from __future__ import annotations

import logging
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from bot import messages
from bot.db.models import (
    Huddle,
    HuddleParticipant,
    HuddleState,
    Identity,
    Job,
    JobState,
    KnowledgeAuthor,
    KnowledgeEntry,
    Person,
    QueryLog,
    Role,
    Team,
    TeamDigest,
)
from bot.runtime import jobs, outbox
from bot.services import Services, presence
from bot.services.accounts import CHAT_PLATFORMS
from bot.types import Element, Reply, Text

log = logging.getLogger(__name__)

KIND = "digest"
WEEK = timedelta(days=7)
HELPERS_SHOWN = 5
EXAMPLES_SHOWN = 3
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


# --- settings and schedule -------------------------------------------------------------


@dataclass(frozen=True)
class Schedule:
    """A team's digest settings, defaults filled in."""

    enabled: bool
    weekday: int  # ISO, 1 = Monday
    minute: int  # local minutes after midnight
    zone: str
    leaderboard: bool
    platform: str

    @property
    def day_name(self) -> str:
        return WEEKDAYS[self.weekday - 1].capitalize()

    @property
    def at(self) -> str:
        return f"{self.minute // 60:02d}:{self.minute % 60:02d}"


def settings_row(session: Session, team: Team) -> TeamDigest:
    """The team's settings row, made with the defaults when it has none."""
    row = session.get(TeamDigest, team.id)
    if row is None:
        row = TeamDigest(team_id=team.id, enabled=True, weekday=1, minute=9 * 60, leaderboard=False)
        session.add(row)
        session.flush()
    return row


def schedule_of(session: Session, team: Team) -> Schedule:
    row = session.get(TeamDigest, team.id)
    zone = row.timezone if row is not None and row.timezone else _lead_zone(session, team)
    return Schedule(
        enabled=row.enabled if row is not None else True,
        weekday=row.weekday if row is not None else 1,
        minute=row.minute if row is not None else 9 * 60,
        zone=zone,
        leaderboard=row.leaderboard if row is not None else False,
        platform=(row.platform if row is not None and row.platform else None)
        or _team_platform(session, team),
    )


def _lead_zone(session: Session, team: Team) -> str:
    zone = session.scalar(
        select(Person.timezone)
        .where(Person.team_id == team.id, Person.role == Role.LEAD, Person.deleted_at.is_(None))
        .order_by(Person.id)
        .limit(1)
    )
    return zone if zone and presence.valid_timezone(zone) else "UTC"


def _team_platform(session: Session, team: Team) -> str:
    """Where the team's channel is: where its latest huddle thread was, else a chat
    platform its lead (or anyone in it) has an account on, else the local chat."""
    latest = session.scalar(
        select(Huddle.platform)
        .where(Huddle.team_id == team.id, Huddle.platform.is_not(None))
        .order_by(Huddle.created_at.desc(), Huddle.id.desc())
        .limit(1)
    )
    if latest:
        return latest
    held = session.scalars(
        select(Identity.platform)
        .join(Person, Person.id == Identity.person_id)
        .where(Person.team_id == team.id, Identity.platform.in_(CHAT_PLATFORMS))
        .order_by(Person.role != Role.LEAD, Person.id)
        .limit(1)
    ).first()
    return held or "console"


def next_due(schedule: Schedule, after: datetime) -> datetime:
    """The first moment strictly after `after` on the team's day at its time, local."""
    zone = ZoneInfo(schedule.zone)
    local = after.astimezone(zone)
    day = local.date() + timedelta(days=(schedule.weekday - local.isoweekday()) % 7)
    at = time(schedule.minute // 60, schedule.minute % 60)
    for _ in range(3):
        due = datetime.combine(day, at, zone).astimezone(UTC)
        if due > after:
            return due
        day += timedelta(days=7)
    raise AssertionError("unreachable")


def week_step(schedule: Schedule, due: datetime) -> int:
    """The ISO week (YYYYWW) of the local day a digest is due: one digest a week."""
    year, week, _ = due.astimezone(ZoneInfo(schedule.zone)).isocalendar()
    return year * 100 + week


def plan_team(session: Session, team: Team, now: datetime, *, again: bool = False) -> Job | None:
    """Make sure the team's next digest is scheduled; `again` (its settings changed):
    move a pending one to the new time. None when it is off."""
    schedule = schedule_of(session, team)
    if not schedule.enabled:
        jobs.cancel_for_team(session, team.id, KIND)
        return None
    pending = session.scalar(
        select(Job).where(Job.kind == KIND, Job.team_id == team.id, Job.state == JobState.PENDING)
    )
    if pending is not None and not again:
        return pending
    if pending is not None:
        jobs.cancel_for_team(session, team.id, KIND)
    due = next_due(schedule, now)
    for _ in range(2):
        job = jobs.schedule_for_team(
            session, KIND, due, team_id=team.id, step=week_step(schedule, due)
        )
        if job is not None:
            return job
        due = next_due(schedule, due)  # this week's has gone out: next week's
    return None


@jobs.planner(KIND)
def plan(services: Services) -> None:
    """Every team's next digest, scheduled once (on every worker, at start and hourly)."""
    now = services.clock()
    with services.db.reading() as session:
        waiting = set(
            session.scalars(
                select(Job.team_id).where(Job.kind == KIND, Job.state == JobState.PENDING)
            )
        )
        off = set(session.scalars(select(TeamDigest.team_id).where(TeamDigest.enabled.is_(False))))
        teams = [t for t in session.scalars(select(Team.id)) if t not in waiting | off]
    for team_id in teams:
        with services.db.unit_of_work() as session:
            team = session.get(Team, team_id)
            if team is not None:
                plan_team(session, team, now)


# --- the figures -----------------------------------------------------------------------


@dataclass(frozen=True)
class Helper:
    key: str
    name: str
    team: str | None
    huddles: int  # the team's huddle threads they replied in
    answers: int  # answers they wrote (their own team's people)


@dataclass(frozen=True)
class Digest:
    team: str
    start: datetime
    end: datetime
    zone: str
    resolved: int
    first_expert_s: float | None  # median
    first_expert_count: int
    answers: int
    unanswered_huddles: int
    unmatched_questions: int
    examples: tuple[str, ...]  # the questions that found nobody, most asked first
    helpers: tuple[Helper, ...]
    leaderboard: bool


def compute(
    session: Session,
    team: Team,
    start: datetime,
    end: datetime,
    *,
    zone: str = "UTC",
    leaderboard: bool = False,
) -> Digest:
    resolved = session.scalar(
        select(func.count(Huddle.id)).where(
            Huddle.team_id == team.id,
            Huddle.state == HuddleState.RESOLVED,
            Huddle.closed_at >= start,
            Huddle.closed_at < end,
        )
    )
    opened = session.execute(
        select(Huddle.created_at, Huddle.first_reply_at).where(
            Huddle.team_id == team.id, Huddle.created_at >= start, Huddle.created_at < end
        )
    ).all()
    waits = [
        (replied - created).total_seconds()
        for created, replied in opened
        if replied is not None and replied < end
    ]
    unanswered = sum(1 for _, replied in opened if replied is None or replied >= end)
    members = select(Person.id).where(Person.team_id == team.id)
    answers = session.scalar(
        select(func.count(distinct(KnowledgeEntry.id)))
        .join(KnowledgeAuthor, KnowledgeAuthor.entry_id == KnowledgeEntry.id)
        .where(
            KnowledgeAuthor.person_id.in_(members),
            KnowledgeEntry.created_at >= start,
            KnowledgeEntry.created_at < end,
        )
    )
    asked = Counter(
        " ".join(text.split())
        for text in session.scalars(
            select(QueryLog.text).where(
                QueryLog.person_id.in_(members),
                QueryLog.confident.is_(False),
                QueryLog.created_at >= start,
                QueryLog.created_at < end,
            )
        )
    )
    examples = tuple(
        text[:80] for text, _ in sorted(asked.items(), key=lambda kv: (-kv[1], kv[0]))
    )[:EXAMPLES_SHOWN]
    return Digest(
        team=team.name,
        start=start,
        end=end,
        zone=zone,
        resolved=int(resolved or 0),
        first_expert_s=statistics.median(waits) if waits else None,
        first_expert_count=len(waits),
        answers=int(answers or 0),
        unanswered_huddles=unanswered,
        unmatched_questions=sum(asked.values()),
        examples=examples,
        helpers=tuple(_helpers(session, team, start, end)),
        leaderboard=leaderboard,
    )


def _helpers(session: Session, team: Team, start: datetime, end: datetime) -> list[Helper]:
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for person_id, count in session.execute(
        select(HuddleParticipant.person_id, func.count(distinct(HuddleParticipant.huddle_id)))
        .join(Huddle, Huddle.id == HuddleParticipant.huddle_id)
        .where(
            Huddle.team_id == team.id,
            HuddleParticipant.first_reply_at >= start,
            HuddleParticipant.first_reply_at < end,
        )
        .group_by(HuddleParticipant.person_id)
    ):
        counts[person_id][0] = int(count)
    for person_id, count in session.execute(
        select(KnowledgeAuthor.person_id, func.count(distinct(KnowledgeEntry.id)))
        .join(KnowledgeEntry, KnowledgeEntry.id == KnowledgeAuthor.entry_id)
        .join(Person, Person.id == KnowledgeAuthor.person_id)
        .where(
            Person.team_id == team.id,
            KnowledgeEntry.created_at >= start,
            KnowledgeEntry.created_at < end,
        )
        .group_by(KnowledgeAuthor.person_id)
    ):
        counts[person_id][1] = int(count)
    if not counts:
        return []
    found = session.execute(
        select(Person.id, Person.key, Person.display_name, Team.name)
        .outerjoin(Team, Team.id == Person.team_id)
        .where(Person.id.in_(list(counts)), Person.deleted_at.is_(None))
    ).all()
    helpers = [Helper(key, name, team_name, *counts[pid]) for pid, key, name, team_name in found]
    helpers.sort(key=lambda h: (-(h.huddles + h.answers), -h.huddles, h.name, h.key))
    return helpers[:HELPERS_SHOWN]


def _plural(count: int) -> str:
    return "" if count == 1 else "s"


def _wait(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} seconds"
    if seconds < 3600:
        return f"{seconds / 60:.1f} minutes"
    return f"{seconds / 3600:.1f} hours"


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def lines(digest: Digest) -> list[str]:
    """The digest in sentences: the team's result first, then who helped."""
    zone = ZoneInfo(digest.zone)
    said = [
        messages.DIGEST_HEADER.format(
            team=digest.team,
            start=f"{digest.start.astimezone(zone):%a %d %b %H:%M}",
            end=f"{digest.end.astimezone(zone):%a %d %b %Y %H:%M}",
            zone=digest.zone,
        ),
        messages.DIGEST_TEAM.format(
            team=digest.team,
            resolved=digest.resolved,
            resolved_s=_plural(digest.resolved),
            answers=digest.answers,
            answers_s=_plural(digest.answers),
        ),
    ]
    if digest.first_expert_s is None:
        said.append(messages.DIGEST_NO_FIRST_EXPERT)
    else:
        said.append(
            messages.DIGEST_FIRST_EXPERT.format(
                median=_wait(digest.first_expert_s), count=digest.first_expert_count
            )
        )
    if digest.unanswered_huddles or digest.unmatched_questions:
        examples = (
            ": " + ", ".join(f"“{text}”" for text in digest.examples) if digest.examples else ""
        )
        said.append(
            messages.DIGEST_UNANSWERED.format(
                huddles=digest.unanswered_huddles,
                huddles_s=_plural(digest.unanswered_huddles),
                questions=digest.unmatched_questions,
                questions_s=_plural(digest.unmatched_questions),
                examples=examples,
            )
        )
    else:
        said.append(messages.DIGEST_ALL_ANSWERED)
    if not digest.helpers:
        said.append(messages.DIGEST_NOBODY_HELPED)
    elif digest.leaderboard:
        said.append(messages.DIGEST_BOARD)
        said.extend(
            messages.DIGEST_BOARD_LINE.format(
                rank=rank,
                name=h.name,
                huddles=h.huddles,
                huddles_s=_plural(h.huddles),
                answers=h.answers,
                answers_s=_plural(h.answers),
            )
            for rank, h in enumerate(digest.helpers, start=1)
        )
    else:
        # The team's result, with thanks: names in alphabetical order, no counts.
        names = sorted((h.name for h in digest.helpers), key=str.casefold)
        said.append(messages.DIGEST_THANKS.format(names=_names(names)))
    return said


def reply(digest: Digest) -> Reply:
    elements: list[Element] = [Text(line) for line in lines(digest)]
    return Reply(tuple(elements), private=False)


def channel_of(team: Team) -> str | None:
    return team.channel or team.huddle_channel


def latest_window(schedule: Schedule, now: datetime) -> tuple[datetime, datetime]:
    """The seven days before the last moment the digest was due (on or before now)."""
    end = next_due(schedule, now - WEEK)
    if end > now:  # pragma: no cover - next_due after now - 7 days is at most now
        end -= WEEK
    return end - WEEK, end


@jobs.handler(KIND)
def _on_digest(services: Services, session: Session, job: Job, now: datetime) -> None:
    team = session.get(Team, job.team_id) if job.team_id is not None else None
    if team is None:
        return
    schedule = schedule_of(session, team)
    if not schedule.enabled:
        return
    end = job.due_at
    digest = compute(
        session, team, end - WEEK, end, zone=schedule.zone, leaderboard=schedule.leaderboard
    )
    channel = channel_of(team)
    if channel is None:
        log.warning("team %s has no channel for its weekly digest", team.id)
    else:
        outbox.enqueue(
            session,
            platform=schedule.platform,
            kind="post",
            channel=channel,
            reply=reply(digest),
            now=now,
        )
    # The next one, from now: a worker down for weeks posts one digest, not a backlog.
    after = max(now, end)
    due = next_due(schedule, after)
    if week_step(schedule, due) == job.step:
        due = next_due(schedule, due)
    jobs.schedule_for_team(session, KIND, due, team_id=team.id, step=week_step(schedule, due))


def sent(session: Session, team: Team, limit: int = 12) -> list[Job]:
    """The team's digests that went out, newest first."""
    return list(
        session.scalars(
            select(Job)
            .where(Job.kind == KIND, Job.team_id == team.id, Job.state == JobState.DONE)
            .order_by(Job.due_at.desc())
            .limit(limit)
        )
    )


def pending(session: Session, team: Team) -> Job | None:
    return session.scalar(
        select(Job).where(Job.kind == KIND, Job.team_id == team.id, Job.state == JobState.PENDING)
    )
