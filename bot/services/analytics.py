"""The leads' numbers: coverage, knowledge gaps, huddle times and team KPIs.

Counting, grouping and date arithmetic happen in SQL on SQLite and PostgreSQL
alike (the two dialects differ only in `_week` and `_seconds`). Python does
what SQL cannot say portably: who is available now (time zones and working
hours), medians, and grouping similar questions (rapidfuzz, in a fixed order,
so the same log always gives the same groups).

Every query takes a `Scope`: admins see the whole org, leads their team.
"""

from __future__ import annotations

import re
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from rapidfuzz import fuzz, process
from sqlalchemy import ColumnElement, Select, and_, case, distinct, extract, func, select, true
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.sql.elements import SQLCoreOperations

from bot.db.models import (
    AuditEntry,
    HelpfulVote,
    Huddle,
    HuddleParticipant,
    HuddleState,
    KnowledgeAuthor,
    KnowledgeEntry,
    KnowledgeTag,
    Person,
    QueryLog,
    Role,
    Skill,
    Tag,
    TagAlias,
    Team,
)
from bot.services import presence
from bot.text import terms

# Questions asked about a tag are counted over this window.
ASKED_DAYS = 30
# A gap question joins a group when its content words (stopwords dropped) reach this
# rapidfuzz token_set_ratio with any wording already in it.
GAP_SIMILARITY = 75
# A gap group's suggested tag must match this well (rapidfuzz WRatio).
TAG_SUGGESTION = 70
GAP_QUESTIONS = 5000  # distinct questions looked at, most asked first
# Time to the first expert reply, in buckets: (upper bound in seconds, label).
REPLY_BUCKETS: tuple[tuple[float | None, str], ...] = (
    (60, "< 1 min"),
    (180, "1–3 min"),
    (600, "3–10 min"),
    (1800, "10–30 min"),
    (3600, "30–60 min"),
    (None, "≥ 1 h"),
)
PERIODS = {"week": 7, "month": 30}
STALE_DAYS = 180
TOP = 10


# --------------------------------------------------------------------- scope


@dataclass(frozen=True)
class Scope:
    """Whose numbers a reader may see: `team_ids` None means the whole org."""

    team_ids: frozenset[int] | None

    @classmethod
    def everything(cls) -> Scope:
        return cls(None)

    @classmethod
    def for_person(cls, person: Person) -> Scope:
        if person.role == Role.ADMIN:
            return cls(None)
        if person.role == Role.LEAD and person.team_id is not None:
            return cls(frozenset({person.team_id}))
        return cls(frozenset())

    def where(self, column: SQLCoreOperations[int | None]) -> ColumnElement[bool]:
        if self.team_ids is None:
            return true()
        return column.in_(sorted(self.team_ids))

    def allows(self, team_id: int | None) -> bool:
        return self.team_ids is None or team_id in self.team_ids


def teams_in(session: Session, scope: Scope) -> list[Team]:
    return list(session.scalars(select(Team).where(scope.where(Team.id)).order_by(Team.name)))


# ----------------------------------------------------------- dialect helpers


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _week(session: Session, column: ColumnElement[datetime]) -> ColumnElement[str]:
    """The Monday (UTC) of the week a timestamp falls in, as YYYY-MM-DD."""
    if _dialect(session) == "postgresql":
        monday = func.date_trunc("week", func.timezone("UTC", column))
        return func.to_char(monday, "YYYY-MM-DD")
    # SQLite: forward to Sunday (or stay on it), then back six days.
    return func.date(column, "weekday 0", "-6 days")


def _seconds(
    session: Session, start: ColumnElement[datetime], end: ColumnElement[datetime]
) -> ColumnElement[float]:
    if _dialect(session) == "postgresql":
        return extract("epoch", end - start)
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def _counts(session: Session, query: Select[tuple[Any, int]]) -> dict[Any, int]:
    """A (key, count) query as a dict; a row with no key (no team, say) is left out."""
    return {key: int(count or 0) for key, count in session.execute(query) if key is not None}


