"""Mentors through the router: suggestions, fairness, pairing by a lead, requests."""

from __future__ import annotations

from sqlalchemy import select

from adapters.console.render import render
from bot.db.models import Mentorship, Outbox, Tag
from bot.router import Router
from bot.runtime import codec
from bot.services import Services, mentors, people
from tests.helpers import audit_rows, button, buttons, cards, notices, press, say


def _link(services: Services, *keys: str) -> None:
    with services.db.unit_of_work() as session:
        for key in keys:
            people.link_identity(session, people.by_key(session, key), "test", f"U-{key}")


def _pairs(services: Services) -> list[tuple[str, str, str, bool]]:
    with services.db.unit_of_work() as session:
        return [
            (m.learner.key, m.mentor.key, m.tag.name, m.ended_at is None)
            for m in session.scalars(select(Mentorship).order_by(Mentorship.id))
        ]


def test_suggestions_are_verified_experts_of_the_learners_team_first(
    demo: Services, router: Router
) -> None:
    reply = say(demo, router, "omar", "mentor", "refunds")
    shown = [c.key for c in cards(reply)]
    # Verified refunds holders in Billing, highest level first among equals; Tomasz
    # and Joy hold it self-declared, so they are not suggested.
    assert shown == ["priya", "maria", "grace.o"]
    assert all(c.team == "Billing" for c in cards(reply))
    assert "refunds level 5, verified; in your team; mentoring nobody now" in cards(reply)[0].reason
    # A learner asks a lead to pair; only a lead sees "Pair".
    assert next(b.label for b in buttons(reply)) == "Ask a lead to pair me with Priya Sharma"
    lead = say(demo, router, "priya", "mentor", "refunds @omar")
    assert next(b.label for b in buttons(lead)) == "Pair with Priya Sharma"
    # Another team's experts come after the learner's own.
    roaming = say(demo, router, "omar", "whoknows", "mentor roaming")
    assert all(c.team != "Billing" for c in cards(roaming)) and cards(roaming)
    assert "in Devices & Network" in cards(roaming)[0].reason
    assert (
        "Nobody has a verified “fibre installation” skill"
        in notices(say(demo, router, "omar", "mentor", "fibre installation"))[0].text
    )


def test_suggestions_spread_over_mentors_and_a_lead_pairs_them(
    demo: Services, router: Router
) -> None:
    _link(demo, "omar", "alex", "maria", "priya")
    first = say(demo, router, "priya", "mentor", "refunds @omar")
    paired = press(demo, router, "priya", button(first, "Pair with Priya Sharma"))
    assert notices(paired)[0].text == "Paired Omar Haddad with Priya Sharma to learn “refunds”."
    # Priya mentors someone now: the next learner is offered Maria first.
    second = say(demo, router, "priya", "mentor", "refunds @alex")
    assert [c.key for c in cards(second)] == ["maria", "grace.o", "hannah"]
    # Asked for Alex from Omar's side, Priya shows as busy with one learner.
    with demo.db.unit_of_work() as session:
        alex = people.by_key(session, "alex")
        tag = session.scalar(select(Tag).where(Tag.name == "refunds"))
        spread = [(s.person.key, s.mentees) for s in mentors.suggest(session, alex, tag, 50)]
        billing = spread[: spread.index(("priya", 1)) + 1]
        assert billing == [("maria", 0), ("grace.o", 0), ("hannah", 0), ("priya", 1)]
    say(demo, router, "priya", "mentor", "pair @alex @maria refunds")
    assert _pairs(demo) == [
        ("omar", "priya", "refunds", True),
        ("alex", "maria", "refunds", True),
    ]
    # Pairing again is a no-op; another mentor replaces the first.
    again = say(demo, router, "priya", "mentor", "pair @alex @maria refunds")
    assert "already mentors" in notices(again)[0].text
    say(demo, router, "priya", "mentor", "pair @alex @grace.o refunds")
    assert _pairs(demo)[1:] == [
        ("alex", "maria", "refunds", False),
        ("alex", "grace.o", "refunds", True),
    ]
    listed = render(say(demo, router, "priya", "mentor", "list"))
    assert "Omar Haddad learns “refunds” from Priya Sharma (paired by Priya Sharma" in listed
    audited = [(r.action, r.target, r.allowed) for r in audit_rows(demo) if "mentor" in r.action]
    assert audited == [
        ("mentor.pair", "person:omar", True),
        ("mentor.pair", "person:alex", True),
        ("mentor.pair", "person:alex", True),
    ]
    # The learner and the mentor hear of it; the lead who paired does not need to.
    with demo.db.unit_of_work() as session:
        dms = session.scalars(select(Outbox).where(Outbox.kind == "dm")).all()
        told = {people.handles(session, "test", [row.person_id])[row.person_id] for row in dms}
        assert told == {"U-omar", "U-alex", "U-maria"}
    unpaired = say(demo, router, "priya", "mentor", "unpair @alex refunds")
    assert "no longer has a mentor" in notices(unpaired)[0].text


