"""The home tab: my skills, my open huddles, what I helped with; for leads, the team's coverage."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from bot import messages
from bot.db.models import KnowledgeAuthor, KnowledgeEntry, Person, QueryLog, Role, Skill, Tag
from bot.router import Context, Router
from bot.services import earned, huddles
from bot.types import Element, Notice, Reply, Text
from skills import growth

GAP_DAYS = 14
SHOWN = 5


def home(ctx: Context) -> Reply:
    me = ctx.actor()
    elements: list[Element] = [Text(messages.HOME_SKILLS)]
    skills = sorted(me.skills, key=lambda s: (-s.level, s.tag.name))
    if skills:
        elements.extend(
            Text(
                messages.HOME_SKILL.format(
                    tag=s.tag.name,
                    level=s.level,
                    vouched=messages.REASON_VERIFIED
                    if s.verified_at
                    else messages.REASON_SELF_DECLARED,
                )
            )
            for s in skills
        )
    else:
        elements.append(Text(messages.HOME_NO_SKILLS))
    elements.extend(growth.goal_elements(ctx, me, own=True))
    elements.append(Text(messages.HOME_HUDDLES))
    mine = huddles.open_huddles(ctx.session, me, team=False)
    elements.extend(Text(f"#{h.id} “{h.topic[:80]}”") for h in mine[:SHOWN])
    if not mine:
        elements.append(Text(messages.HUDDLE_LIST_NONE))
    helped = ctx.session.scalars(
        select(KnowledgeEntry)
        .join(KnowledgeAuthor, KnowledgeAuthor.entry_id == KnowledgeEntry.id)
        .where(KnowledgeAuthor.person_id == me.id)
        .order_by(KnowledgeEntry.updated_at.desc())
        .limit(SHOWN)
    ).all()
    if helped:
        elements.append(Text(messages.HOME_HELPED))
        elements.extend(
            Text(f"#{e.id} {e.title[:80]} ({e.helpful_count} found it helpful)") for e in helped
        )
    if me.role in {Role.LEAD, Role.ADMIN} and me.team_id is not None:
        elements.extend(_coverage(ctx, me))
        elements.extend(_growth(ctx, me))
    return Reply(tuple(elements))


def _growth(ctx: Context, lead: Person) -> list[Element]:
    """The team's suggested skills and verified skills gone quiet, each decided in a click."""
    now, team = ctx.services.clock(), lead.team_id
    found = earned.suggestions(ctx.session, lead, now, team_id=team)
    after = timedelta(days=ctx.services.settings.reverify_after_days)
    stale = earned.stale_verified(ctx.session, lead, now, after, team_id=team)
    elements: list[Element] = []
    if found:
        elements.append(Text(messages.SUGGESTIONS_HOME))
        elements.extend(earned.suggestion_elements(found, SHOWN))
    if stale:
        elements.append(Text(messages.REVERIFY_HEADER))
        elements.extend(earned.reverify_elements(stale, SHOWN))
    return elements


def _coverage(ctx: Context, lead: Person) -> list[Element]:
    rows = ctx.session.execute(
        select(Tag.name, func.count(Skill.id))
        .join(Skill, Skill.tag_id == Tag.id)
        .join(Person, Person.id == Skill.person_id)
        .where(Person.team_id == lead.team_id, Person.deleted_at.is_(None))
        .group_by(Tag.name)
        .order_by(func.count(Skill.id), Tag.name)
    ).all()
    team = lead.team.name if lead.team else ""
    elements: list[Element] = [Text(messages.HOME_COVERAGE.format(team=team, tags=len(rows)))]
    single = [name for name, count in rows if count == 1]
    if single:
        elements.append(
            Notice(messages.HOME_SINGLE_EXPERT.format(tags=", ".join(single[:10])), "warning")
        )
    since = ctx.services.clock() - timedelta(days=GAP_DAYS)
    gaps = ctx.session.execute(
        select(QueryLog.text, func.count())
        .where(QueryLog.confident.is_(False), QueryLog.created_at > since)
        .group_by(QueryLog.text)
        .order_by(func.count().desc(), QueryLog.text)
        .limit(SHOWN)
    ).all()
    if gaps:
        elements.append(Text(messages.HOME_GAPS.format(days=GAP_DAYS)))
        elements.extend(Text(f"“{text[:80]}” × {count}") for text, count in gaps)
    return elements


def register(router: Router) -> None:
    router.action("home.open")(home)
