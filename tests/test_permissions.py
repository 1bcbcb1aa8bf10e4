"""docs/permissions.md, cell by cell, through the real protocols.

The page's tables say, for each act, who may do it (one column per role) and the
paths it can be done through. Every cell is run through every path of its row:
signed Slack requests to the real bolt app (the fake Web API answering), Teams
activities with Bot Framework tokens from the local issuer, lines typed in the
local chat, the dashboard over HTTP, and the command line. Each cell checks the
outcome (it happened, or it did not) and the audit log (the refusal, and the
allowed act where the table says it is audited). The "Every way in" table must
list every action, command, dashboard form and command-line command the code
has, so a new one cannot skip the table.

Permission logic does not depend on the database: the cells run on SQLite.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import getpass
import io
import itertools
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from adapters.cli import RUNNERS
from adapters.cli import main as cli_main
from adapters.console.chat import ConsoleChat
from adapters.dashboard import build_dashboard
from adapters.slack.verify import sign
from adapters.teams.render import ACTION_KEY, VALUE_KEY
from bot.db.models import (
    AuditEntry,
    Huddle,
    HuddleState,
    KnowledgeEntry,
    Mentorship,
    Outbox,
    Person,
    Role,
    Skill,
    SkillDecision,
    SkillSource,
    Team,
    TeamDigest,
)
from bot.router import Router
from bot.services import Services, earned, expertise, huddles, knowledge, people
from bot.types import Actions, Button, Where
from bot.types import Reply as Shown
from skills.huddle import start_button_value
from tests.adapters.dashboard.conftest import serve, sign_in
from tests.adapters.slack.fake_slack import TEAM, FakeSlack
from tests.adapters.slack.test_app import SECRET
from tests.adapters.slack.test_app import run as run_slack
from tests.adapters.teams.conftest import Teams, teams_env  # noqa: F401 (a fixture)
from tests.adapters.teams.fake_teams import TENANT

DOC = Path(__file__).parents[1] / "docs" / "permissions.md"
ALLOWED, REFUSED, NOT_APPLICABLE = "✓", "✗", "—"
OPERATOR = "operator"
OPERATOR_LABEL = f"cli:{getpass.getuser() or 'operator'}"

PLATFORM_OF = {
    "slack command": "slack",
    "slack button": "slack",
    "slack modal": "slack",
    "teams message": "teams",
    "teams card": "teams",
    "console": "console",
    "console button": "console",
    "dashboard form": "dashboard",
    "dashboard import": "dashboard",
    "cli import csv": "cli",
    "cli import jsonl": "cli",
    "cli import tags": "cli",
    "cli people link": "cli",
    "cli forget": "cli",
}


def sqlite_only(test):  # type: ignore[no-untyped-def]
    return pytest.mark.parametrize("demo_database_url", ["sqlite"], indirect=True)(test)


# --- reading the page ------------------------------------------------------------------


@dataclass(frozen=True)
class Act:
    table: str
    name: str
    cells: dict[str, str]  # role → ✓ ✗ —
    paths: tuple[str, ...]
    audited: str | None  # the audit log's action
    refused_only: bool  # only refusals are written


@dataclass(frozen=True)
class WayIn:
    name: str
    kind: str
    acts: tuple[str, ...]


def _tables(text: str) -> Iterator[tuple[str, list[str], list[list[str]]]]:
    """Each markdown table under its `##` heading: (heading, header, rows)."""
    heading, lines = "", text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("## "):
            heading = line[3:].strip()
        if line.startswith("|") and i + 1 < len(lines) and set(lines[i + 1]) <= set("|-: "):
            header = [c.strip() for c in line.strip("|").split("|")]
            rows, i = [], i + 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append([c.strip() for c in lines[i].strip("|").split("|")])
                i += 1
            yield heading, header, rows
            continue
        i += 1


def read_page() -> tuple[list[Act], list[WayIn]]:
    acts, ways = [], []
    for heading, header, rows in _tables(DOC.read_text(encoding="utf-8")):
        if heading == "Every way in":
            assert header == ["way in", "kind", "acts"], header
            for name, kind, named in rows:
                ways.append(WayIn(name, kind, tuple(a.strip() for a in named.split(","))))
            continue
        assert header[0] == "act" and header[-2:] == ["paths", "audited as"], header
        roles = header[1:-2]
        for row in rows:
            assert len(row) == len(header), (heading, row)
            audited = row[-1]
            acts.append(
                Act(
                    heading,
                    row[0],
                    dict(zip(roles, row[1:-2], strict=True)),
                    tuple(p.strip() for p in row[-2].split(",")),
                    None if audited == NOT_APPLICABLE else audited.split(" ")[0],
                    audited.endswith("(refused)"),
                )
            )
    return acts, ways


ACTS, WAYS = read_page()


def drivable(role: str, path: str) -> bool:
    """The operator comes in at the command line only, and nobody else does."""
    return (role == OPERATOR) == PLATFORM_OF[path].startswith("cli")


# --- the cases: what each cell sets up, sends and checks --------------------------------

COUNTER = itertools.count(1)


@dataclass
class Case:
    actor: str  # a person's key, or OPERATOR
    target: str  # the audit log's target
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return OPERATOR_LABEL if self.actor == OPERATOR else self.actor


def _person(session: Any, key: str) -> Person:
    found = people.by_key(session, key)
    assert found is not None, key
    return found


def _fresh_person(session: Any, team: str = "Billing") -> Person:
    """Someone new in a team, for one cell only (a cell may move or change them)."""
    n = next(COUNTER)
    person = Person(
        key=f"perm-{n}",
        display_name=f"Perm Person {n}",
        team=session.scalar(select(Team).where(Team.name == team)),
        role=Role.AGENT,
        origin="import",
    )
    session.add(person)
    session.flush()
    return person


def _give_skill(session: Any, person: Person, tag_name: str, level: int = 3) -> None:
    tag = expertise.ensure_tag(session, tag_name)
    session.add(Skill(person=person, tag=tag, level=level, source=SkillSource.SELF))
    session.flush()


class Scenario:
    """One act of the table: how a cell is set up, what each path sends, what happened."""

    def prepare(self, services: Services, role: str, platform: str) -> Case:
        raise NotImplementedError

    def happened(self, services: Services, case: Case) -> bool:
        raise NotImplementedError

    # What each path sends (only those the act's row names are asked for).
    def text(self, case: Case) -> str:
        raise NotImplementedError

    def button(self, case: Case) -> tuple[str, str, dict[str, str]]:
        raise NotImplementedError

    def modal(self, case: Case) -> tuple[str, str, dict[str, str]]:
        raise NotImplementedError

    def form(self, case: Case) -> tuple[str, dict[str, str]]:
        raise NotImplementedError

    def row(self, case: Case) -> dict[str, Any]:
        raise NotImplementedError

    def argv(self, case: Case, path: str, folder: Path) -> list[str]:
        raise NotImplementedError


# Huddle threads: Alex (Billing) asks, Maria is invited, Sipho joined by replying.
HUDDLE_ROLES = {
    "asker": "alex",
    "invited expert": "maria",
    "joined by replying": "sipho",
    "lead of the asker's team": "priya",
    "lead of another team": "kwame",
    "admin": "daniel",
    "anyone else": "zoe",
}


class HuddleScenario(Scenario):
    closed = False  # reopen needs one to reopen

    def prepare(self, services: Services, role: str, platform: str) -> Case:
        n = next(COUNTER)
        with services.db.unit_of_work() as session:
            alex, maria, sipho = (_person(session, k) for k in ("alex", "maria", "sipho"))
            opened = huddles.open_huddle(
                services,
                session,
                alex,
                f"chargeback dispute number {n}",
                [maria],
                platform=platform,
                where=Where(channel="billing-huddles"),
            )
            huddle = opened.huddle
            huddles.record_reply(services, session, huddle, sipho, services.clock())
            if self.closed:
                huddles.cancel(services, session, huddle, alex)
            number = huddle.id
        return Case(HUDDLE_ROLES[role], f"huddle:{number}", {"id": number, "n": n})

    def state(self, services: Services, case: Case) -> HuddleState:
        with services.db.unit_of_work() as session:
            return session.get(Huddle, case.data["id"]).state


class Reply(HuddleScenario):
    def text(self, case: Case) -> str:
        return f"huddle reply {case.data['id']} note-{case.data['n']}"

    def happened(self, services: Services, case: Case) -> bool:
        with services.db.unit_of_work() as session:
            bodies = session.scalars(
                select(Outbox.body).where(
                    Outbox.huddle_id == case.data["id"], Outbox.kind == "thread"
                )
            )
            return any(f"note-{case.data['n']}" in body for body in bodies)


class Answer(Reply):
    def button(self, case: Case) -> tuple[str, str, dict[str, str]]:
        answer = f"note-{case.data['n']}"
        return "huddle.answer.submit", str(case.data["id"]), {"answer": answer}


class Decline(HuddleScenario):
    def text(self, case: Case) -> str:
        return f"huddle decline {case.data['id']}"

    def button(self, case: Case) -> tuple[str, str, dict[str, str]]:
        return "huddle.decline", str(case.data["id"]), {}

    def happened(self, services: Services, case: Case) -> bool:
        with services.db.unit_of_work() as session:
            huddle = huddles.get(session, case.data["id"])
            return any(p.declined_at is not None for p in huddle.participants)


class Resolve(HuddleScenario):
    def text(self, case: Case) -> str:
        return f"huddle resolve {case.data['id']} Disputes {case.data['n']} | Get the statement"

    def modal(self, case: Case) -> tuple[str, str, dict[str, str]]:
        values = {"title": f"Disputes {case.data['n']}", "answer": "Get the statement"}
        return "huddle.resolve.submit", str(case.data["id"]), {**values, "tags": ""}

    def button(self, case: Case) -> tuple[str, str, dict[str, str]]:
        return self.modal(case)

    def happened(self, services: Services, case: Case) -> bool:
        return self.state(services, case) == HuddleState.RESOLVED


class Cancel(HuddleScenario):
    def text(self, case: Case) -> str:
        return f"huddle cancel {case.data['id']}"

    def happened(self, services: Services, case: Case) -> bool:
        return self.state(services, case) == HuddleState.CANCELLED


class Reopen(HuddleScenario):
    closed = True

    def text(self, case: Case) -> str:
        return f"huddle reopen {case.data['id']}"

    def happened(self, services: Services, case: Case) -> bool:
        return self.state(services, case) == HuddleState.OPEN


class Invite(Scenario):
    """Alex opens a huddle thread with someone the ranking suggests, someone named, or
    (forged into the button) someone it does not suggest: Daniel, an admin."""

    def prepare(self, services: Services, role: str, platform: str) -> Case:
        n = next(COUNTER)
        topic = f"refund for a prepaid top-up case {n}"
        with services.db.unit_of_work() as session:
            alex = _person(session, "alex")
            ranking = services.matcher.rank(session, topic, services.clock(), requester_id=alex.id)
            assert ranking.confident and ranking.experts
            daniel = _person(session, "daniel")
            assert daniel.id not in {c.person_id for c in ranking.experts}
            top = ranking.experts[0]
            invitee = (
                (top.person_id, top.key)
                if role.startswith("suggested")
                else (
                    daniel.id,
                    daniel.key,
                )
            )
        return Case("alex", "huddle:new", {"topic": topic, "id": invitee[0], "key": invitee[1]})

    def text(self, case: Case) -> str:
        return f"huddle {case.data['topic']} @{case.data['key']}"

    def button(self, case: Case) -> tuple[str, str, dict[str, str]]:
        value = start_button_value(case.data["topic"], [case.data["id"]])
        return "huddle.start", value, {"experts": str(case.data["id"])}

    def happened(self, services: Services, case: Case) -> bool:
        with services.db.unit_of_work() as session:
            found = session.scalars(select(Huddle).where(Huddle.topic == case.data["topic"]))
            return any(
                p.person_id == case.data["id"] and p.invited
                for huddle in found
                for p in huddle.participants
            )


# Expertise and accounts: each cell acts on someone new (or, for "themself", on Alex).
PERSON_ROLES = {
    "themself": "alex",
    "agent": "omar",
    "lead of their team": "priya",
    "lead of another team": "kwame",
    "admin": "daniel",
    OPERATOR: OPERATOR,
}


class SkillScenario(Scenario):
    held = False  # the target holds the cell's skill beforehand

    def prepare(self, services: Services, role: str, platform: str) -> Case:
        n = next(COUNTER)
        tag = f"perm topic {n}"
        actor = PERSON_ROLES[role]
        with services.db.unit_of_work() as session:
            expertise.ensure_tag(session, tag)
            target = _person(session, actor) if role == "themself" else _fresh_person(session)
            if self.held:
                _give_skill(session, target, tag)
            key = target.key
        return Case(actor, f"person:{key}", {"key": key, "tag": tag})

    def skill(self, services: Services, case: Case) -> Skill | None:
        with services.db.unit_of_work() as session:
            person = _person(session, case.data["key"])
            return next((s for s in person.skills if s.tag.name == case.data["tag"]), None)


class Tag(SkillScenario):
    def text(self, case: Case) -> str:
        return f"expertise tag @{case.data['key']} {case.data['tag']}:4"

    def form(self, case: Case) -> tuple[str, dict[str, str]]:
        return "/dashboard/people/tag", {
            "person": case.data["key"],
            "tag": case.data["tag"],
            "level": "4",
        }

    def happened(self, services: Services, case: Case) -> bool:
        return self.skill(services, case) is not None


class Untag(SkillScenario):
    held = True

    def text(self, case: Case) -> str:
        return f"expertise untag @{case.data['key']} {case.data['tag']}"

    def form(self, case: Case) -> tuple[str, dict[str, str]]:
        return f"/dashboard/people/{case.data['key']}/untag", {"tag": case.data["tag"]}

    def happened(self, services: Services, case: Case) -> bool:
        return self.skill(services, case) is None


class Verify(SkillScenario):
    held = True

    def text(self, case: Case) -> str:
        return f"expertise verify @{case.data['key']} {case.data['tag']}"

    def form(self, case: Case) -> tuple[str, dict[str, str]]:
        return f"/dashboard/people/{case.data['key']}/verify", {"tag": case.data["tag"]}

    def happened(self, services: Services, case: Case) -> bool:
        skill = self.skill(services, case)
        return skill is not None and skill.verified_at is not None


class Link(SkillScenario):
    """Link a Slack account nobody has yet to the target."""

    def prepare(self, services: Services, role: str, platform: str) -> Case:
        case = super().prepare(services, role, platform)
        case.data["account"] = f"UNEW{next(COUNTER)}"
        return case

    def text(self, case: Case) -> str:
        return f"expertise link <@{case.data['account']}> {case.data['key']}"

    def form(self, case: Case) -> tuple[str, dict[str, str]]:
        return f"/dashboard/people/{case.data['key']}/link", {
            "kind": "slack",
            "account": case.data["account"],
        }

    def argv(self, case: Case, path: str, folder: Path) -> list[str]:
        return ["people", "link", case.data["key"], "--slack", case.data["account"]]

    def happened(self, services: Services, case: Case) -> bool:
        with services.db.unit_of_work() as session:
            person = _person(session, case.data["key"])
            return any(i.external_id == case.data["account"] for i in person.identities)


class Forget(SkillScenario):
    def prepare(self, services: Services, role: str, platform: str) -> Case:
        with services.db.unit_of_work() as session:
            target = _fresh_person(session)
            key, number = target.key, target.id
        return Case(OPERATOR, f"person:forgotten-{number}", {"key": key})

    def argv(self, case: Case, path: str, folder: Path) -> list[str]:
        return ["forget", case.data["key"]]

    def happened(self, services: Services, case: Case) -> bool:
        with services.db.unit_of_work() as session:
            return people.by_key(session, case.data["key"]) is None


# Suggested skills and re-verifying: each cell's skill is of someone new in Billing (or,
# for "themself", of Priya, its lead); the buttons and forms carry what the lead saw.
GROWTH_ROLES = {**PERSON_ROLES, "themself": "priya"}
DAY = 86400


class GrowthScenario(Scenario):
    def prepare(self, services: Services, role: str, platform: str) -> Case:
        n = next(COUNTER)
        actor = GROWTH_ROLES[role]
        now = services.clock()
        with services.db.unit_of_work() as session:
            tag = expertise.ensure_tag(session, f"perm topic {n}")
            target = _person(session, actor) if role == "themself" else _fresh_person(session)
            self.evidence(session, target, tag, n, now)
            session.flush()
            data = {"key": target.key, "person": target.id, "tag_id": tag.id, "tag": tag.name}
        return Case(actor, f"person:{data['key']}", data)

    def evidence(self, session: Any, target: Person, tag: Any, n: int, now: Any) -> None:
        raise NotImplementedError

    def skill(self, services: Services, case: Case) -> Skill | None:
        with services.db.unit_of_work() as session:
            found = session.scalar(
                select(Skill).where(
                    Skill.person_id == case.data["person"], Skill.tag_id == case.data["tag_id"]
                )
            )
            if found is not None:
                session.expunge(found)
            return found


class SuggestionScenario(GrowthScenario):
    """Three answers of theirs on a topic they hold no tag for: suggested at level 2."""

    action, decision = earned.ACCEPT, "accept"

    def evidence(self, session: Any, target: Person, tag: Any, n: int, now: Any) -> None:
        for k in range(3):
            knowledge.add_entry(
                session, f"Perm answer {n}.{k}", f"How, case {n}.{k}.", [tag], [target]
            )

    def value(self, case: Case) -> str:
        return f"{case.data['person']}:{case.data['tag_id']}:2"

    def button(self, case: Case) -> tuple[str, str, dict[str, str]]:
        return self.action, self.value(case), {}

    def form(self, case: Case) -> tuple[str, dict[str, str]]:
        fields = {"decision": self.decision, "tag": case.data["tag"], "suggested": "2"}
        return f"/dashboard/people/{case.data['key']}/suggestion", fields


class SeeSuggestion(SuggestionScenario):
    """`expertise suggestions @person`: whether the reply the actor got lists it."""

    def text(self, case: Case) -> str:
        return f"expertise suggestions @{case.data['key']}"

    def happened(self, services: Services, case: Case) -> bool:
        listed = f"(@{case.data['key']}): {case.data['tag']}, level 2"
        return listed in case.data.get("answered", "")


class AcceptSuggestion(SuggestionScenario):
    def happened(self, services: Services, case: Case) -> bool:
        skill = self.skill(services, case)
        return skill is not None and skill.level == 2 and skill.verified_at is not None


class ChangeSuggestion(SuggestionScenario):
    action, decision = earned.SET_LEVEL, "level"

    def value(self, case: Case) -> str:
        return f"{super().value(case)}:3"

    def form(self, case: Case) -> tuple[str, dict[str, str]]:
        url, fields = super().form(case)
        return url, {**fields, "level": "3"}

    def happened(self, services: Services, case: Case) -> bool:
        skill = self.skill(services, case)
        return skill is not None and skill.level == 3 and skill.verified_at is not None


class DismissSuggestion(SuggestionScenario):
    action, decision = earned.DISMISS, "dismiss"

    def happened(self, services: Services, case: Case) -> bool:
        with services.db.unit_of_work() as session:
            dismissed = session.scalar(
                select(SkillDecision.id).where(
                    SkillDecision.person_id == case.data["person"],
                    SkillDecision.tag_id == case.data["tag_id"],
                    SkillDecision.decision == earned.DISMISSED,
                )
            )
        return dismissed is not None and self.skill(services, case) is None


class ReverifyScenario(GrowthScenario):
    """A skill verified at level 3 by Priya 400 days ago, with no evidence since."""

    action, decision, level = earned.CONFIRM, "confirm", 3

    def evidence(self, session: Any, target: Person, tag: Any, n: int, now: Any) -> None:
        verified_at = now - timedelta(days=400)
        session.add(
            Skill(
                person=target,
                tag=tag,
                level=3,
                source=SkillSource.LEAD,
                verified_at=verified_at,
                verified_by=_person(session, "priya"),
            )
        )

    def button(self, case: Case) -> tuple[str, str, dict[str, str]]:
        return self.action, f"{case.data['person']}:{case.data['tag_id']}:{self.level}", {}

    def form(self, case: Case) -> tuple[str, dict[str, str]]:
        field = "current" if self.decision == "confirm" else "level"
        fields = {"decision": self.decision, "tag": case.data["tag"], field: str(self.level)}
        return f"/dashboard/people/{case.data['key']}/reverify", fields

    def verified_again(self, services: Services, case: Case) -> Skill | None:
        skill = self.skill(services, case)
        quiet = services.clock() - timedelta(days=300)
        fresh = skill is not None and skill.verified_at is not None and skill.verified_at > quiet
        return skill if fresh else None


class ConfirmSkill(ReverifyScenario):
    def happened(self, services: Services, case: Case) -> bool:
        skill = self.verified_again(services, case)
        return skill is not None and skill.level == 3


class LowerSkill(ReverifyScenario):
    action, decision, level = earned.LOWER, "lower", 2

    def happened(self, services: Services, case: Case) -> bool:
        skill = self.verified_again(services, case)
        return skill is not None and skill.level == 2


TEAM_ROLES = {"agent": "alex", "lead": "priya", "admin": "daniel"}


class TeamChannels(Scenario):
    def prepare(self, services: Services, role: str, platform: str) -> Case:
        actor = TEAM_ROLES[role]
        with services.db.unit_of_work() as session:
            team = _person(session, actor).team
            assert team is not None
            name = team.name
        return Case(actor, f"team:{name}", {"team": name, "channel": f"perm-{next(COUNTER)}"})

    def text(self, case: Case) -> str:
        return f"team huddles #{case.data['channel']}"

    def happened(self, services: Services, case: Case) -> bool:
        with services.db.unit_of_work() as session:
            team = session.scalar(select(Team).where(Team.name == case.data["team"]))
            return team is not None and team.huddle_channel == case.data["channel"]


class TeamDigestDay(Scenario):
    """Move the team's weekly digest to Tuesday at a time no other cell uses."""

    def prepare(self, services: Services, role: str, platform: str) -> Case:
        case = TeamChannels().prepare(services, role, platform)
        n = next(COUNTER)
        case.data["minute"] = (n // 60 % 24) * 60 + n % 60
        return case

    def text(self, case: Case) -> str:
        minute = case.data["minute"]
        return f"team digest day tuesday {minute // 60:02d}:{minute % 60:02d}"

    def happened(self, services: Services, case: Case) -> bool:
        with services.db.unit_of_work() as session:
            team = session.scalar(select(Team).where(Team.name == case.data["team"]))
            assert team is not None
            row = session.get(TeamDigest, team.id)
            return row is not None and (row.weekday, row.minute) == (2, case.data["minute"])


# Mentors: a learner new to Billing (or, for "the learner", Alex himself), and a mentor
# new to Billing who holds the cell's topic.
MENTOR_ROLES = {
    "the learner": "alex",
    "agent": "omar",
    "lead of their team": "priya",
    "lead of another team": "kwame",
    "admin": "daniel",
}


class MentorScenario(Scenario):
    paired = False  # the learner has the mentor beforehand (for ending the pair)

    def prepare(self, services: Services, role: str, platform: str) -> Case:
        n = next(COUNTER)
        name = f"perm topic {n}"
        actor = MENTOR_ROLES[role]
        with services.db.unit_of_work() as session:
            tag = expertise.ensure_tag(session, name)
            learner = _person(session, actor) if role == "the learner" else _fresh_person(session)
            mentor = _fresh_person(session)
            _give_skill(session, mentor, name, level=4)
            if self.paired:
                session.add(
                    Mentorship(learner=learner, mentor=mentor, tag=tag, paired_at=services.clock())
                )
                session.flush()
            data = {
                "learner": learner.key,
                "learner_id": learner.id,
                "mentor": mentor.key,
                "mentor_id": mentor.id,
                "tag": name,
                "tag_id": tag.id,
            }
        return Case(actor, f"person:{learner.key}", data)

    def active(self, services: Services, case: Case) -> Mentorship | None:
        with services.db.unit_of_work() as session:
            found = session.scalar(
                select(Mentorship).where(
                    Mentorship.learner_id == case.data["learner_id"],
                    Mentorship.tag_id == case.data["tag_id"],
                    Mentorship.mentor_id == case.data["mentor_id"],
                    Mentorship.ended_at.is_(None),
                )
            )
            if found is not None:
                session.expunge(found)
            return found


class PairMentor(MentorScenario):
    def text(self, case: Case) -> str:
        return f"mentor pair @{case.data['learner']} @{case.data['mentor']} {case.data['tag']}"

    def button(self, case: Case) -> tuple[str, str, dict[str, str]]:
        value = {k: case.data[f"{k}_id"] for k in ("learner", "mentor", "tag")}
        return "mentor.pair", json.dumps(value), {}

    def form(self, case: Case) -> tuple[str, dict[str, str]]:
        fields = {k: case.data[k] for k in ("learner", "mentor", "tag")}
        return "/dashboard/mentors/pair", fields

    def happened(self, services: Services, case: Case) -> bool:
        return self.active(services, case) is not None


class UnpairMentor(MentorScenario):
    paired = True

    def text(self, case: Case) -> str:
        return f"mentor unpair @{case.data['learner']} {case.data['tag']}"

    def form(self, case: Case) -> tuple[str, dict[str, str]]:
        return "/dashboard/mentors/unpair", {k: case.data[k] for k in ("learner", "tag")}

    def happened(self, services: Services, case: Case) -> bool:
        return self.active(services, case) is None


# Topics: each cell describes a tag of its own.
TOPIC_ROLES = {"agent": "alex", "lead": "priya", "admin": "daniel", OPERATOR: OPERATOR}


class Describe(Scenario):
    def prepare(self, services: Services, role: str, platform: str) -> Case:
        n = next(COUNTER)
        with services.db.unit_of_work() as session:
            name = expertise.ensure_tag(session, f"perm topic {n}").name
        return Case(TOPIC_ROLES[role], f"tag:{name}", {"tag": name, "n": n})

    def description(self, case: Case) -> str:
        return f"Described {case.data['n']}"

    def text(self, case: Case) -> str:
        return (
            f"tag describe {case.data['tag']} | {self.description(case)} | "
            f"how do I handle case {case.data['n']}"
        )

    def form(self, case: Case) -> tuple[str, dict[str, str]]:
        return "/dashboard/tags/describe", {
            "tag": case.data["tag"],
            "description": self.description(case),
            "examples": f"how do I handle case {case.data['n']}",
        }

    def argv(self, case: Case, path: str, folder: Path) -> list[str]:
        file = folder / f"tags-{case.data['n']}.csv"
        file.write_text(
            "name,description,examples\n"
            f"{case.data['tag']},{self.description(case)},how do I handle case {case.data['n']}\n",
            encoding="utf-8",
        )
        return ["import", "tags", str(file)]

    def happened(self, services: Services, case: Case) -> bool:
        with services.db.unit_of_work() as session:
            tag = expertise.find_tag(session, case.data["tag"])
            return tag is not None and tag.description == self.description(case)


# Importing people: a row about someone new in Billing (or, for "own row", Priya).
IMPORT_ROLES = {
    "own row": "priya",
    "lead of their team": "priya",
    "lead of another team": "kwame",
    "admin": "daniel",
    OPERATOR: OPERATOR,
}


class ImportScenario(Scenario):
    def prepare(self, services: Services, role: str, platform: str) -> Case:
        n = next(COUNTER)
        tag = f"perm topic {n}"
        actor = IMPORT_ROLES[role]
        with services.db.unit_of_work() as session:
            target = _person(session, "priya") if role == "own row" else _fresh_person(session)
            _give_skill(session, target, tag)
            data = {
                "key": target.key,
                "name": target.display_name,
                "team": target.team.name if target.team else "",
                "role": target.role,
                "email": target.email,
                "tag": tag,
                "n": n,
            }
        return Case(actor, f"person:{data['key']}", data)

    def base(self, case: Case) -> dict[str, Any]:
        return {"id": case.data["key"], "name": case.data["name"], "team": case.data["team"]}

    def now(self, services: Services, case: Case) -> Person:
        with services.db.unit_of_work() as session:
            person = _person(session, case.data["key"])
            session.expunge(person)
            return person


class UpdateProfile(ImportScenario):
    def row(self, case: Case) -> dict[str, Any]:
        return {**self.base(case), "name": f"Renamed {case.data['n']}"}

    def happened(self, services: Services, case: Case) -> bool:
        return self.now(services, case).display_name == f"Renamed {case.data['n']}"


class Move(ImportScenario):
    def row(self, case: Case) -> dict[str, Any]:
        return {**self.base(case), "team": "Devices & Network"}

    def happened(self, services: Services, case: Case) -> bool:
        with services.db.unit_of_work() as session:
            team = _person(session, case.data["key"]).team
            return team is not None and team.name == "Devices & Network"


class ChangeRole(ImportScenario):
    def row(self, case: Case) -> dict[str, Any]:
        after = Role.AGENT if case.data["role"] == Role.LEAD else Role.LEAD
        case.data["after"] = after
        return {**self.base(case), "role": after.value}

    def happened(self, services: Services, case: Case) -> bool:
        return self.now(services, case).role == case.data["after"]


class ImportVerify(ImportScenario):
    def row(self, case: Case) -> dict[str, Any]:
        return {**self.base(case), "skills": [(case.data["tag"], 3, True)]}

    def happened(self, services: Services, case: Case) -> bool:
        with services.db.unit_of_work() as session:
            person = _person(session, case.data["key"])
            skill = next(s for s in person.skills if s.tag.name == case.data["tag"])
            return skill.verified_at is not None


class Relink(ImportScenario):
    def row(self, case: Case) -> dict[str, Any]:
        return {**self.base(case), "email": f"perm{case.data['n']}@example.test"}

    def happened(self, services: Services, case: Case) -> bool:
        return self.now(services, case).email == f"perm{case.data['n']}@example.test"


# Knowledge: each cell has an entry of its own, by Omar (a Billing agent).
KNOWLEDGE_ROLES = {
    "author": "omar",
    "lead of an author's team": "priya",
    "lead of another team": "kwame",
    "admin": "daniel",
    "anyone else": "alex",
}


class KnowledgeScenario(Scenario):
    def prepare(self, services: Services, role: str, platform: str) -> Case:
        n = next(COUNTER)
        with services.db.unit_of_work() as session:
            entry, _ = knowledge.add_entry(
                session, f"Perm entry {n}", f"What to do, case {n}.", [], [_person(session, "omar")]
            )
            session.flush()
            number, version = entry.id, entry.version
        data = {"id": number, "version": version, "n": n}
        return Case(KNOWLEDGE_ROLES[role], f"knowledge:{number}", data)

    def entry(self, services: Services, case: Case) -> KnowledgeEntry | None:
        with services.db.unit_of_work() as session:
            entry = session.get(KnowledgeEntry, case.data["id"])
            if entry is not None:
                session.expunge(entry)
            return entry


class Edit(KnowledgeScenario):
    def text(self, case: Case) -> str:
        return f"kb edit {case.data['id']} New title {case.data['n']} | New body"

    def modal(self, case: Case) -> tuple[str, str, dict[str, str]]:
        values = {"title": f"New title {case.data['n']}", "answer": "New body", "tags": ""}
        return "kb.edit.submit", f"{case.data['id']}:{case.data['version']}", values

    def form(self, case: Case) -> tuple[str, dict[str, str]]:
        return f"/dashboard/knowledge/{case.data['id']}/edit", {
            "title": f"New title {case.data['n']}",
            "body": "New body",
            "tags": "",
            "version": str(case.data["version"]),
        }

    def happened(self, services: Services, case: Case) -> bool:
        entry = self.entry(services, case)
        return entry is not None and entry.title == f"New title {case.data['n']}"


class Delete(KnowledgeScenario):
    def text(self, case: Case) -> str:
        return f"kb delete {case.data['id']}"

    def form(self, case: Case) -> tuple[str, dict[str, str]]:
        return f"/dashboard/knowledge/{case.data['id']}/delete", {"confirm": "yes"}

    def happened(self, services: Services, case: Case) -> bool:
        return self.entry(services, case) is None


SCENARIOS: dict[tuple[str, str], Scenario] = {
    ("Huddle threads", "reply in the thread"): Reply(),
    ("Huddle threads", "answer from another platform"): Answer(),
    ("Huddle threads", "decline"): Decline(),
    ("Huddle threads", "resolve"): Resolve(),
    ("Huddle threads", "cancel"): Cancel(),
    ("Huddle threads", "reopen"): Reopen(),
    ("Inviting to a huddle thread", "invite from the button or its picker"): Invite(),
    ("Inviting to a huddle thread", "invite by name"): Invite(),
    ("Expertise and accounts", "tag (or set a level)"): Tag(),
    ("Expertise and accounts", "untag"): Untag(),
    ("Expertise and accounts", "verify"): Verify(),
    ("Expertise and accounts", "link an account"): Link(),
    ("Expertise and accounts", "forget someone"): Forget(),
    ("Suggested skills and re-verifying", "see a suggested skill"): SeeSuggestion(),
    ("Suggested skills and re-verifying", "accept a suggested skill"): AcceptSuggestion(),
    (
        "Suggested skills and re-verifying",
        "verify a suggested skill at another level",
    ): ChangeSuggestion(),
    ("Suggested skills and re-verifying", "dismiss a suggested skill"): DismissSuggestion(),
    ("Suggested skills and re-verifying", "confirm a verified skill gone quiet"): ConfirmSkill(),
    ("Suggested skills and re-verifying", "lower a verified skill gone quiet"): LowerSkill(),
    ("Team settings", "set the team's channels"): TeamChannels(),
    ("Team settings", "change the team's weekly digest"): TeamDigestDay(),
    ("Mentors", "pair a learner with a mentor"): PairMentor(),
    ("Mentors", "end a mentor pair"): UnpairMentor(),
    ("Importing people", "update a person's profile"): UpdateProfile(),
    ("Importing people", "move someone to another team"): Move(),
    ("Importing people", "make or unmake a lead or an admin"): ChangeRole(),
    ("Importing people", "verify expertise"): ImportVerify(),
    ("Importing people", "give someone another e-mail or account"): Relink(),
    ("Topics", "describe a topic"): Describe(),
    ("Knowledge", "edit"): Edit(),
    ("Knowledge", "delete"): Delete(),
}


@dataclass(frozen=True)
class Cell:
    act: Act
    role: str
    path: str

    @property
    def expected(self) -> str:
        return self.act.cells[self.role]

    def __str__(self) -> str:
        return f"{self.act.table} / {self.act.name} / {self.role} via {self.path}"


def cells(platform: str) -> list[Cell]:
    return [
        Cell(act, role, path)
        for act in ACTS
        for path in act.paths
        if PLATFORM_OF[path] == platform
        for role, mark in act.cells.items()
        if mark != NOT_APPLICABLE and drivable(role, path)
    ]


# --- checking a cell -------------------------------------------------------------------


def last_audit_id(services: Services) -> int:
    with services.db.unit_of_work() as session:
        return session.scalar(select(AuditEntry.id).order_by(AuditEntry.id.desc()).limit(1)) or 0


def audited_since(services: Services, since: int) -> list[AuditEntry]:
    with services.db.unit_of_work() as session:
        rows = list(session.scalars(select(AuditEntry).where(AuditEntry.id > since)))
        session.expunge_all()
        return rows


def table_actions(table: str) -> set[str]:
    return {a.audited for a in ACTS if a.table == table and a.audited}


def check(services: Services, cell: Cell, case: Case, since: int, failures: list[str]) -> None:
    """The cell's outcome and its audit rows; a mismatch is noted, not raised, so one run
    reports every cell that does not hold."""
    scenario = SCENARIOS[(cell.act.table, cell.act.name)]
    happened = scenario.happened(services, case)
    if happened != (cell.expected == ALLOWED):
        failures.append(f"{cell}: {'happened' if happened else 'did not happen'}")
        return
    if cell.act.audited is None:
        return
    rows = [r for r in audited_since(services, since) if r.actor_label == case.label]
    about = [r for r in rows if r.target == case.target]
    if cell.expected == REFUSED:
        refused = [r for r in about if not r.allowed]
        if not refused or refused[0].action not in table_actions(cell.act.table):
            failures.append(f"{cell}: no refusal audited ({[(r.action, r.target) for r in rows]})")
    elif not cell.act.refused_only and not any(
        r.allowed and r.action == cell.act.audited for r in about
    ):
        failures.append(f"{cell}: not audited as {cell.act.audited}")
    if cell.expected == ALLOWED and any(not r.allowed for r in about):
        failures.append(f"{cell}: allowed, yet a refusal was audited")


# --- the page itself -------------------------------------------------------------------


def test_every_cell_has_a_path_that_can_run_it_and_a_case() -> None:
    assert ACTS and WAYS
    for act in ACTS:
        assert (act.table, act.name) in SCENARIOS, f"no case for {act.table} / {act.name}"
        for path in act.paths:
            assert path in PLATFORM_OF, f"{act.name}: unknown path {path!r}"
        for role, mark in act.cells.items():
            assert mark in {ALLOWED, REFUSED, NOT_APPLICABLE}, (act.name, role, mark)
            if mark != NOT_APPLICABLE:
                assert any(drivable(role, p) for p in act.paths), (act.name, role)


def test_every_way_in_is_on_the_page(router: Router, tmp_path: Path) -> None:
    """A new action, command, dashboard form or command-line command fails here until the
    page places it in a table (or says it changes only the person's own)."""
    from bot.config import Settings
    from bot.db import open_database

    listed = {(w.kind, w.name) for w in WAYS}
    known = {a.name for a in ACTS} | {"own only"}
    for way in WAYS:
        assert set(way.acts) <= known, f"{way.name}: unknown acts {set(way.acts) - known}"
    database = open_database(f"sqlite:///{tmp_path / 'ways.db'}")
    try:
        services = Services(database, Settings(database_url="sqlite://", home=tmp_path))
        dashboard = build_dashboard(services)
        forms = {
            route.resource.canonical
            for route in dashboard.router.routes()
            if route.method == "POST" and route.resource is not None
        }
    finally:
        database.dispose()
    commands = RUNNERS
    present = (
        {("action", a) for a in router.actions}
        | {("command", c) for c in router.routes}
        | {("dashboard", f) for f in forms}
        | {("cli", c) for c in commands}
    )
    assert present == listed, (
        f"not on the page: {sorted(present - listed)}; gone from the code: "
        f"{sorted(listed - present)}"
    )


# --- running the cells -----------------------------------------------------------------

# Everyone who acts in a cell, with an account on the chat platforms.
ACTORS = sorted(
    (
        set(HUDDLE_ROLES.values())
        | set(PERSON_ROLES.values())
        | set(GROWTH_ROLES.values())
        | set(IMPORT_ROLES.values())
        | set(KNOWLEDGE_ROLES.values())
        | set(TEAM_ROLES.values())
        | set(MENTOR_ROLES.values())
        | set(TOPIC_ROLES.values())
    )
    - {OPERATOR}
)


def slack_id(key: str) -> str:
    return "U" + re.sub(r"[^A-Z0-9]", "", key.upper())


def aad_id(key: str) -> str:
    n = ACTORS.index(key) + 1
    return f"{n:08x}-1111-4000-8000-{n:012x}"


def link_everyone(services: Services, platform: str) -> None:
    with services.db.unit_of_work() as session:
        for key in ACTORS:
            external = slack_id(key) if platform == "slack" else aad_id(key)
            people.link_identity(session, _person(session, key), platform, external)


async def _each(services: Services, platform: str, send: Any) -> list[str]:
    """Set each of the platform's cells up, send it, check it; what did not hold."""
    # The table is about who may, not how often: its cases open many huddle threads as one
    # person in moments, past the per-person limits (tests/skills/test_huddle.py).
    services.settings = dataclasses.replace(
        services.settings, huddle_limit=1_000_000, invite_limit=1_000_000
    )
    failures: list[str] = []
    for cell in cells(platform):
        scenario = SCENARIOS[(cell.act.table, cell.act.name)]
        case = await asyncio.to_thread(scenario.prepare, services, cell.role, platform)
        since = await asyncio.to_thread(last_audit_id, services)
        await send(cell, scenario, case)
        await asyncio.to_thread(check, services, cell, case, since, failures)
    return failures


@sqlite_only
def test_the_table_holds_on_slack(demo: Services, router: Router) -> None:
    link_everyone(demo, "slack")
    failures: list[str] = []
    keys = itertools.count(1)

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        async def signed(body: bytes, content_type: str) -> Any:
            headers = sign(SECRET, body, int(time.time()))
            return await client.post(
                "/slack/events", data=body, headers={"Content-Type": content_type, **headers}
            )

        async def send(cell: Cell, scenario: Scenario, case: Case) -> None:
            user, key = slack_id(case.actor), f"cell-{next(keys)}"
            url = fake.response_url(key)
            base = {"user": {"id": user}, "team": {"id": TEAM}, "trigger_id": f"t-{key}"}
            form_type = "application/x-www-form-urlencoded"
            if cell.path == "slack command":
                body = {
                    "command": "/whoknows",
                    "text": scenario.text(case),
                    "user_id": user,
                    "team_id": TEAM,
                    "channel_id": "CGENERAL",
                    "response_url": url,
                    "trigger_id": f"t-{key}",
                }
                assert (await signed(urlencode(body).encode(), form_type)).status == 200
            elif cell.path == "slack button":
                action_id, value, values = scenario.button(case)
                state = {
                    "b1": {
                        name: {
                            "type": "multi_static_select",
                            "selected_options": [{"value": v} for v in item.split(",")],
                        }
                        for name, item in values.items()
                    }
                }
                payload = {
                    **base,
                    "type": "block_actions",
                    "channel": {"id": "CGENERAL"},
                    "response_url": url,
                    "container": {"type": "message", "channel_id": "CGENERAL"},
                    "message": {"ts": "1700000000.000001"},
                    "state": {"values": state},
                    "actions": [{"type": "button", "action_id": action_id, "value": value}],
                }
                body = urlencode({"payload": json.dumps(payload)}).encode()
                assert (await signed(body, form_type)).status == 200
            else:  # slack modal: answered when the request is
                callback, metadata, values = scenario.modal(case)
                payload = {
                    **base,
                    "type": "view_submission",
                    "view": {
                        "id": f"V{key}",
                        "type": "modal",
                        "callback_id": callback,
                        "private_metadata": metadata,
                        "blocks": [{"type": "input", "block_id": name} for name in values],
                        "state": {
                            "values": {
                                name: {name: {"type": "plain_text_input", "value": value}}
                                for name, value in values.items()
                            }
                        },
                    },
                }
                body = urlencode({"payload": json.dumps(payload)}).encode()
                assert (await signed(body, form_type)).status == 200
                return
            await fake.wait_for(
                lambda f: any(c.method == "response_url" and c.key == key for c in f.calls)
            )
            answers = [c.args for c in fake.calls if c.method == "response_url" and c.key == key]
            case.data["answered"] = json.dumps(answers, ensure_ascii=False)

        failures.extend(await _each(demo, "slack", send))

    run_slack(demo, router, scenario, link=False)
    assert not failures, "\n".join(failures)


@sqlite_only
def test_the_table_holds_on_teams(
    demo: Services,
    router: Router,
    teams_env: Any,  # noqa: F811 (the fixture imported above)
) -> None:
    link_everyone(demo, "teams")
    failures: list[str] = []

    async def scenario(teams: Teams) -> None:
        async def send(cell: Cell, scenario: Scenario, case: Case) -> None:
            with demo.db.unit_of_work() as session:
                name = _person(session, case.actor).display_name
            account = {"id": f"29:{case.actor}", "name": name, "aadObjectId": aad_id(case.actor)}
            activity = teams.activity("alex", "")
            activity["from"] = account
            activity["conversation"] = {
                "id": f"a:chat-29:{case.actor}",
                "conversationType": "personal",
                "tenantId": TENANT,
            }
            if cell.path == "teams message":
                activity["text"] = scenario.text(case)
            else:
                action_id, value, values = scenario.button(case)
                activity["value"] = {ACTION_KEY: action_id, VALUE_KEY: value, **values}
            assert (await teams.send(activity)).status in {200, 201, 202}
            answered = f"/activities/{activity['id']}"
            await teams.connector.wait_for(lambda c: bool(c.sent("POST", answered)))
            answers = [c.body for c in teams.connector.sent("POST", answered)]
            case.data["answered"] = json.dumps(answers, ensure_ascii=False)

        failures.extend(await _each(demo, "teams", send))

    teams_env(demo, router, scenario, link=False, known_team=True)
    assert not failures, "\n".join(failures)


@sqlite_only
def test_the_table_holds_in_the_local_chat(demo: Services, router: Router) -> None:
    screen = io.StringIO()
    chat = ConsoleChat(demo, router, screen)
    assert chat.sign_in("alex")

    async def send(cell: Cell, scenario: Scenario, case: Case) -> None:
        start = len(screen.getvalue())
        try:
            await typed(cell, scenario, case)
        finally:
            case.data["answered"] = screen.getvalue()[start:]

    async def typed(cell: Cell, scenario: Scenario, case: Case) -> None:
        if cell.path == "console button":
            # The button on the screen, as the reply that carried it showed it; then
            # whoever is signed in presses it.
            action_id, value, _ = scenario.button(case)
            chat.show(Shown.of(Actions((Button("Press", action_id, value),))))
            number = max(chat.buttons.shown)
            assert chat.sign_in(case.actor)
            chat.handle(f"!{number}")
            return
        assert chat.sign_in(case.actor)
        chat.handle(scenario.text(case))

    failures = asyncio.run(_each(demo, "console", send))
    assert not failures, "\n".join(failures)


@sqlite_only
def test_the_table_holds_on_the_dashboard(demo: Services, router: Router) -> None:
    failures: list[str] = []

    async def scenario(client: TestClient) -> None:
        async def send(cell: Cell, scenario: Scenario, case: Case) -> None:
            csrf = await sign_in(client, demo, router, case.actor)
            if cell.path == "dashboard form":
                url, fields = scenario.form(case)
                response = await client.post(url, data={"csrf": csrf, **fields})
            else:
                upload = FormData({"csrf": csrf})
                text = csv_text([scenario.row(case)])
                upload.add_field("file", text.encode(), filename="p.csv", content_type="text/csv")
                response = await client.post("/dashboard/people/import", data=upload)
            assert response.status in {200, 303, 403}, await response.text()

        failures.extend(await _each(demo, "dashboard", send))

    serve(demo, router, scenario)
    assert not failures, "\n".join(failures)


@sqlite_only
def test_the_table_holds_at_the_command_line(
    demo: Services, demo_database_url: str, tmp_path: Path
) -> None:
    async def send(cell: Cell, scenario: Scenario, case: Case) -> None:
        if cell.path in {"cli import csv", "cli import jsonl"}:
            rows = [scenario.row(case)]
            if cell.path.endswith("csv"):
                path = tmp_path / f"{next(COUNTER)}.csv"
                path.write_text(csv_text(rows), encoding="utf-8")
            else:
                path = tmp_path / f"{next(COUNTER)}.jsonl"
                path.write_text("".join(jsonl_line(r) for r in rows), encoding="utf-8")
            argv = ["import", "people", str(path), "--no-index"]
        else:
            argv = scenario.argv(case, cell.path, tmp_path)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            await asyncio.to_thread(cli_main, ["--db", demo_database_url, *argv])

    failures = asyncio.run(_each(demo, "cli", send))
    assert not failures, "\n".join(failures)


# --- people files ----------------------------------------------------------------------

COLUMNS = ("id", "name", "team", "role", "email", "skills", "verified")


def csv_text(rows: list[dict[str, Any]]) -> str:
    import csv

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    used = [
        c for c in COLUMNS if any(c in row or (c == "verified" and "skills" in row) for row in rows)
    ]
    writer.writerow(used)
    for row in rows:
        skills = row.get("skills", [])
        values = {
            **{k: v for k, v in row.items() if k != "skills"},
            "skills": ";".join(f"{tag}:{level}" for tag, level, _ in skills),
            "verified": ";".join(tag for tag, _, verified in skills if verified),
        }
        writer.writerow([values.get(c, "") for c in used])
    return out.getvalue()


def jsonl_line(row: dict[str, Any]) -> str:
    value = dict(row)
    if "skills" in value:
        value["skills"] = [
            {"tag": tag, "level": level, "verified": verified}
            for tag, level, verified in value["skills"]
        ]
    return json.dumps(value) + "\n"