def week_start(moment: datetime | date) -> date:
    day = moment.date() if isinstance(moment, datetime) else moment
    return day - timedelta(days=day.weekday())


def recent_weeks(now: datetime, count: int) -> list[date]:
    """The Mondays of the last `count` weeks, oldest first, this week last."""
    this_week = week_start(now)
    return [this_week - timedelta(weeks=n) for n in reversed(range(count))]


def period_bounds(period: str, now: datetime) -> tuple[datetime, datetime]:
    """`week` or `month`: the last 7 or 30 days up to now."""
    if period not in PERIODS:
        raise ValueError(f"unknown period {period!r} (use {', '.join(PERIODS)})")
    return now - timedelta(days=PERIODS[period]), now


# ------------------------------------------------------------------ coverage


@dataclass(frozen=True)
class Cell:
    experts: int = 0
    available: int = 0


@dataclass(frozen=True)
class CoverageRow:
    tag: str
    parent: str | None
    cells: tuple[Cell, ...]  # one per team of Coverage.teams, in that order
    # Across the whole org, whatever the scope: a lone expert is a risk for everyone.
    org_experts: int
    asked: int  # questions naming the tag in the last ASKED_DAYS

    @property
    def experts(self) -> int:
        return sum(cell.experts for cell in self.cells)

    @property
    def available(self) -> int:
        return sum(cell.available for cell in self.cells)

    @property
    def single_expert(self) -> bool:
        return self.org_experts == 1

    @property
    def gap(self) -> bool:
        """Asked about, and nobody holds it."""
        return self.org_experts == 0 and self.asked > 0


@dataclass(frozen=True)
class Coverage:
    teams: tuple[str, ...]
    rows: tuple[CoverageRow, ...]

    @property
    def single_expert(self) -> list[CoverageRow]:
        return [row for row in self.rows if row.single_expert]

    @property
    def gaps(self) -> list[CoverageRow]:
        return [row for row in self.rows if row.gap]

    @property
    def uncovered(self) -> list[CoverageRow]:
        return [row for row in self.rows if row.org_experts == 0]


def available_people(session: Session, now: datetime, scope: Scope) -> set[int]:
    """Who is available now, as a who-knows card would show them (status and shift)."""
    found = session.scalars(
        select(Person)
        .where(Person.deleted_at.is_(None), scope.where(Person.team_id))
        .where(Person.id.in_(select(Skill.person_id)))
        .options(selectinload(Person.presence))
    )
    return {person.id for person in found if presence.current(person, now).reachable}


def coverage(session: Session, now: datetime, scope: Scope) -> Coverage:
    """Experts (and how many are available now) per tag and team."""
    teams = teams_in(session, scope)
    available = sorted(available_people(session, now, scope))
    counts = session.execute(
        select(
            Skill.tag_id,
            Person.team_id,
            func.count(Skill.id),
            func.sum(case((Person.id.in_(available), 1), else_=0)),
        )
        .join(Person, Person.id == Skill.person_id)
        .where(Person.deleted_at.is_(None))
        .group_by(Skill.tag_id, Person.team_id)
    ).all()
    cells: dict[tuple[int, int | None], Cell] = {}
    org: dict[int, int] = defaultdict(int)
    for tag_id, team_id, experts, free in counts:
        org[tag_id] += int(experts)
        if scope.allows(team_id):
            cells[tag_id, team_id] = Cell(int(experts), int(free or 0))
    tags = session.scalars(
        select(Tag).options(selectinload(Tag.parent), selectinload(Tag.aliases))
    ).all()
    asked = questions_per_tag(session, tags, now - timedelta(days=ASKED_DAYS))
    rows = [
        CoverageRow(
            tag=tag.name,
            parent=tag.parent.name if tag.parent else None,
            cells=tuple(cells.get((tag.id, team.id), Cell()) for team in teams),
            org_experts=org[tag.id],
            asked=asked.get(tag.id, 0),
        )
        for tag in tags
    ]
    # Parents first, each followed by its children, alphabetically.
    rows.sort(key=lambda row: (row.parent or row.tag, row.parent is not None, row.tag))
    return Coverage(tuple(team.name for team in teams), tuple(rows))


