"""Huddles through the router: opening, the escalation ladder, declines, resolving, bad input."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from adapters.console.render import render
from bot.db.models import Huddle, HuddleState, Job, JobState, KnowledgeEntry, Outbox
from bot.matching import Ranking, TagSignal
from bot.router import Router
from bot.runtime import codec, jobs
from bot.services import Services, huddles, people
from bot.types import (
    Command,
    Form,
    Line,
    Mention,
    PersonCard,
    PresenceView,
    Reply,
    TagMatch,
    Where,
)
from tests.helpers import audit_rows, button, cards, notices, person_id, press, say


def _posted(services: Services) -> list[tuple[str, str | None, int | None, str]]:
    """The outbox, in order: (kind, channel, person, text)."""
    with services.db.unit_of_work() as session:
        rows = session.scalars(select(Outbox).order_by(Outbox.id)).all()
        return [(r.kind, r.channel, r.person_id, render(codec.loads(r.body))) for r in rows]


def _open(services: Services, router: Router, text: str, key: str = "alex") -> int:
    reply = say(services, router, key, "huddle", text)
    found = re.search(r"Opened huddle thread #(\d+)", notices(reply)[0].text)
    assert found, notices(reply)
    return int(found.group(1))


def _invited(services: Services, number: int) -> list[str]:
    with services.db.unit_of_work() as session:
        huddle = huddles.get(session, number)
        return [p.person.key for p in huddle.participants if p.invited]


def _card(key: str, tags: list[str], status: str = "available", pid: int = 0) -> PersonCard:
    return PersonCard(
        person_id=pid,
        key=key,
        name=key,
        team=None,
        presence=PresenceView(status, status),
        tags=tuple(TagMatch(t, 3, False) for t in tags),
    )


def test_a_question_spanning_two_skills_invites_experts_who_cover_both() -> None:
    ranking = Ranking(
        "refund for a prepaid top-up",
        [
            _card("r1", ["refunds"], pid=1),
            _card("r2", ["refunds"], pid=2),
            _card("p1", ["prepaid top-up"], pid=3),
            _card("both-busy", ["refunds", "prepaid top-up"], status="busy", pid=4),
        ],
        [],
        [TagSignal(10, "refunds", 1.0, "named"), TagSignal(11, "prepaid top-up", 0.9, "named")],
        True,
    )
    # Not the two who know the same half, nor someone busy: one available person per skill.
    assert huddles.choose_experts(ranking, 2, set()) == [1, 3]
    # One available person who covers both is enough, then the next best fills in.
    ranking.experts.insert(0, _card("both", ["refunds", "prepaid top-up"], pid=5))
    assert huddles.choose_experts(ranking, 2, set()) == [5, 1]
    assert huddles.choose_experts(ranking, 1, set()) == [5]
    assert huddles.choose_experts(ranking, 2, {5, 1}) == [2, 3]


def test_the_first_invited_is_the_best_the_asker_is_shown_not_a_neighbours_holder() -> None:
    ranking = Ranking(
        "customer ordered a card weeks ago and it has not arrived",
        [
            _card("holder1", ["card delivery"], pid=1),
            _card("holder2", ["card delivery"], pid=2),
            _card("neighbour", ["card delivery estimate", "order physical card"], pid=3),
        ],
        [],
        [
            TagSignal(10, "card delivery", 1.0, "named"),
            TagSignal(11, "card delivery estimate", 0.8, "similar"),
            TagSignal(12, "order physical card", 0.7, "similar"),
        ],
        True,
    )
    # Greedy cover alone took the neighbour (two topics) first and one holder after.
    assert huddles.choose_experts(ranking, 2, set())[0] == ranking.experts[0].person_id
    assert huddles.choose_experts(ranking, 1, set()) == [1]
    assert huddles.choose_experts(ranking, 2, set()) == [1, 3]


def test_opening_posts_the_thread_and_messages_each_expert(demo: Services, router: Router) -> None:
    number = _open(demo, router, "chargeback on a card payment @maria @omar")
    assert _invited(demo, number) == ["maria", "omar"]
    posted = _posted(demo)
    root = [p for p in posted if p[0] == "post"]
    assert len(root) == 1 and root[0][1] == "billing-huddles"
    assert "“chargeback on a card payment”, asked by @Alex Turner" in root[0][3]
    assert "Invited: @Maria Santos, @Omar Haddad" in root[0][3]
    dms = {p[2] for p in posted if p[0] == "dm"}
    assert dms == {person_id(demo, "maria"), person_id(demo, "omar")}


def test_decline_by_every_invited_expert_climbs_the_ladder_at_once(
    demo: Services, router: Router
) -> None:
    number = _open(demo, router, "refund for a prepaid top-up")
    first = _invited(demo, number)
    say(demo, router, first[0], "huddle", f"decline {number}")
    assert _invited(demo, number) == first  # one is still thinking about it
    reply = say(demo, router, first[1], "huddle", f"decline #{number}")
    assert "off huddle thread" in notices(reply)[0].text
    now_invited = _invited(demo, number)
    assert len(now_invited) > 2 and not set(now_invited[2:]) & set(first)
    notes = [p[3] for p in _posted(demo) if p[0] == "thread"]
    assert any("declined" in n for n in notes)
    assert any("No answer yet, so I am also inviting" in n for n in notes)
    # The timer that was due for this step will not climb a second time.
    demo.clock.advance(demo.settings.escalation_timeout_s - 1)
    assert jobs.run_due(demo) == 0


def test_the_ladder_goes_to_the_team_channel_then_the_lead_then_tells_the_asker(
    demo: Services, router: Router
) -> None:
    number = _open(demo, router, "refund for a prepaid top-up")
    timeout = demo.settings.escalation_timeout_s
    for _ in demo.settings.escalation_ladder:
        demo.clock.advance(timeout)
        assert jobs.run_due(demo) == 1
    demo.clock.advance(timeout * 10)
    assert jobs.run_due(demo) == 0  # the ladder has run out; nothing else fires
    posted = _posted(demo)
    channel_calls = [p for p in posted if p[0] == "post" and p[1] == "billing"]
    assert len(channel_calls) == 1 and f"Huddle thread #{number}" in channel_calls[0][3]
    lead_dms = [p for p in posted if p[0] == "dm" and p[2] == person_id(demo, "priya")]
    assert lead_dms
    notes = "\n".join(p[3] for p in posted if p[0] == "thread")
    assert "so I told the team lead: @Priya Sharma" in notes
    assert "asked everyone I can. @Alex Turner" in notes
    with demo.db.unit_of_work() as session:
        assert session.get(Huddle, number).ladder_step == len(demo.settings.escalation_ladder)


def test_a_reply_in_the_platform_thread_counts_and_stops_the_ladder(
    demo: Services, router: Router
) -> None:
    number = _open(demo, router, "chargeback dispute @maria")
    with demo.db.unit_of_work() as session:
        huddle = session.get(Huddle, number)
        huddle.thread_ref = "1700000000.000100"  # as the platform would, once posted
        channel = huddle.channel_ref
    message = Command(
        "test",
        person_id(demo, "maria"),
        "",
        "Ask for the card statement first",
        where=Where(channel=channel, thread="1700000000.000100"),
        action_id="huddle.message",
    )
    assert router.dispatch(message, demo).elements == ()
    replied_at = demo.clock()
    demo.clock.advance(demo.settings.escalation_timeout_s * 5)
    assert jobs.run_due(demo) == 0
    with demo.db.unit_of_work() as session:
        huddle = session.get(Huddle, number)
        assert huddle.first_reply_at == replied_at
        assert huddle.participants[0].first_reply_at == replied_at


def test_resolving_saves_the_conclusion_and_credits_who_replied(
    demo: Services, router: Router
) -> None:
    number = _open(demo, router, "chargeback dispute @maria @omar")
    say(demo, router, "omar", "huddle", f"reply {number} Check the card statement")
    form = say(demo, router, "alex", "huddle", f"resolve {number}")
    (resolve_form,) = [e for e in form.elements if isinstance(e, Form)]
    done = router.dispatch(
        Command(
            "test",
            person_id(demo, "alex"),
            "",
            resolve_form.value,
            action_id=resolve_form.action_id,
            values={
                "title": "Chargeback disputes",
                "answer": "Ask for the statement.",
                "tags": "chargebacks",
            },
        ),
        demo,
    )
    assert "credited to Omar Haddad" in notices(done)[0].text
    with demo.db.unit_of_work() as session:
        entry = session.scalar(select(KnowledgeEntry).where(KnowledgeEntry.huddle_id == number))
        assert [a.key for a in entry.authors] == ["omar"]
        assert [t.name for t in entry.tags] == ["chargebacks"]
    updates = [p[3] for p in _posted(demo) if p[0] == "update"]
    assert f"saved as knowledge entry #{entry.id}" in updates[-1]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "Usage: `huddle"),
        ("resolve abc", "Usage: `huddle"),
        ("resolve 999999 t | a", "There is no huddle #999999"),
        ("cancel 999999", "There is no huddle #999999"),
        ("chargebacks @nobody-here", "I don't know anyone called '@nobody-here'"),
        ("chargebacks @alex", "You cannot huddle with yourself"),
        ("zzzz qqqq", "I could not find experts"),
    ],
)
def test_bad_huddle_commands_get_a_clear_answer_and_change_nothing(
    demo: Services, router: Router, text: str, expected: str
) -> None:
    reply = say(demo, router, "alex", "huddle", text)
    assert expected in notices(reply)[0].text
    assert _posted(demo) == []


def test_resolving_needs_rights_a_conclusion_and_happens_once(
    demo: Services, router: Router
) -> None:
    number = _open(demo, router, "chargeback dispute @maria")
    # Someone with no part in it, from another team, may not resolve it: refused and audited.
    refused = say(demo, router, "zoe", "huddle", f"resolve {number} Mine | my answer")
    assert notices(refused)[0].severity == "error"
    denial = audit_rows(demo)[-1]
    assert (denial.action, denial.allowed, denial.target) == (
        "resolve_huddle",
        False,
        f"huddle:{number}",
    )
    empty = say(demo, router, "alex", "huddle", f"resolve {number}  |  | ")
    assert "needs a title and an answer" in notices(empty)[0].text
    unknown_tag = say(demo, router, "alex", "huddle", f"resolve {number} T | A | chargbacks")
    assert "Did you mean 'chargebacks'" in notices(unknown_tag)[0].text
    # The lead of the asker's team may.
    ok = say(demo, router, "priya", "huddle", f"resolve {number} Disputes | Get the statement")
    assert notices(ok)[0].severity == "success"
    twice = say(demo, router, "alex", "huddle", f"resolve {number} Again | Again")
    assert "already resolved" in notices(twice)[0].text
    with demo.db.unit_of_work() as session:
        saved = session.scalars(
            select(KnowledgeEntry).where(KnowledgeEntry.huddle_id == number)
        ).all()
        assert len(saved) == 1
        # Nobody replied, so the conclusion is credited to who wrote it.
        assert [a.key for a in saved[0].authors] == ["priya"]


def test_cancel_reopen_and_list(demo: Services, router: Router) -> None:
    number = _open(demo, router, "chargeback dispute @maria")
    listed = say(demo, router, "maria", "huddle", "list")
    assert f"#{number} “chargeback dispute”" in render(listed)
    assert "#" not in render(say(demo, router, "zoe", "huddle", "list")).split(":", 1)[-1]
    assert "in your team" in render(say(demo, router, "omar", "huddle", "list team"))
    say(demo, router, "alex", "huddle", f"cancel {number}")
    with demo.db.unit_of_work() as session:
        assert session.get(Huddle, number).state == HuddleState.CANCELLED
    closed = say(demo, router, "alex", "huddle", f"resolve {number} T | A")
    assert "is cancelled, not open" in notices(closed)[0].text
    say(demo, router, "alex", "huddle", f"reopen {number}")
    with demo.db.unit_of_work() as session:
        assert session.get(Huddle, number).state == HuddleState.OPEN


def test_hostile_topics_stay_text_and_ping_nobody(demo: Services, router: Router) -> None:
    everyone = say(demo, router, "alex", "huddle", "refund @everyone")
    assert "I don't know anyone called '@everyone'" in notices(everyone)[0].text
    number = _open(demo, router, "<!channel> <@U123> refund @maria")
    with demo.db.unit_of_work() as session:
        huddle = session.get(Huddle, number)
        assert huddle.topic == "<!channel> <@U123> refund"
        root = session.scalar(select(Outbox).where(Outbox.kind == "post"))
        reply = codec.loads(root.body)
    line = next(e for e in reply.elements if isinstance(e, Line))
    mentioned = [p.person_id for p in line.parts if isinstance(p, Mention)]
    # Only the asker and the invited expert are mentions; the topic is a plain string.
    assert mentioned == [person_id(demo, "alex"), person_id(demo, "maria")]
    assert any(isinstance(p, str) and "<!channel>" in p for p in line.parts)


def test_the_start_button_on_a_who_knows_answer_opens_a_huddle(
    demo: Services, router: Router
) -> None:
    answer = say(demo, router, "alex", "whoknows", "refund for a prepaid top-up")
    opened = press(demo, router, "alex", button(answer, "Start huddle thread"))
    assert "Opened huddle thread" in notices(opened)[0].text
    # A chosen subset (the platform's expert picker) replaces the suggestion.
    picked = press(
        demo,
        router,
        "alex",
        button(answer, "Start huddle thread"),
        experts=str(person_id(demo, "omar")),
    )
    number = int(re.search(r"#(\d+)", notices(picked)[0].text).group(1))
    assert _invited(demo, number) == ["omar"]


def test_a_lead_sets_where_the_team_huddles_and_it_is_audited(
    demo: Services, router: Router
) -> None:
    refused = say(demo, router, "alex", "team", "huddles #elsewhere")
    assert notices(refused)[0].severity == "error"
    done = router.dispatch(
        Command(
            "test",
            person_id(demo, "priya"),
            "team",
            "huddles <#C0HUDDLE|billing-help>",
            channels={"<#C0HUDDLE|billing-help>": "C0HUDDLE"},
        ),
        demo,
    )
    assert notices(done)[0].severity == "success"
    assert "not a channel" in notices(say(demo, router, "priya", "team", "channel <b>"))[0].text
    number = _open(demo, router, "chargebacks @maria")
    with demo.db.unit_of_work() as session:
        assert session.get(Huddle, number).channel_ref == "C0HUDDLE"
    rows = [(r.action, r.allowed) for r in audit_rows(demo)]
    assert rows == [("set_team_channel", False), ("set_team_channel", True)]
    assert "billing-huddles" in audit_rows(demo)[-1].detail  # what it was before


def test_experts_busy_in_a_huddle_still_show_when_they_are_the_best(
    demo: Services, router: Router
) -> None:
    topic = "refund for a prepaid top-up"
    before = [c.key for c in cards(say(demo, router, "alex", "whoknows", topic))]
    assert {"maria", "priya"} <= set(before)
    _open(demo, router, f"{topic} @maria @priya")
    after = [c.key for c in cards(say(demo, router, "alex", "whoknows", topic))]
    # Their load lowers them among equals; it does not hide the strongest experts.
    assert {"maria", "priya"} <= set(after)


def test_a_double_click_opens_one_huddle(demo: Services, router: Router) -> None:
    first = say(demo, router, "alex", "huddle", "chargeback dispute @maria")
    again = say(demo, router, "alex", "huddle", "chargeback dispute @maria")
    with demo.db.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(Huddle)) == 1
        assert session.scalar(select(func.count()).select_from(Outbox)) == 2  # root, one DM
    assert render(first) == render(again)  # the same huddle, told the same way
    demo.clock.advance(31)  # later, the same topic is a new question
    say(demo, router, "alex", "huddle", "chargeback dispute @maria")
    with demo.db.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(Huddle)) == 2


# --- answering from another platform ----------------------------------------------------


def _on_teams_only(services: Services, key: str) -> None:
    with services.db.unit_of_work() as session:
        people.link_identity(session, people.by_key(session, key), "teams", f"aad-{key}")


def _open_on_slack(services: Services, router: Router, text: str, key: str = "alex") -> int:
    """A huddle opened in Slack (the expert named is on Teams only)."""
    with services.db.unit_of_work() as session:
        people.link_identity(session, people.by_key(session, key), "slack", f"U-{key}")
    mentions = {t: person_id(services, t[1:]) for t in re.findall(r"@[\w.-]+", text)}
    command = Command("slack", person_id(services, key), "huddle", text, mentions=mentions)
    found = re.search(r"#(\d+)", notices(router.dispatch(command, services))[0].text)
    assert found
    return int(found.group(1))


def _invitation(services: Services, key: str) -> Reply:
    with services.db.unit_of_work() as session:
        row = session.scalars(
            select(Outbox).where(Outbox.kind == "dm", Outbox.person_id == person_id(services, key))
        ).one()
        assert row.platform == "teams"
        return codec.loads(row.body)


def _answer(services: Services, router: Router, key: str, number: int, text: str) -> Reply:
    """Answer pressed in the invitation, then the form sent, by `key` on Teams."""
    form_reply = press(services, router, key, button(_invitation(services, key), "Answer"))
    forms = [e for e in form_reply.elements if isinstance(e, Form)]
    assert forms, form_reply
    (form,) = forms
    assert (form.action_id, form.value) == ("huddle.answer.submit", str(number))
    assert [f.name for f in form.fields] == ["answer"]
    submitted = Command(
        "teams",
        person_id(services, key),
        "",
        form.value,
        action_id=form.action_id,
        values={"answer": text},
    )
    return router.dispatch(submitted, services)


def test_an_answer_from_another_platform_is_posted_in_the_thread_as_theirs(
    demo: Services, router: Router
) -> None:
    _on_teams_only(demo, "maria")
    number = _open_on_slack(demo, router, "chargeback dispute @maria")
    done = _answer(demo, router, "maria", number, "Ask for the card statement first")
    assert notices(done)[0].severity == "success"
    assert f"huddle thread #{number} on Slack" in notices(done)[0].text
    with demo.db.unit_of_work() as session:
        posted = session.scalars(
            select(Outbox).where(Outbox.kind == "thread").order_by(Outbox.id.desc())
        ).first()
        assert posted.platform == "slack" and posted.huddle_id == number
        assert render(codec.loads(posted.body)) == "Maria Santos: Ask for the card statement first"
        huddle = session.get(Huddle, number)
        answered_at = demo.clock()
        assert huddle.first_reply_at == answered_at
        (maria,) = huddle.participants
        assert maria.person.key == "maria" and maria.first_reply_at == answered_at
        escalations = session.scalars(
            select(Job).where(Job.huddle_id == number, Job.kind == "escalate")
        ).all()
        assert escalations and {j.state for j in escalations} == {JobState.CANCELLED}
    demo.clock.advance(demo.settings.escalation_timeout_s * 5)
    assert jobs.run_due(demo) == 0  # the ladder stopped
    resolved = say(demo, router, "alex", "huddle", f"resolve {number} Disputes | The statement")
    assert "credited to Maria Santos" in notices(resolved)[0].text
    with demo.db.unit_of_work() as session:
        entry = session.scalar(select(KnowledgeEntry).where(KnowledgeEntry.huddle_id == number))
        assert [a.key for a in entry.authors] == ["maria"]


def test_only_people_who_may_act_on_the_huddle_answer_it_and_only_while_open(
    demo: Services, router: Router
) -> None:
    _on_teams_only(demo, "maria")
    number = _open_on_slack(demo, router, "chargeback dispute @maria")
    # Zoe, of another team and no part in it: refused, audited, nothing posted.
    answer = button(_invitation(demo, "maria"), "Answer")
    refused = press(demo, router, "zoe", answer)
    assert notices(refused)[0].severity == "error"
    assert "may answer huddle thread" in notices(refused)[0].text
    forged = router.dispatch(
        Command(
            "teams",
            person_id(demo, "zoe"),
            "",
            str(number),
            action_id="huddle.answer.submit",
            values={"answer": "Mine"},
        ),
        demo,
    )
    assert notices(forged)[0].severity == "error"
    denial = audit_rows(demo)[-1]
    assert (denial.action, denial.allowed, denial.target) == (
        "answer_huddle",
        False,
        f"huddle:{number}",
    )
    empty = _answer(demo, router, "maria", number, "   ")
    assert "Write your answer first" in notices(empty)[0].text
    assert not [p for p in _posted(demo) if p[0] == "thread" and "Mine" in p[3]]
    with demo.db.unit_of_work() as session:
        assert session.get(Huddle, number).first_reply_at is None
    say(demo, router, "alex", "huddle", f"cancel {number}")
    closed = press(demo, router, "maria", answer)
    assert "is cancelled, not open" in notices(closed)[0].text


def test_decline_and_huddle_reply_work_from_the_other_platform_too(
    demo: Services, router: Router
) -> None:
    _on_teams_only(demo, "maria")
    _on_teams_only(demo, "omar")
    number = _open_on_slack(demo, router, "chargeback dispute @maria @omar")
    declined = press(demo, router, "omar", button(_invitation(demo, "omar"), "Decline"))
    assert "off huddle thread" in notices(declined)[0].text
    typed = Command(
        "teams", person_id(demo, "maria"), "huddle", f"reply {number} Check the statement"
    )
    assert "Posted in huddle thread" in notices(router.dispatch(typed, demo))[0].text
    with demo.db.unit_of_work() as session:
        lines = [
            (r.platform, render(codec.loads(r.body)))
            for r in session.scalars(select(Outbox).where(Outbox.kind == "thread"))
        ]
        assert session.get(Huddle, number).first_reply_at is not None
    assert ("slack", "Omar Haddad declined.") in lines
    assert ("slack", "Maria Santos: Check the statement") in lines
