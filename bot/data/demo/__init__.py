"""Seed the demo contact-center org, so a first run shows real answers."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.data.demo import data, growth
from bot.data.demo.history import seed_history
from bot.db.models import (
    Huddle,
    HuddleObserver,
    HuddleParticipant,
    HuddleState,
    LearningGoal,
    Mentorship,
    Person,
    QueryLog,
    Role,
    Skill,
    SkillSource,
    Status,
    TagAlias,
    Team,
)
from bot.services import accounts, digest, knowledge, people, presence
from bot.services.expertise import ensure_tag, find_tag


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def seed_demo(session: Session, now: datetime, *, history: bool = False) -> None:
    """The demo org as of `now`; with `history`, also the weeks before (bot/data/demo/
    history.py: resolved huddle threads, votes, skills gone quiet), which `make run` and
    the dashboard's screenshots show and the tests' org leaves out."""
    teams = {}
    for spec in data.TEAMS:
        teams[spec["name"]] = team = Team(
            name=spec["name"], huddle_channel=spec["huddle_channel"], channel=spec["channel"]
        )
        session.add(team)
    for spec in data.TAGS:
        parent = find_tag(session, spec["parent"]) if spec["parent"] else None
        tag = ensure_tag(session, spec["name"], parent)
        tag.aliases = [TagAlias(alias=alias) for alias in spec["aliases"]]
    session.flush()
    by_handle = {}
    for spec in data.PEOPLE:
        person = Person(
            key=spec["handle"],
            display_name=spec["name"],
            team=teams[spec["team"]],
            timezone=spec["timezone"],
            role=Role(spec["role"]),
            work_start_min=_minutes(spec["hours"][0]),
            work_end_min=_minutes(spec["hours"][1]),
            origin="demo",
        )
        accounts.set_email(person, spec["email"])
        session.add(person)
        by_handle[person.key] = person
        session.flush()
        people.link_identity(session, person, "console", person.key)
        lead = next(
            (p for p in data.PEOPLE if p["team"] == spec["team"] and p["role"] == "lead"), None
        )
        for tag_name, level, verified in spec["skills"]:
            skill = Skill(
                person=person,
                tag=find_tag(session, tag_name),
                level=level,
                source=SkillSource.LEAD if verified else SkillSource.SELF,
            )
            if verified:
                skill.verified_at = now
                if lead is not None and lead["handle"] != spec["handle"]:
                    skill.verified_by = by_handle.get(lead["handle"])
            session.add(skill)
        presence.set_status(session, person, Status(spec["presence"]), now, source="demo")
    for spec in data.KNOWLEDGE:
        knowledge.add_entry(
            session,
            spec["title"],
            spec["body"],
            [find_tag(session, name) for name in spec["tags"]],
            [by_handle[handle] for handle in spec["authors"]],
        )
    session.flush()
    if history:
        seed_history(session, now)


def seed_growth(session: Session, now: datetime) -> None:
    """Learning goals, a mentor pair and last digest week's huddle threads for Billing
    (one observed by a learner), on top of `seed_demo`: what `make run` and the
    dashboard show of growth and recognition."""
    by_handle = {p.key: p for p in session.scalars(select(Person))}
    for spec in growth.GOALS:
        person, tag = by_handle[spec["handle"]], find_tag(session, spec["tag"])
        assert tag is not None
        held = next((s.level for s in person.skills if s.tag_id == tag.id), None)
        session.add(
            LearningGoal(
                person=person,
                tag=tag,
                set_at=now - timedelta(days=spec["days_ago"]),
                start_level=held,
            )
        )
    for spec in growth.MENTORS:
        session.add(
            Mentorship(
                learner=by_handle[spec["learner"]],
                mentor=by_handle[spec["mentor"]],
                tag=find_tag(session, spec["tag"]),
                paired_by=by_handle[spec["lead"]],
                paired_at=now - timedelta(days=spec["days_ago"]),
            )
        )
    billing = session.scalar(select(Team).where(Team.name == "Billing"))
    assert billing is not None
    start, _ = digest.latest_window(digest.schedule_of(session, billing), now)
    for spec in growth.HUDDLES:
        _seed_huddle(session, billing, by_handle, spec, start + timedelta(hours=spec["hours"]))
    for spec in growth.UNMATCHED:
        session.add(
            QueryLog(
                person_id=by_handle[spec["handle"]].id,
                platform="console",
                text=spec["text"],
                confident=False,
                suggested="",
                created_at=start + timedelta(hours=spec["hours"]),
            )
        )
    session.flush()


def _seed_huddle(
    session: Session, team: Team, by_handle: dict[str, Person], spec: dict, opened: datetime
) -> None:
    huddle = Huddle(
        topic=spec["topic"],
        requester=by_handle[spec["asker"]],
        team=team,
        platform="console",
        channel_ref=team.huddle_channel,
        created_at=opened,
        state=HuddleState.EXPIRED,
        closed_at=opened + timedelta(hours=8),
    )
    session.add(huddle)
    session.flush()
    replier, after = spec["reply"] if spec["reply"] else (None, 0)
    for handle in spec["experts"]:
        replied = opened + timedelta(seconds=after) if handle == replier else None
        huddle.participants.append(
            HuddleParticipant(
                person=by_handle[handle], invited_at=opened, first_reply_at=replied, round=0
            )
        )
    for handle in spec["observers"]:
        tag = find_tag(session, spec["resolved"]["tags"][0]) if spec["resolved"] else None
        session.add(
            HuddleObserver(
                huddle_id=huddle.id,
                person_id=by_handle[handle].id,
                tag_id=tag.id if tag else None,
                invited_at=opened,
            )
        )
    if replier is not None:
        huddle.first_reply_at = opened + timedelta(seconds=after)
    if spec["resolved"]:
        done = spec["resolved"]
        closed = opened + timedelta(minutes=done["minutes"])
        entry, _ = knowledge.add_entry(
            session,
            done["title"],
            done["body"],
            [find_tag(session, name) for name in done["tags"]],
            [by_handle[replier]] if replier else [],
        )
        entry.huddle_id, entry.created_at, entry.updated_at = huddle.id, closed, closed
        huddle.state, huddle.closed_at = HuddleState.RESOLVED, closed
        huddle.closed_by_id = by_handle[spec["asker"]].id
