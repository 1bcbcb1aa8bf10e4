"""The pages: sign-in, coverage, gaps, huddles, team KPIs, people, topics, knowledge, audit."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from adapters.dashboard import DASHBOARD, auth, charts, growth
from adapters.dashboard.auth import PREFIX, Refusal, require_admin, require_lead, viewer_of
from adapters.dashboard.render import page
from bot.db.models import (
    AuditEntry,
    Identity,
    KnowledgeEntry,
    Person,
    Skill,
    Tag,
    Team,
)
from bot.services import (
    accounts,
    analytics,
    earned,
    knowledge,
    learning,
    people,
    permissions,
    presence,
)
from bot.services.analytics import Scope

GAP_WINDOWS = (7, 30, 90)
PAGE_SIZE = 25
AUDIT_PAGE_SIZE = 50
HELP_DAYS = 30
NOT_YOUR_TEAM = auth.Reason(
    "Not your team", "Leads see the people of their own team; agents see their own profile."
)


def _choice(request: web.Request, name: str, allowed: tuple[Any, ...], default: Any) -> Any:
    raw = request.query.get(name, "")
    for value in allowed:
        if raw == str(value):
            return value
    return default


def _page_number(request: web.Request) -> int:
    raw = request.query.get("page", "1")
    return min(int(raw), 10_000) if raw.isdigit() and int(raw) > 0 else 1


def _scope(session: Session, viewer: auth.Viewer) -> Scope:
    person = session.get(Person, viewer.id)
    assert person is not None  # the guard has just read them
    return Scope.for_person(person)


# ------------------------------------------------------------------ sign-in


async def login_form(request: web.Request) -> web.Response:
    """Shows who the link is for; only pressing Sign in spends it (link previews do not)."""
    dashboard = request.app[DASHBOARD]
    token = request.query.get("token", "")

    person_id = await asyncio.to_thread(
        auth.check_link, dashboard.services, dashboard.settings, token
    )

    def name_of(session: Session) -> str:
        person = session.get(Person, person_id)
        if person is None or person.deleted_at is not None:
            raise Refusal(auth.LINK_INVALID)
        return person.display_name

    name = await dashboard.read(name_of)
    return page(request, "login.html", title="Sign in", name=name, token=token)


async def login(request: web.Request) -> web.Response:
    """Spend a link and start a session; a sign-in sent from another site is refused
    (someone's own link, posted by their page, would sign the visitor in as them)."""
    dashboard = request.app[DASHBOARD]
    services, settings = dashboard.services, dashboard.settings
    form = await request.post()
    token = form.get("token")
    sent = auth.cross_site(request, settings)
    if sent is not None:
        whose = (
            auth.link_person(settings, token, services.clock()) if isinstance(token, str) else None
        )
        await asyncio.to_thread(auth.audit_cross_site_login, services, whose, sent)
        raise Refusal(auth.CROSS_SITE_LOGIN)
    if not isinstance(token, str):
        raise Refusal(auth.LINK_INVALID)
    person_id = await asyncio.to_thread(auth.use_link, services, settings, token)
    generation = await asyncio.to_thread(auth.start_generation, services, person_id)
    response = web.Response(status=303, headers={"Location": f"{PREFIX}/"})
    cookie = auth.session_cookie(settings, person_id, generation, services.clock())
    auth.start_session(response, settings, cookie)
    return response


async def logout(request: web.Request) -> web.Response:
    """Signing out ends the session on the server too: the cookie, wherever a copy of
    it is, no longer works (nor do the person's sessions in other browsers)."""
    dashboard = request.app[DASHBOARD]
    viewer = viewer_of(request)
    await asyncio.to_thread(auth.end_sessions, dashboard.services, viewer.id)
    request.pop(auth.VIEWER, None)
    response = page(
        request, "message.html", title="Signed out", text="Ask the bot for a new link to return."
    )
    auth.end_session(response)
    return response


async def home(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    target = f"{PREFIX}/coverage" if viewer.is_lead else f"{PREFIX}/people/{viewer.key}"
    raise web.HTTPSeeOther(target)


# ----------------------------------------------------------------- the numbers


async def coverage_page(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    require_lead(viewer)
    dashboard = request.app[DASHBOARD]
    now = dashboard.services.clock()
    after = timedelta(days=dashboard.services.settings.reverify_after_days)

    def gather(session: Session) -> dict[str, Any]:
        me = session.get(Person, viewer.id)
        assert me is not None  # the guard has just read them
        return {
            "coverage": analytics.coverage(session, now, _scope(session, viewer)),
            **growth_views(session, me, now, after),
        }

    found = await dashboard.read(gather)
    return page(
        request,
        "coverage.html",
        title="Coverage",
        heatmap=charts.heatmap(found["coverage"]),
        asked_days=analytics.ASKED_DAYS,
        dismiss_days=earned.DISMISS_DAYS,
        **found,
    )


def growth_views(
    session: Session, me: Person, now: datetime, after: timedelta, person: Person | None = None
) -> dict[str, list[dict[str, Any]]]:
    """The suggested skills and verified skills gone quiet that `me` may decide (of one
    person, or of everyone in their scope), as the pages show them."""
    suggestions = [
        {
            "key": s.key,
            "name": s.name,
            "team": s.team,
            "tag": s.tag,
            "level": s.level,
            "held": earned.held_text(s),
            "counts": earned.counts_text(s.evidence),
            "proofs": [earned.proof_text(p) for p in s.evidence.proofs[: earned.SHOWN_PROOFS]],
        }
        for s in earned.suggestions(session, me, now, person=person)
    ]
    stale = [
        dataclasses.asdict(s) for s in earned.stale_verified(session, me, now, after, person=person)
    ]
    return {"suggestions": suggestions, "stale": stale}


@dataclass(frozen=True)
class PersonChoice:
    key: str
    name: str


def _people_in(session: Session, scope: Scope) -> list[PersonChoice]:
    return [
        PersonChoice(key, name)
        for key, name in session.execute(
            select(Person.key, Person.display_name)
            .where(Person.deleted_at.is_(None), scope.where(Person.team_id))
            .order_by(Person.display_name)
        )
    ]


def _tag_names(session: Session) -> list[str]:
    return list(session.scalars(select(Tag.name).order_by(Tag.name)))


async def gaps_page(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    require_lead(viewer)
    dashboard = request.app[DASHBOARD]
    days = _choice(request, "days", GAP_WINDOWS, 30)
    since = dashboard.services.clock() - timedelta(days=days)

    def gather(session: Session) -> dict[str, Any]:
        scope = _scope(session, viewer)
        return {
            "groups": analytics.gap_groups(session, since, scope),
            "people": _people_in(session, scope),
            "tags": _tag_names(session),
        }

    found = await dashboard.read(gather)
    return page(request, "gaps.html", title="Knowledge gaps", days=days, **found)


async def huddles_page(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    require_lead(viewer)
    dashboard = request.app[DASHBOARD]
    weeks = _choice(request, "weeks", (4, 8, 12, 26), 8)
    now = dashboard.services.clock()

    def gather(session: Session) -> dict[str, Any]:
        scope = _scope(session, viewer)
        since = datetime.combine(
            analytics.recent_weeks(now, weeks)[0], datetime.min.time(), now.tzinfo
        )
        return {
            "buckets": analytics.reply_time_buckets(session, since, scope),
            "trend": analytics.reply_time_trend(session, now, weeks, scope),
            "outcomes": analytics.weekly_outcomes(session, now, weeks, scope),
            "open": analytics.open_huddles(session, scope),
            "closed": analytics.closed_huddles(session, now - timedelta(days=7), scope),
        }

    found = await dashboard.read(gather)
    outcomes: list[analytics.WeekTeam] = found["outcomes"]
    weeks_shown = [f"{w.week:%d %b}" for w in found["trend"]]
    teams = list(dict.fromkeys(o.team for o in outcomes))
    rates = {
        (f"{o.week:%d %b}", o.team): None if o.resolution_rate is None else 100 * o.resolution_rate
        for o in outcomes
    }
    escalations = {(f"{o.week:%d %b}", o.team): float(o.escalated) for o in outcomes}
    return page(
        request,
        "huddles.html",
        title="Huddles",
        weeks=weeks,
        open=found["open"],
        closed=found["closed"],
        buckets_chart=charts.bar_chart(
            "reply-times",
            "Huddles by time to the first expert reply",
            [(b.label, b.count) for b in found["buckets"]],
        ),
        trend_chart=charts.line_chart(
            "reply-trend",
            "Median minutes to the first expert reply, per week",
            [
                (label, None if w.median_s is None else round(w.median_s / 60, 1))
                for label, w in zip(weeks_shown, found["trend"], strict=True)
            ],
            " min",
        ),
        resolution_chart=charts.grouped_bars(
            "resolution",
            "Resolution rate per week and team",
            weeks_shown,
            teams,
            rates,
            "%",
            most=100,
        ),
        escalation_chart=charts.grouped_bars(
            "escalations", "Escalated huddles per week and team", weeks_shown, teams, escalations
        ),
    )


async def kpis_page(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    require_lead(viewer)
    dashboard = request.app[DASHBOARD]
    period = _choice(request, "period", tuple(analytics.PERIODS), "week")
    start, end = analytics.period_bounds(period, dashboard.services.clock())
    kpis = await dashboard.read(
        lambda session: analytics.team_kpis(session, start, end, _scope(session, viewer))
    )
    return page(
        request,
        "kpis.html",
        title="Team KPIs",
        period=period,
        kpis=kpis,
        resolved_chart=charts.bar_chart(
            "resolved",
            "Huddles resolved per team",
            [(t.team, t.huddles_resolved) for t in kpis.teams],
        ),
        created_chart=charts.bar_chart(
            "created",
            "Knowledge entries written per team",
            [(t.team, t.entries_created) for t in kpis.teams],
        ),
    )


# -------------------------------------------------------------------- people


@dataclass(frozen=True)
class Unreachable:
    """An expert with no Slack or Teams account: nobody can ask them in chat."""

    key: str
    name: str
    team: str | None
    skills: int


def unreachable_experts(session: Session, scope: Scope) -> list[Unreachable]:
    reachable = select(Identity.person_id).where(Identity.platform.in_(accounts.CHAT_PLATFORMS))
    return [
        Unreachable(key, name, team, int(skills))
        for key, name, team, skills in session.execute(
            select(Person.key, Person.display_name, Team.name, func.count(Skill.id))
            .join(Skill, Skill.person_id == Person.id)
            .outerjoin(Team, Team.id == Person.team_id)
            .where(
                Person.deleted_at.is_(None),
                scope.where(Person.team_id),
                Person.id.not_in(reachable),
            )
            .group_by(Person.id, Person.key, Person.display_name, Team.name)
            .order_by(Person.display_name, Person.key)
        )
    ]


@dataclass(frozen=True)
class ConflictView:
    id: int
    text: str
    seen_in: str
    created_at: datetime
    holder: PersonChoice | None
    claimant: PersonChoice | None


def conflict_views(session: Session) -> list[ConflictView]:
    def choice(person: Person | None) -> PersonChoice | None:
        if person is None or person.deleted_at is not None:
            return None
        return PersonChoice(person.key, person.display_name)

    return [
        ConflictView(
            row.id,
            accounts.describe(row),
            row.seen_in,
            row.created_at,
            choice(row.holder),
            choice(row.claimant),
        )
        for row in accounts.open_conflicts(session)
    ]


async def people_page(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    require_lead(viewer)
    dashboard = request.app[DASHBOARD]
    now = dashboard.services.clock()

    def gather(session: Session) -> dict[str, Any]:
        scope = _scope(session, viewer)
        return {
            "people": analytics.people_rows(session, now, now - timedelta(days=HELP_DAYS), scope),
            "unreachable": unreachable_experts(session, scope),
            # Links refused on doubt concern anyone, so only admins decide them.
            "conflicts": conflict_views(session) if viewer.is_admin else None,
        }

    found = await dashboard.read(gather)
    return page(request, "people.html", title="People", **found)


def accounts_of(person: Person) -> dict[str, list[str]]:
    """Each chat platform's account ids of the person, as the platform spells them."""
    found: dict[str, list[str]] = {platform: [] for platform in accounts.CHAT_PLATFORMS}
    for identity in person.identities:
        if identity.platform in found:
            found[identity.platform].append(identity.external_id)
    return {platform: sorted(ids) for platform, ids in found.items()}


async def person_page(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    dashboard = request.app[DASHBOARD]
    now = dashboard.services.clock()
    key = request.match_info["key"]

    def gather(session: Session) -> dict[str, Any]:
        me = session.get(Person, viewer.id)
        person = people.by_key(session, key)
        if person is None or me is None:
            raise web.HTTPNotFound()
        own, manage = me.id == person.id, people.can_manage(me, person)
        verify = permissions.may_verify(me, person)
        if not (own or manage):
            raise Refusal(NOT_YOUR_TEAM)
        after = timedelta(days=dashboard.services.settings.reverify_after_days)
        return {
            **growth_views(session, me, now, after, person),
            "person": {
                "key": person.key,
                "name": person.display_name,
                "team": person.team.name if person.team else None,
                "role": person.role.value,
            },
            "now_label": presence.current(person, now).label,
            "hours": presence.format_hours(person),
            "own": own,
            "manage": manage,
            "skills": analytics.skill_views(session, person),
            "load": analytics.current_load(session, person),
            "helped": analytics.recent_help(session, person, now - timedelta(days=HELP_DAYS)),
            "history": analytics.audit_about(session, f"person:{person.key}"),
            "tags": _tag_names(session),
            "accounts": accounts_of(person),
            "email": person.email,
            "platforms": {p: accounts.platform_name(p) for p in accounts.CHAT_PLATFORMS},
            "can_verify": verify,
            "can_link": permissions.may_link(me),
            **growth.person_context(session, me, person),
        }

    found = await dashboard.read(gather)
    return page(request, "person.html", title=found["person"]["name"], **found)


# ----------------------------------------------------------------- knowledge


def entry_view(entry: KnowledgeEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "title": entry.title,
        "body": entry.body,
        "tags": [tag.name for tag in entry.tags],
        "authors": [author.display_name for author in entry.authors],
        "helpful": entry.helpful_count,
        "updated_at": entry.updated_at,
        "version": entry.version,
        "huddle_id": entry.huddle_id,
    }


async def knowledge_page(request: web.Request) -> web.Response:
    dashboard = request.app[DASHBOARD]
    q = request.query.get("q", "").strip()[:200]
    stale = request.query.get("stale") == "1"
    number = _page_number(request)
    now = dashboard.services.clock()

    def gather(session: Session) -> tuple[list[dict[str, Any]], bool]:
        if q:
            return [entry_view(hit.entry) for hit in knowledge.search(session, q, PAGE_SIZE)], False
        if stale:
            return [entry_view(e) for e in analytics.stale_entries(session, now)], False
        entries = session.scalars(
            select(KnowledgeEntry)
            .options(selectinload(KnowledgeEntry.tags), selectinload(KnowledgeEntry.authors))
            .order_by(KnowledgeEntry.updated_at.desc(), KnowledgeEntry.id.desc())
            .offset((number - 1) * PAGE_SIZE)
            .limit(PAGE_SIZE + 1)
        ).all()
        return [entry_view(e) for e in entries[:PAGE_SIZE]], len(entries) > PAGE_SIZE

    entries, more = await dashboard.read(gather)
    query = urlencode({"stale": "1"}) + "&" if stale else ""
    return page(
        request,
        "knowledge.html",
        title="Knowledge",
        q=q,
        stale=stale,
        stale_days=analytics.STALE_DAYS,
        entries=entries,
        page_number=number,
        more=more,
        query=query,
    )


async def entry_page(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    dashboard = request.app[DASHBOARD]
    entry_id = request.match_info["entry_id"]

    def gather(session: Session) -> dict[str, Any]:
        entry = knowledge.get(session, int(entry_id)) if entry_id.isdigit() else None
        me = session.get(Person, viewer.id)
        if entry is None or me is None:
            raise web.HTTPNotFound()
        return {
            "entry": entry_view(entry),
            "can_edit": permissions.may_edit_knowledge(me, entry),
            "can_delete": permissions.may_delete_knowledge(me, entry),
        }

    found = await dashboard.read(gather)
    return page(request, "entry.html", title=found["entry"]["title"], **found)


# --------------------------------------------------------------------- audit


@dataclass(frozen=True)
class TagView:
    name: str
    description: str
    examples: list[str]
    holders: int


async def tags_page(request: web.Request) -> web.Response:
    """Every topic with its description and example questions, which leads edit here."""
    viewer = viewer_of(request)
    require_lead(viewer)
    dashboard = request.app[DASHBOARD]

    def gather(session: Session) -> list[TagView]:
        holders = dict(
            session.execute(
                select(Skill.tag_id, func.count())
                .join(Person, Person.id == Skill.person_id)
                .where(Person.deleted_at.is_(None))
                .group_by(Skill.tag_id)
            ).all()
        )
        return [
            TagView(
                tag.name,
                tag.description or "",
                learning.tag_examples(session, tag),
                holders.get(tag.id, 0),
            )
            for tag in session.scalars(select(Tag).order_by(Tag.name))
        ]

    tags = await dashboard.read(gather)
    return page(
        request,
        "tags.html",
        title="Topics",
        tags=tags,
        max_description=learning.MAX_DESCRIPTION_CHARS,
    )


async def audit_page(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    require_admin(viewer)
    dashboard = request.app[DASHBOARD]
    action = request.query.get("action", "").strip()[:64]
    actor = request.query.get("actor", "").strip()[:120]
    number = _page_number(request)

    def gather(session: Session) -> dict[str, Any]:
        query = select(AuditEntry).order_by(AuditEntry.id.desc())
        if action:
            query = query.where(AuditEntry.action == action)
        if actor:
            query = query.where(func.lower(AuditEntry.actor_label) == actor.lower())
        rows = session.scalars(
            query.offset((number - 1) * AUDIT_PAGE_SIZE).limit(AUDIT_PAGE_SIZE + 1)
        ).all()
        actions = session.scalars(select(AuditEntry.action).distinct().order_by(AuditEntry.action))
        return {
            "rows": rows[:AUDIT_PAGE_SIZE],
            "more": len(rows) > AUDIT_PAGE_SIZE,
            "actions": list(actions),
        }

    found = await dashboard.read(gather)
    query = urlencode({k: v for k, v in {"action": action, "actor": actor}.items() if v})
    return page(
        request,
        "audit.html",
        title="Audit log",
        action=action,
        actor=actor,
        page_number=number,
        query=query + "&" if query else "",
        **found,
    )


def routes(app: web.Application) -> None:
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/", home)
    app.router.add_get("/coverage", coverage_page)
    app.router.add_get("/gaps", gaps_page)
    app.router.add_get("/huddles", huddles_page)
    app.router.add_get("/kpis", kpis_page)
    app.router.add_get("/people", people_page)
    app.router.add_get("/people/{key}", person_page)
    app.router.add_get("/knowledge", knowledge_page)
    app.router.add_get("/knowledge/{entry_id}", entry_page)
    app.router.add_get("/tags", tags_page)
    app.router.add_get("/audit", audit_page)