def _tag_pattern(tag: Tag) -> re.Pattern[str]:
    names = sorted({tag.name, *(alias.alias for alias in tag.aliases)}, key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(re.escape(name) for name in names) + r")\b")


def questions_per_tag(session: Session, tags: Iterable[Tag], since: datetime) -> dict[int, int]:
    """How many questions since `since` name each tag or one of its aliases."""
    texts = [
        (text or "").lower()
        for (text,) in session.execute(
            select(QueryLog.text)
            .where(QueryLog.created_at >= since)
            .order_by(QueryLog.id.desc())
            .limit(GAP_QUESTIONS)
        )
    ]
    if not texts:
        return {}
    counts = {}
    for tag in tags:
        pattern = _tag_pattern(tag)
        hits = sum(1 for text in texts if pattern.search(text))
        if hits:
            counts[tag.id] = hits
    return counts


# ---------------------------------------------------------------------- gaps


@dataclass(frozen=True)
class GapGroup:
    label: str  # the most asked wording
    count: int  # questions in the group
    askers: int  # distinct people (counted per wording, so an upper bound)
    last_asked: datetime
    questions: tuple[tuple[str, int], ...]  # each wording and how often
    tag: str | None  # the nearest existing tag, for "tag someone"


def gap_groups(session: Session, since: datetime, scope: Scope) -> list[GapGroup]:
    """Questions that found nobody clearly, grouped by similar wording, most asked first."""
    wording = func.lower(func.trim(QueryLog.text))
    asker_scope = (
        true()
        if scope.team_ids is None
        else QueryLog.person_id.in_(select(Person.id).where(scope.where(Person.team_id)))
    )
    rows = session.execute(
        select(
            wording,
            func.count(QueryLog.id),
            func.count(distinct(QueryLog.person_id)),
            func.max(QueryLog.created_at),
        )
        .where(QueryLog.confident.is_(False), QueryLog.created_at >= since, asker_scope)
        .group_by(wording)
        .order_by(func.count(QueryLog.id).desc(), wording)
        .limit(GAP_QUESTIONS)
    ).all()
    groups: list[_Group] = []
    # Every wording seen so far, in content words, and the group it joined.
    seen: list[str] = []
    owner: list[int] = []
    for text, count, askers, last in rows:
        words = " ".join(terms(text)) or text
        found = process.extractOne(
            words, seen, scorer=fuzz.token_set_ratio, score_cutoff=GAP_SIMILARITY
        )
        if found is None:
            groups.append(_Group(text, last))
        index = len(groups) - 1 if found is None else owner[found[2]]
        seen.append(words)
        owner.append(index)
        group = groups[index]
        group.questions.append((text, int(count)))
        group.askers += int(askers)
        group.last = max(group.last, last)
    vocabulary = _tag_vocabulary(session)
    result = [
        GapGroup(
            label=group.label,
            count=sum(count for _, count in group.questions),
            askers=group.askers,
            last_asked=group.last,
            questions=tuple(group.questions),
            tag=_nearest_tag(group.label, vocabulary),
        )
        for group in groups
    ]
    result.sort(key=lambda g: (-g.count, g.label))
    return result


@dataclass
class _Group:
    label: str
    last: datetime
    askers: int = 0
    questions: list[tuple[str, int]] = field(default_factory=list)


def _tag_vocabulary(session: Session) -> dict[str, str]:
    """Every tag name and alias → the tag's name."""
    vocabulary = {name: name for (name,) in session.execute(select(Tag.name))}
    aliases = select(TagAlias.alias, Tag.name).join(Tag, Tag.id == TagAlias.tag_id)
    vocabulary.update({alias: name for alias, name in session.execute(aliases)})
    return vocabulary


