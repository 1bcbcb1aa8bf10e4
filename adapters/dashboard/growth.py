"""Growth on the dashboard: learning goals and their progress, each person's growth
timeline (and its CSV), mentor pairs (a lead pairs them here too), and the weekly
team digest as it was posted.

Goals and timelines are shown to the person and to whoever manages them (their lead,
an admin); pairing goes through bot/services/mentors.py, so its permission check and
audit row are the chat's.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.orm import Session

from adapters.dashboard import DASHBOARD, ChangeError
from adapters.dashboard.auth import PREFIX, Reason, Refusal, require_lead, viewer_of
from adapters.dashboard.changes import _apply, _form, _local, _person
from adapters.dashboard.render import SECURITY_HEADERS, page
from bot import messages
from bot.db.models import Person, Tag, Team
from bot.services import digest, expertise, learning_goals, mentors, people, permissions
from bot.services.analytics import Scope, teams_in
from bot.services.mentors import MentorError

NOT_YOURS = Reason(
    "Not your team", "A growth timeline is for the person and the leads of their team."
)
CSV_HEADER = ("person", "name", "team", "date", "event", "topic", "detail")
Row = tuple[str, str, str, str, str, str, str]


def _viewer_person(session: Session, request: web.Request) -> Person:
    me = session.get(Person, viewer_of(request).id)
    assert me is not None  # the guard has just read them
    return me


def person_context(session: Session, viewer: Person, person: Person) -> dict[str, Any]:
    """What the person page shows of their growth: for them and those who manage them."""
    if not (viewer.id == person.id or people.can_manage(viewer, person)):
        return {"goals": None, "timeline": None, "pairs": [], "can_pair": False}
    return {
        "goals": learning_goals.progress(session, person),
        "timeline": learning_goals.timeline(session, person, limit=50),
        "pairs": mentors.pairs(session, Scope.everything(), learner=person),
        "can_pair": permissions.may_pair_mentor(viewer, person),
    }


# ------------------------------------------------------------------ growth page


async def growth_page(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    require_lead(viewer)
    dashboard = request.app[DASHBOARD]

    def gather(session: Session) -> dict[str, Any]:
        me = _viewer_person(session, request)
        scope = Scope.for_person(me)
        learners = []
        for person in session.scalars(
            select(Person)
            .where(Person.deleted_at.is_(None), scope.where(Person.team_id))
            .order_by(Person.display_name, Person.key)
        ):
            goals = learning_goals.progress(session, person)
            if goals:
                learners.append({"key": person.key, "name": person.display_name, "goals": goals})
        return {
            "learners": learners,
            "pairs": mentors.pairs(session, scope),
            "people": [
                (key, name)
                for key, name in session.execute(
                    select(Person.key, Person.display_name)
                    .where(Person.deleted_at.is_(None), scope.where(Person.team_id))
                    .order_by(Person.display_name)
                )
            ],
            "everyone": [
                (key, name)
                for key, name in session.execute(
                    select(Person.key, Person.display_name)
                    .where(Person.deleted_at.is_(None))
                    .order_by(Person.display_name)
                )
            ],
            "tags": list(session.scalars(select(Tag.name).order_by(Tag.name))),
        }

    found = await dashboard.read(gather)
    return page(request, "growth.html", title="Growth", **found)


def _csv(rows: list[Row], filename: str) -> web.Response:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_HEADER)
    writer.writerows(rows)
    headers = {
        **SECURITY_HEADERS,
        "Content-Disposition": f'attachment; filename="{filename}"',
    }
    return web.Response(
        text=out.getvalue(), content_type="text/csv", charset="utf-8", headers=headers
    )


def growth_rows(session: Session, persons: list[Person]) -> list[Row]:
    """Everyone's timeline as CSV rows, each person's newest first (CSV_HEADER)."""
    return [
        (
            person.key,
            person.display_name,
            person.team.name if person.team else "",
            event.when.isoformat("T", "seconds"),
            event.event,
            event.topic,
            event.detail,
        )
        for person in persons
        for event in learning_goals.timeline(session, person)
    ]


async def growth_csv(request: web.Request) -> web.Response:
    """The timelines of everyone the lead sees, for a spreadsheet."""
    viewer = viewer_of(request)
    require_lead(viewer)
    dashboard = request.app[DASHBOARD]

    def gather(session: Session) -> list[Row]:
        scope = Scope.for_person(_viewer_person(session, request))
        persons = list(
            session.scalars(
                select(Person)
                .where(Person.deleted_at.is_(None), scope.where(Person.team_id))
                .order_by(Person.key)
            )
        )
        return growth_rows(session, persons)

    rows = await dashboard.read(gather)
    return _csv(rows, "growth.csv")


async def person_growth_csv(request: web.Request) -> web.Response:
    """One person's timeline: theirs, or of someone the viewer manages."""
    dashboard = request.app[DASHBOARD]
    key = request.match_info["key"]

    def gather(session: Session) -> list[Row]:
        me = _viewer_person(session, request)
        person = people.by_key(session, key)
        if person is None:
            raise web.HTTPNotFound()
        if not (me.id == person.id or people.can_manage(me, person)):
            raise Refusal(NOT_YOURS)
        return growth_rows(session, [person])

    rows = await dashboard.read(gather)
    return _csv(rows, f"growth-{key}.csv")


