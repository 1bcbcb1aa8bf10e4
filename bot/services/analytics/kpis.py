"""Team KPIs over a period: time to first expert, resolution rate, top helpers, and
the report built from them.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, distinct, func, select
from sqlalchemy.orm import Session, selectinload

from bot.db.models import (
    HelpfulVote,
    Huddle,
    HuddleParticipant,
    HuddleState,
    KnowledgeAuthor,
    KnowledgeEntry,
    Person,
)
from bot.services.analytics.scope import Scope, count_by, teams_in

TOP = 10


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
    opened = count_by(
        session,
        select(Huddle.team_id, func.count(Huddle.id)).where(in_period).group_by(Huddle.team_id),
    )
    resolved = count_by(
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
    created = count_by(
        session,
        select(authored.c.team_id, func.count(KnowledgeEntry.id))
        .join(KnowledgeEntry, KnowledgeEntry.id == authored.c.entry_id)
        .where(KnowledgeEntry.created_at >= start, KnowledgeEntry.created_at < end)
        .group_by(authored.c.team_id),
    )
    votes = count_by(
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