def _nearest_tag(text: str, vocabulary: dict[str, str]) -> str | None:
    """The tag a question names (its longest name or alias in it), else the closest one."""
    named = [word for word in vocabulary if re.search(r"\b" + re.escape(word) + r"\b", text)]
    if named:
        return vocabulary[min(named, key=lambda word: (-len(word), word))]
    found = process.extractOne(
        text, sorted(vocabulary), scorer=fuzz.WRatio, score_cutoff=TAG_SUGGESTION
    )
    return vocabulary[found[0]] if found else None


# ------------------------------------------------------------------- huddles


@dataclass(frozen=True)
class HuddleRow:
    id: int
    topic: str
    team: str | None
    state: str
    requester: str | None
    created_at: datetime
    closed_at: datetime | None
    first_reply_s: float | None
    ladder_step: int
    experts: tuple[str, ...]


def huddle_rows(session: Session, condition: ColumnElement[bool], limit: int) -> list[HuddleRow]:
    """Huddles meeting `condition`, newest first."""
    query = (
        select(Huddle)
        .where(condition)
        .options(
            selectinload(Huddle.participants).selectinload(HuddleParticipant.person),
            selectinload(Huddle.requester),
            selectinload(Huddle.team),
        )
        .order_by(Huddle.created_at.desc(), Huddle.id.desc())
        .limit(limit)
    )
    return [
        HuddleRow(
            id=huddle.id,
            topic=huddle.topic,
            team=huddle.team.name if huddle.team else None,
            state=huddle.state.value,
            requester=huddle.requester.display_name if huddle.requester else None,
            created_at=huddle.created_at,
            closed_at=huddle.closed_at,
            first_reply_s=(huddle.first_reply_at - huddle.created_at).total_seconds()
            if huddle.first_reply_at
            else None,
            ladder_step=huddle.ladder_step,
            experts=tuple(p.person.display_name for p in huddle.participants if p.invited),
        )
        for huddle in session.scalars(query)
    ]


def open_huddles(session: Session, scope: Scope, limit: int = 50) -> list[HuddleRow]:
    condition = and_(Huddle.state == HuddleState.OPEN, scope.where(Huddle.team_id))
    return huddle_rows(session, condition, limit)


def closed_huddles(
    session: Session, since: datetime, scope: Scope, limit: int = 50
) -> list[HuddleRow]:
    condition = and_(
        Huddle.state != HuddleState.OPEN, Huddle.closed_at >= since, scope.where(Huddle.team_id)
    )
    return huddle_rows(session, condition, limit)


@dataclass(frozen=True)
class Bucket:
    label: str
    upper_s: float | None
    count: int


def _bucket_case(seconds: ColumnElement[float]) -> ColumnElement[int]:
    whens = [
        (seconds < upper, index)
        for index, (upper, _) in enumerate(REPLY_BUCKETS)
        if upper is not None
    ]
    return case(*whens, else_=len(REPLY_BUCKETS) - 1)


def reply_time_buckets(session: Session, since: datetime, scope: Scope) -> list[Bucket]:
    """How long huddles opened since `since` waited for their first expert reply."""
    seconds = _seconds(session, Huddle.created_at, Huddle.first_reply_at)
    bucket = _bucket_case(seconds)
    counts = _counts(
        session,
        select(bucket, func.count(Huddle.id))
        .where(
            Huddle.first_reply_at.is_not(None),
            Huddle.created_at >= since,
            scope.where(Huddle.team_id),
        )
        .group_by(bucket),
    )
    return [
        Bucket(label, upper, int(counts.get(index, 0)))
        for index, (upper, label) in enumerate(REPLY_BUCKETS)
    ]


@dataclass(frozen=True)
class WeekReply:
    week: date
    replied: int  # huddles opened that week that got an expert reply
    median_s: float | None