# ---------------------------------------------------------------- mentor pairs


def _tag(session: Session, name: str) -> Tag:
    return expertise.require_tag(session, expertise.valid_tag_name(name))


async def pair(request: web.Request) -> web.Response:
    form = await _form(request)
    back = _local(form.get("back", ""), f"{PREFIX}/growth")
    now = request.app[DASHBOARD].services.clock()

    def work(session: Session, actor: Person) -> str:
        learner = _person(session, form.get("learner", "").strip().lstrip("@"))
        mentor = _person(session, form.get("mentor", "").strip().lstrip("@"))
        tag = _tag(session, form.get("tag", ""))
        try:
            _, new = mentors.pair(session, actor, learner, mentor, tag, now, platform="dashboard")
        except MentorError as error:
            raise ChangeError(str(error)) from None
        said = messages.MENTOR_PAIRED if new else messages.MENTOR_ALREADY
        return said.format(learner=learner.display_name, mentor=mentor.display_name, tag=tag.name)

    return await _apply(request, work, back)


async def unpair(request: web.Request) -> web.Response:
    form = await _form(request)
    back = _local(form.get("back", ""), f"{PREFIX}/growth")
    now = request.app[DASHBOARD].services.clock()

    def work(session: Session, actor: Person) -> str:
        learner = _person(session, form.get("learner", "").strip().lstrip("@"))
        tag = _tag(session, form.get("tag", ""))
        try:
            mentors.unpair(session, actor, learner, tag, now)
        except MentorError as error:
            raise ChangeError(str(error)) from None
        return messages.MENTOR_UNPAIRED.format(learner=learner.display_name, tag=tag.name)

    return await _apply(request, work, back)


# -------------------------------------------------------------- the team digest


def digest_view(session: Session, team: Team, now: datetime) -> dict[str, Any]:
    schedule = digest.schedule_of(session, team)
    start, end = digest.latest_window(schedule, now)
    found = digest.compute(
        session, team, start, end, zone=schedule.zone, leaderboard=schedule.leaderboard
    )
    waiting = digest.pending(session, team)
    return {
        "team": team.name,
        "schedule": schedule,
        "channel": digest.channel_of(team),
        "digest": found,
        "lines": digest.lines(found),
        "next": waiting.due_at if waiting is not None else None,
        "sent": [(job.due_at, job.fired_at) for job in digest.sent(session, team)],
    }


async def digest_page(request: web.Request) -> web.Response:
    viewer = viewer_of(request)
    require_lead(viewer)
    dashboard = request.app[DASHBOARD]
    now = dashboard.services.clock()

    def gather(session: Session) -> list[dict[str, Any]]:
        scope = Scope.for_person(_viewer_person(session, request))
        return [digest_view(session, team, now) for team in teams_in(session, scope)]

    teams = await dashboard.read(gather)
    return page(request, "digest.html", title="Team digest", teams=teams)


def routes(app: web.Application) -> None:
    app.router.add_get("/growth", growth_page)
    app.router.add_get("/growth.csv", growth_csv)
    app.router.add_get("/people/{key}/growth.csv", person_growth_csv)
    app.router.add_post("/mentors/pair", pair)
    app.router.add_post("/mentors/unpair", unpair)
    app.router.add_get("/digest", digest_page)
