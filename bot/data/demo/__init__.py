"""Seed the demo contact-center org, so a first run shows real answers."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from bot.data.demo import data
from bot.db.models import Person, Role, Skill, SkillSource, Status, TagAlias, Team
from bot.services import accounts, knowledge, people, presence
from bot.services.expertise import ensure_tag, find_tag


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


def seed_demo(session: Session, now: datetime) -> None:
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