def reply_time_trend(session: Session, now: datetime, weeks: int, scope: Scope) -> list[WeekReply]:
    """The median time to a first expert reply, week by week (by the week a huddle opened)."""
    axis = recent_weeks(now, weeks)
    week = _week(session, Huddle.created_at)
    seconds = _seconds(session, Huddle.created_at, Huddle.first_reply_at)
    found: dict[str, list[float]] = defaultdict(list)
    for label, value in session.execute(
        select(week, seconds).where(
            Huddle.first_reply_at.is_not(None),
            Huddle.created_at >= datetime.combine(axis[0], datetime.min.time(), now.tzinfo),
            scope.where(Huddle.team_id),
        )
    ):
        found[label].append(max(float(value), 0.0))
    trend = []
    for monday in axis:
        values = found.get(monday.isoformat(), [])
        trend.append(WeekReply(monday, len(values), statistics.median(values) if values else None))
    return trend


@dataclass(frozen=True)
class WeekTeam:
    week: date
    team: str
    opened: int
    resolved: int
    escalated: int  # climbed at least one ladder step

    @property
    def resolution_rate(self) -> float | None:
        return self.resolved / self.opened if self.opened else None


def weekly_outcomes(session: Session, now: datetime, weeks: int, scope: Scope) -> list[WeekTeam]:
    """Per week opened and per team: huddles, resolved ones, escalated ones (zeros included)."""
    axis = recent_weeks(now, weeks)
    week = _week(session, Huddle.created_at)
    rows = session.execute(
        select(
            week,
            Huddle.team_id,
            func.count(Huddle.id),
            func.sum(case((Huddle.state == HuddleState.RESOLVED, 1), else_=0)),
            func.sum(case((Huddle.ladder_step > 0, 1), else_=0)),
        )
        .where(
            Huddle.created_at >= datetime.combine(axis[0], datetime.min.time(), now.tzinfo),
            scope.where(Huddle.team_id),
            Huddle.team_id.is_not(None),
        )
        .group_by(week, Huddle.team_id)
    ).all()
    found = {
        (label, team_id): (int(n), int(r or 0), int(e or 0)) for label, team_id, n, r, e in rows
    }
    teams = teams_in(session, scope)
    return [
        WeekTeam(monday, team.name, *found.get((monday.isoformat(), team.id), (0, 0, 0)))
        for monday in axis
        for team in teams
    ]


# ----------------------------------------------------------------- team KPIs


@dataclass(frozen=True)
class TeamKpi:
    team: str
    huddles_opened: int
    huddles_resolved: int
    entries_created: int  # entries with an author in the team
    helpful_votes: int  # votes cast in the period on the team's entries


@dataclass(frozen=True)
class HelpfulEntry:
    id: int
    title: str
    votes: int  # in the period
    total: int  # ever


@dataclass(frozen=True)
class Helper:
    key: str
    name: str
    team: str | None
    huddles_helped: int  # huddles they replied in, first reply in the period
    entries_written: int  # entries they authored, created in the period
    helpful_votes: int  # votes cast in the period on their entries


@dataclass(frozen=True)
class Kpis:
    start: datetime
    end: datetime
    teams: list[TeamKpi]
    helpful: list[HelpfulEntry]
    helpers: list[Helper] = field(default_factory=list)


