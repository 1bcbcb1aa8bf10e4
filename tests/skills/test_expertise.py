"""Expertise: who may tag, untag and verify whom, and the audit trail of each attempt."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.db.models import Skill, SkillSource, Tag
from bot.router import Router
from bot.services import Services, people
from tests.helpers import audit_rows, cards, notices, say


def _skill(services: Services, key: str, tag: str) -> Skill | None:
    with services.db.unit_of_work() as session:
        person = people.by_key(session, key)
        return session.scalar(
            select(Skill).join(Tag).where(Skill.person_id == person.id, Tag.name == tag)
        )


@pytest.mark.reliability(17)
def test_an_agent_cannot_tag_someone_else_and_the_attempt_is_audited(
    demo: Services, router: Router
) -> None:
    reply = say(demo, router, "alex", "expertise", "tag @maria chargebacks:5")
    assert notices(reply)[0].severity == "error"
    assert "Only a lead" in notices(reply)[0].text
    assert _skill(demo, "maria", "chargebacks") is None
    denied = audit_rows(demo)[-1]
    assert (denied.actor_label, denied.action, denied.target, denied.allowed) == (
        "alex",
        "tag",
        "person:maria",
        False,
    )


def test_an_agent_cannot_verify_anyone(demo: Services, router: Router) -> None:
    assert _skill(demo, "omar", "refunds").verified_at is None
    reply = say(demo, router, "alex", "expertise", "verify @omar refunds")
    assert notices(reply)[0].severity == "error"
    assert _skill(demo, "omar", "refunds").verified_at is None
    assert audit_rows(demo)[-1].allowed is False


def test_a_lead_tags_and_verifies_their_team_with_audit_rows(
    demo: Services, router: Router
) -> None:
    reply = say(demo, router, "priya", "expertise", "tag @maria chargebacks:3, late fees:2")
    assert notices(reply)[0].severity == "success"
    skill = _skill(demo, "maria", "chargebacks")
    assert (skill.level, skill.source, skill.verified) == (3, SkillSource.LEAD, True)
    assert _skill(demo, "maria", "late fees").level == 2

    say(demo, router, "priya", "expertise", "verify @omar refunds")
    assert _skill(demo, "omar", "refunds").verified_by_id == _person_id(demo, "priya")
    actions = [(row.action, row.target, row.allowed) for row in audit_rows(demo)]
    assert actions[-3:] == [
        ("skill.tag", "person:maria", True),
        ("skill.tag", "person:maria", True),
        ("skill.verify", "person:omar", True),
    ]


def test_a_lead_cannot_manage_another_team(demo: Services, router: Router) -> None:
    reply = say(demo, router, "priya", "expertise", "verify @zoe apn settings")
    assert notices(reply)[0].severity == "error"
    assert audit_rows(demo)[-1].allowed is False


def test_an_admin_manages_everyone(demo: Services, router: Router) -> None:
    reply = say(demo, router, "daniel", "expertise", "tag @zoe sim:2")
    assert notices(reply)[0].severity == "success"
    assert _skill(demo, "zoe", "sim").verified


def test_self_declared_skills_are_unverified_and_raising_one_drops_verification(
    demo: Services, router: Router
) -> None:
    reply = say(demo, router, "alex", "expertise", "tag refunds:2")
    assert "self-declared" in notices(reply)[0].text
    skill = _skill(demo, "alex", "refunds")
    assert (skill.source, skill.verified) == (SkillSource.SELF, False)

    assert _skill(demo, "maria", "refunds").verified
    say(demo, router, "maria", "expertise", "tag refunds:5")
    assert _skill(demo, "maria", "refunds").verified is False


def test_nobody_verifies_their_own_skill(demo: Services, router: Router) -> None:
    reply = say(demo, router, "priya", "expertise", "verify @priya late fees")
    assert "own expertise" in notices(reply)[0].text


def test_unknown_tags_get_suggestions_and_unknown_people_a_clear_error(
    demo: Services, router: Router
) -> None:
    reply = say(demo, router, "priya", "expertise", "tag @maria chargbacks:3")
    assert "Did you mean" in notices(reply)[0].text
    assert "chargebacks" in notices(reply)[0].text
    reply = say(demo, router, "priya", "expertise", "tag @nobody refunds")
    assert "@nobody" in notices(reply)[0].text
    reply = say(demo, router, "priya", "expertise", "tag @maria refunds:9")
    assert "1 to 5" in notices(reply)[0].text


def test_untag_own_skill_and_show_profile(demo: Services, router: Router) -> None:
    say(demo, router, "alex", "expertise", "untag late fees")
    assert _skill(demo, "alex", "late fees") is None
    profile = cards(say(demo, router, "alex", "expertise", "show @maria"))
    assert profile[0].key == "maria"
    assert {t.name for t in profile[0].tags} >= {"refunds", "prepaid top-up"}


def _person_id(services: Services, key: str) -> int:
    with services.db.unit_of_work() as session:
        return people.by_key(session, key).id