def test_only_a_lead_of_the_learners_team_pairs_and_refusals_are_audited(
    demo: Services, router: Router
) -> None:
    refused = say(demo, router, "maria", "mentor", "pair @omar @priya refunds")
    assert notices(refused)[0].severity == "error"
    other_lead = say(demo, router, "kwame", "mentor", "pair @omar @priya refunds")
    assert "Only a lead of Omar Haddad's team" in notices(other_lead)[0].text
    # A colleague cannot look up someone else's mentors either, nor press the lead's button.
    peek = say(demo, router, "maria", "mentor", "refunds @omar")
    assert notices(peek)[0].severity == "error"
    lead = say(demo, router, "priya", "mentor", "refunds @omar")
    pressed = press(demo, router, "omar", button(lead, "Pair with Priya Sharma"))
    assert notices(pressed)[0].severity == "error"
    assert _pairs(demo) == []
    denied = [(r.actor_label, r.allowed) for r in audit_rows(demo) if r.action == "mentor.pair"]
    assert denied == [("maria", False), ("kwame", False), ("maria", False), ("omar", False)]
    # Nonsense is said so, not done.
    self_pair = say(demo, router, "priya", "mentor", "pair @omar @omar refunds")
    assert notices(self_pair)[0].text == "Nobody mentors themselves: choose a colleague."
    no_skill = say(demo, router, "priya", "mentor", "pair @omar @alex chargebacks")
    assert (
        notices(no_skill)[0].text
        == "Alex Turner does not hold “chargebacks”, so they cannot mentor it."
    )
    assert "Usage:" in notices(say(demo, router, "priya", "mentor", "pair @omar refunds"))[0].text


def test_a_learner_asks_and_the_lead_pairs_with_one_click(demo: Services, router: Router) -> None:
    _link(demo, "omar", "priya", "maria")
    say(demo, router, "omar", "expertise", "learn refunds")
    profile = say(demo, router, "omar", "expertise")
    found = press(demo, router, "omar", button(profile, "Find a mentor: refunds"))
    asked = press(demo, router, "omar", button(found, "Ask a lead to pair me with Maria Santos"))
    assert (
        notices(asked)[0].text
        == "I asked Priya Sharma to pair you with Maria Santos for “refunds”."
    )
    with demo.db.unit_of_work() as session:
        (dm,) = session.scalars(select(Outbox).where(Outbox.kind == "dm")).all()
        assert dm.person_id == people.by_key(session, "priya").id
        request = codec.loads(dm.body)
    assert "Omar Haddad would like Maria Santos as a mentor" in render(request)
    press(demo, router, "priya", button(request, "Pair with Maria Santos"))
    assert _pairs(demo) == [("omar", "maria", "refunds", True)]
    assert "Mentor: Maria Santos." in render(say(demo, router, "omar", "expertise"))
    # Pressing someone else's request button is not asking for them.
    other = press(demo, router, "alex", button(found, "Ask a lead to pair me with Maria Santos"))
    assert notices(other)[0].severity == "warning"