def team_kpis(session: Session, start: datetime, end: datetime, scope: Scope) -> Kpis:
    teams = teams_in(session, scope)
    in_period = and_(Huddle.created_at >= start, Huddle.created_at < end)
    opened = _counts(
        session,
        select(Huddle.team_id, func.count(Huddle.id)).where(in_period).group_by(Huddle.team_id),
    )
    resolved = _counts(
        session,
        select(Huddle.team_id, func.count(Huddle.id))
        .where(
            Huddle.state == HuddleState.RESOLVED,
            Huddle.closed_at >= start,
            Huddle.closed_at < end,
        )
        .group_by(Huddle.team_id),
    )
    authored = (
        select(KnowledgeAuthor.entry_id, Person.team_id)
        .join(Person, Person.id == KnowledgeAuthor.person_id)
        .distinct()
        .subquery()
    )
    created = _counts(
        session,
        select(authored.c.team_id, func.count(KnowledgeEntry.id))
        .join(KnowledgeEntry, KnowledgeEntry.id == authored.c.entry_id)
        .where(KnowledgeEntry.created_at >= start, KnowledgeEntry.created_at < end)
        .group_by(authored.c.team_id),
    )
    votes = _counts(
        session,
        select(authored.c.team_id, func.count())
        .select_from(HelpfulVote)
        .join(authored, authored.c.entry_id == HelpfulVote.entry_id)
        .where(HelpfulVote.created_at >= start, HelpfulVote.created_at < end)
        .group_by(authored.c.team_id),
    )
    return Kpis(
        start=start,
        end=end,
        teams=[
            TeamKpi(
                team.name,
                opened.get(team.id, 0),
                resolved.get(team.id, 0),
                created.get(team.id, 0),
                votes.get(team.id, 0),
            )
            for team in teams
        ],
        helpful=most_helpful(session, start, end, scope),
        helpers=top_helpers(session, start, end, scope),
    )


def most_helpful(
    session: Session, start: datetime, end: datetime, scope: Scope, limit: int = TOP
) -> list[HelpfulEntry]:
    """Entries with the most "this helped" votes in the period (from anyone, on any team's)."""
    votes = func.count(HelpfulVote.person_id)
    query = (
        select(KnowledgeEntry.id, KnowledgeEntry.title, votes, KnowledgeEntry.helpful_count)
        .join(HelpfulVote, HelpfulVote.entry_id == KnowledgeEntry.id)
        .where(HelpfulVote.created_at >= start, HelpfulVote.created_at < end)
        .group_by(KnowledgeEntry.id, KnowledgeEntry.title, KnowledgeEntry.helpful_count)
        .order_by(votes.desc(), KnowledgeEntry.id)
        .limit(limit)
    )
    if scope.team_ids is not None:
        team_authors = (
            select(KnowledgeAuthor.entry_id)
            .join(Person, Person.id == KnowledgeAuthor.person_id)
            .where(scope.where(Person.team_id))
        )
        query = query.where(KnowledgeEntry.id.in_(team_authors))
    return [HelpfulEntry(i, t, int(v), int(total)) for i, t, v, total in session.execute(query)]


def top_helpers(
    session: Session, start: datetime, end: datetime, scope: Scope, limit: int = TOP
) -> list[Helper]:
    """The recognition board: who helped most, by huddles answered, then answers written."""
    helped = (
        select(HuddleParticipant.person_id, func.count(distinct(HuddleParticipant.huddle_id)))
        .where(
            HuddleParticipant.first_reply_at >= start,
            HuddleParticipant.first_reply_at < end,
        )
        .group_by(HuddleParticipant.person_id)
    )
    written = (
        select(KnowledgeAuthor.person_id, func.count(KnowledgeEntry.id))
        .join(KnowledgeEntry, KnowledgeEntry.id == KnowledgeAuthor.entry_id)
        .where(KnowledgeEntry.created_at >= start, KnowledgeEntry.created_at < end)
        .group_by(KnowledgeAuthor.person_id)
    )
    voted = (
        select(KnowledgeAuthor.person_id, func.count())
        .select_from(HelpfulVote)
        .join(KnowledgeAuthor, KnowledgeAuthor.entry_id == HelpfulVote.entry_id)
        .where(HelpfulVote.created_at >= start, HelpfulVote.created_at < end)
        .group_by(KnowledgeAuthor.person_id)
    )
    numbers: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for index, query in enumerate((helped, written, voted)):
        for person_id, count in session.execute(query):
            numbers[person_id][index] = int(count)
    if not numbers:
        return []
    found = session.scalars(
        select(Person)
        .where(
            Person.id.in_(list(numbers)), Person.deleted_at.is_(None), scope.where(Person.team_id)
        )
        .options(selectinload(Person.team))
    )
    helpers = [
        Helper(
            person.key,
            person.display_name,
            person.team.name if person.team else None,
            *numbers[person.id],
        )
        for person in found
    ]
    helpers.sort(key=lambda h: (-h.huddles_helped, -h.entries_written, -h.helpful_votes, h.name))
    return helpers[:limit]


