"""Expertise: who may tag, untag and verify whom, and the audit trail of each attempt."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from bot.db.models import Identity, Person, QueryLog, Skill, SkillSource, Tag
from bot.router import Router
from bot.services import Services, accounts, people
from bot.services.accounts import Account
from bot.types import Command, Reply
from tests.conftest import NOW
from tests.helpers import audit_rows, cards, notices, person_id, say


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
        "skill.tag",
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


# --- linking a chat account to a person ---------------------------------------------------


def _seen_on_slack(services: Services, user_id: str, name: str, email: str | None = None) -> int:
    """A Slack account as the adapter meets it: linked, or a person made for it."""
    with services.db.unit_of_work() as session:
        account = Account("slack", user_id, name, email)
        return accounts.link_account(session, account, NOW, seen_in="slack").id


def _on_slack(services: Services, router: Router, key: str, text: str, user_id: str) -> Reply:
    """`key` types `expertise <text>` in Slack, mentioning the account `user_id` as
    `<@user_id>`, which the adapter resolves to the person that account is now."""
    with services.db.unit_of_work() as session:
        mentioned = people.by_identity(session, "slack", user_id)
        assert mentioned is not None
        mentions = {f"<@{user_id}>": mentioned.id}
    command = Command("slack", person_id(services, key), "expertise", text, mentions=mentions)
    return router.dispatch(command, services)


def _slack_owner(services: Services, user_id: str) -> str | None:
    with services.db.unit_of_work() as session:
        found = people.by_identity(session, "slack", user_id)
        return found.key if found is not None else None


def test_an_admin_links_a_slack_account_and_the_record_made_for_it_is_merged(
    demo: Services, router: Router
) -> None:
    made = _seen_on_slack(demo, "U0OMAR", "Omar H.")
    made_key = _slack_owner(demo, "U0OMAR")
    assert made_key not in (None, "omar")
    # What the record made for the account did meanwhile moves to Omar with it.
    router.dispatch(Command("slack", made, "whoknows", "refund a prepaid top-up"), demo)
    reply = _on_slack(demo, router, "daniel", "link <@U0OMAR> omar", "U0OMAR")
    assert notices(reply)[0].severity == "success"
    assert notices(reply)[0].text.startswith("Linked U0OMAR on Slack to Omar Haddad (omar)")
    assert _slack_owner(demo, "U0OMAR") == "omar"
    with demo.db.unit_of_work() as session:
        assert session.get(Person, made) is None
        omar = people.by_key(session, "omar")
        assert {s.tag.name for s in omar.skills} >= {"refunds"}
        asked = select(QueryLog.person_id).where(QueryLog.text == "refund a prepaid top-up")
        assert session.scalars(asked).all() == [omar.id]
    merged = audit_rows(demo)[-1]
    assert (merged.actor_label, merged.action, merged.target, merged.allowed) == (
        "daniel",
        "merge_people",
        "person:omar",
        True,
    )
    assert json.loads(merged.detail)["dropped"] == made_key
    # Mentioned again, the account is Omar's now.
    again = _on_slack(demo, router, "daniel", "link <@U0OMAR> @omar", "U0OMAR")
    assert notices(again)[0].text == "U0OMAR on Slack was already Omar Haddad's."


def test_only_an_admin_links_accounts_and_a_refusal_is_audited(
    demo: Services, router: Router
) -> None:
    made = _seen_on_slack(demo, "U0OMAR", "Omar H.")
    for key in ("priya", "alex"):  # a lead of Omar's team, an agent
        reply = _on_slack(demo, router, key, "link <@U0OMAR> omar", "U0OMAR")
        assert notices(reply)[0].severity == "error"
        assert notices(reply)[0].text == "Only an admin may link accounts or merge people."
        refused = audit_rows(demo)[-1]
        assert (refused.actor_label, refused.action, refused.target, refused.allowed) == (
            key,
            "link_account",
            "person:omar",
            False,
        )
    assert _slack_owner(demo, "U0OMAR") != "omar"
    with demo.db.unit_of_work() as session:
        assert session.get(Person, made) is not None


def test_linking_to_an_unknown_handle_or_without_one_is_a_usage_error(
    demo: Services, router: Router
) -> None:
    _seen_on_slack(demo, "U0OMAR", "Omar H.")
    before = len(audit_rows(demo))
    unknown = _on_slack(demo, router, "daniel", "link <@U0OMAR> nobody", "U0OMAR")
    assert (notices(unknown)[0].severity, notices(unknown)[0].text) == (
        "warning",
        "I don't know anyone called 'nobody'.",
    )
    for text in ("link", "link <@U0OMAR>", "link <@U0OMAR> omar maria", "link omar"):
        reply = _on_slack(demo, router, "daniel", text, "U0OMAR")
        assert notices(reply)[0].text.startswith("Usage: `expertise link @account handle`"), text
    assert _slack_owner(demo, "U0OMAR") == "omar.h"
    assert len(audit_rows(demo)) == before


def test_an_account_of_someone_real_is_refused_with_how_to_merge(
    demo: Services, router: Router
) -> None:
    # Maria's Slack account, linked by her e-mail; and a Slack record someone built on.
    _seen_on_slack(demo, "U0MARIA", "Maria", "maria.santos@northwind-mobile.example")
    assert _slack_owner(demo, "U0MARIA") == "maria"
    skilled = _seen_on_slack(demo, "U0SKILLED", "Sam")
    say(demo, router, "daniel", "expertise", "tag @sam refunds:2")
    for user_id, holder in (("U0MARIA", "maria"), ("U0SKILLED", "sam")):
        reply = _on_slack(demo, router, "daniel", f"link <@{user_id}> omar", user_id)
        assert notices(reply)[0].severity == "error"
        assert notices(reply)[0].text == (
            f"The Slack account {user_id} is already linked to {holder}. If {holder} and "
            f"omar are one person, merge them: `whoknows people merge omar {holder}`."
        )
        refused = audit_rows(demo)[-1]
        assert (refused.actor_label, refused.action, refused.target, refused.allowed) == (
            "daniel",
            "link_account",
            "person:omar",
            False,
        )
        assert json.loads(refused.detail)["linked_to"] == holder
        assert _slack_owner(demo, user_id) == holder
    with demo.db.unit_of_work() as session:
        assert session.get(Person, skilled) is not None


def test_an_account_is_linked_where_a_mention_names_one(demo: Services, router: Router) -> None:
    # The local chat has no accounts to mention.
    local = say(demo, router, "daniel", "expertise", "link @alex omar")
    assert "from Slack or Teams" in notices(local)[0].text
    # In Slack, `@alex` typed as text names Alex, who has no Slack account.
    command = Command(
        "slack",
        person_id(demo, "daniel"),
        "expertise",
        "link @alex omar",
        mentions={"@alex": person_id(demo, "alex")},
    )
    reply = router.dispatch(command, demo)
    assert notices(reply)[0].text == (
        "Alex Turner has no Slack account I know of: mention the account itself, or link "
        "it on the dashboard."
    )
    with demo.db.unit_of_work() as session:
        assert not session.scalars(select(Identity).where(Identity.platform == "slack")).all()


def test_in_teams_the_mention_names_the_teams_account(demo: Services, router: Router) -> None:
    with demo.db.unit_of_work() as session:
        made = accounts.link_account(
            session, Account("teams", "29:omar-h", "Omar H."), NOW, seen_in="teams"
        ).id
    # Teams mentions come as the name shown, resolved by the adapter to the person.
    command = Command(
        "teams",
        person_id(demo, "daniel"),
        "expertise",
        "link @Omar_H omar",
        mentions={"@Omar_H": made},
    )
    reply = router.dispatch(command, demo)
    assert notices(reply)[0].text.startswith(
        "Linked 29:omar-h on Microsoft Teams to Omar Haddad (omar)"
    )
    with demo.db.unit_of_work() as session:
        assert people.by_identity(session, "teams", "29:omar-h").key == "omar"
        assert session.get(Person, made) is None


def test_of_several_accounts_the_one_the_mention_spells_is_linked(
    demo: Services, router: Router
) -> None:
    _seen_on_slack(demo, "U0MARIA", "Maria", "maria.santos@northwind-mobile.example")
    with demo.db.unit_of_work() as session:
        maria = people.by_key(session, "maria")
        accounts.link_by_hand(session, maria, "slack", "U0MARIA2", actor_label="cli:test")
    spelled = _on_slack(demo, router, "daniel", "link <@U0MARIA2> omar", "U0MARIA2")
    assert "The Slack account U0MARIA2 is already linked to maria." in notices(spelled)[0].text
    # Typed as `@maria`, the mention names Maria, not one of her two accounts.
    command = Command(
        "slack",
        person_id(demo, "daniel"),
        "expertise",
        "link @maria omar",
        mentions={"@maria": person_id(demo, "maria")},
    )
    unsure = router.dispatch(command, demo)
    assert notices(unsure)[0].text == (
        "Maria Santos has 2 Slack accounts (U0MARIA, U0MARIA2): link the one you mean on the "
        "dashboard."
    )