def report_rows(kpis: Kpis) -> list[tuple[str, str, str, int]]:
    """The KPIs as (section, subject, metric, value) rows: one table for CSV and charts."""
    rows: list[tuple[str, str, str, int]] = []
    for team in kpis.teams:
        rows += [
            ("team", team.team, "huddles_opened", team.huddles_opened),
            ("team", team.team, "huddles_resolved", team.huddles_resolved),
            ("team", team.team, "knowledge_created", team.entries_created),
            ("team", team.team, "helpful_votes", team.helpful_votes),
        ]
    for entry in kpis.helpful:
        rows.append(("entry", f"#{entry.id} {entry.title}", "helpful_votes", entry.votes))
    for helper in kpis.helpers:
        subject = f"{helper.name} ({helper.team or 'no team'})"
        rows += [
            ("helper", subject, "huddles_helped", helper.huddles_helped),
            ("helper", subject, "knowledge_written", helper.entries_written),
            ("helper", subject, "helpful_votes", helper.helpful_votes),
        ]
    return rows


def report_text(kpis: Kpis) -> str:
    """The KPIs as a short plain-text summary (the terminal, and a weekly chat post)."""
    span = f"{kpis.start:%d %b %Y %H:%M} – {kpis.end:%d %b %Y %H:%M} UTC"
    lines = [f"Team KPIs, {span}", ""]
    width = max([len(team.team) for team in kpis.teams] + [4])
    lines.append(
        f"{'Team':<{width}}  {'opened':>6}  {'resolved':>8}  {'answers':>7}  {'helpful':>7}"
    )
    for team in kpis.teams:
        lines.append(
            f"{team.team:<{width}}  {team.huddles_opened:>6}  {team.huddles_resolved:>8}  "
            f"{team.entries_created:>7}  {team.helpful_votes:>7}"
        )
    lines += ["", "Most helpful answers:"]
    lines += [f"  #{e.id} {e.title[:70]} — {e.votes} found it helpful" for e in kpis.helpful] or [
        "  none marked helpful in this period"
    ]
    lines += ["", "Recognition board:"]
    lines += [
        f"  {rank}. {h.name} ({h.team or 'no team'}): {h.huddles_helped} huddles helped, "
        f"{h.entries_written} answers written, {h.helpful_votes} helpful votes"
        for rank, h in enumerate(kpis.helpers, start=1)
    ] or ["  nobody helped in a huddle or wrote an answer in this period"]
    return "\n".join(lines)


# -------------------------------------------------------------------- people


@dataclass(frozen=True)
class PersonSummary:
    key: str
    name: str
    team: str | None
    role: str
    status: str
    skills: int
    verified: int
    load: int  # open huddles they are invited to and have not declined
    helped: int  # huddles they replied in since `since`


def people_rows(
    session: Session, now: datetime, since: datetime, scope: Scope
) -> list[PersonSummary]:
    skills = (
        select(
            Skill.person_id,
            func.count(Skill.id).label("n"),
            func.count(Skill.verified_at).label("verified"),
        )
        .group_by(Skill.person_id)
        .subquery()
    )
    load = (
        select(HuddleParticipant.person_id, func.count().label("n"))
        .join(Huddle, Huddle.id == HuddleParticipant.huddle_id)
        .where(
            Huddle.state == HuddleState.OPEN,
            HuddleParticipant.invited.is_(True),
            HuddleParticipant.declined_at.is_(None),
        )
        .group_by(HuddleParticipant.person_id)
        .subquery()
    )
    helped = (
        select(HuddleParticipant.person_id, func.count().label("n"))
        .where(HuddleParticipant.first_reply_at >= since)
        .group_by(HuddleParticipant.person_id)
        .subquery()
    )
    query = (
        select(
            Person,
            func.coalesce(skills.c.n, 0),
            func.coalesce(skills.c.verified, 0),
            func.coalesce(load.c.n, 0),
            func.coalesce(helped.c.n, 0),
        )
        .outerjoin(skills, skills.c.person_id == Person.id)
        .outerjoin(load, load.c.person_id == Person.id)
        .outerjoin(helped, helped.c.person_id == Person.id)
        .where(Person.deleted_at.is_(None), scope.where(Person.team_id))
        .options(selectinload(Person.team), selectinload(Person.presence))
        .order_by(Person.display_name, Person.key)
    )
    return [
        PersonSummary(
            person.key,
            person.display_name,
            person.team.name if person.team else None,
            person.role.value,
            presence.current(person, now).label,
            int(n),
            int(verified),
            int(busy),
            int(recent),
        )
        for person, n, verified, busy, recent in session.execute(query)
    ]


@dataclass(frozen=True)
class SkillView:
    tag: str
    level: int
    source: str
    verified_at: datetime | None
    verified_by: str | None
    evidence: int  # knowledge entries they wrote carrying this tag


def skill_views(session: Session, person: Person) -> list[SkillView]:
    evidence = _counts(
        session,
        select(KnowledgeTag.tag_id, func.count(KnowledgeTag.entry_id))
        .join(KnowledgeAuthor, KnowledgeAuthor.entry_id == KnowledgeTag.entry_id)
        .where(KnowledgeAuthor.person_id == person.id)
        .group_by(KnowledgeTag.tag_id),
    )
    skills = session.scalars(
        select(Skill)
        .where(Skill.person_id == person.id)
        .options(selectinload(Skill.tag), selectinload(Skill.verified_by))
    ).all()
    views = [
        SkillView(
            skill.tag.name,
            skill.level,
            skill.source.value,
            skill.verified_at,
            skill.verified_by.display_name if skill.verified_by else None,
            int(evidence.get(skill.tag_id, 0)),
        )
        for skill in skills
    ]
    views.sort(key=lambda view: (-view.level, view.tag))
    return views


def recent_help(session: Session, person: Person, since: datetime) -> list[HuddleRow]:
    """Huddles the person replied in since `since`, newest first."""
    ids = select(HuddleParticipant.huddle_id).where(
        HuddleParticipant.person_id == person.id, HuddleParticipant.first_reply_at >= since
    )
    return huddle_rows(session, Huddle.id.in_(ids), TOP)


def current_load(session: Session, person: Person) -> list[HuddleRow]:
    """Open huddles the person is invited to and has not declined."""
    ids = select(HuddleParticipant.huddle_id).where(
        HuddleParticipant.person_id == person.id,
        HuddleParticipant.invited.is_(True),
        HuddleParticipant.declined_at.is_(None),
    )
    return huddle_rows(session, and_(Huddle.id.in_(ids), Huddle.state == HuddleState.OPEN), TOP)


def audit_about(session: Session, target: str, limit: int = 20) -> list[AuditEntry]:
    return list(
        session.scalars(
            select(AuditEntry)
            .where(AuditEntry.target == target)
            .order_by(AuditEntry.id.desc())
            .limit(limit)
        )
    )


# ----------------------------------------------------------------- knowledge


def stale_entries(session: Session, now: datetime, limit: int = 50) -> list[KnowledgeEntry]:
    """Entries nobody has touched for STALE_DAYS, oldest first: worth a review."""
    return list(
        session.scalars(
            select(KnowledgeEntry)
            .where(KnowledgeEntry.updated_at < now - timedelta(days=STALE_DAYS))
            .options(selectinload(KnowledgeEntry.authors), selectinload(KnowledgeEntry.tags))
            .order_by(KnowledgeEntry.updated_at, KnowledgeEntry.id)
            .limit(limit)
        )
    )
