"""Learning goals and shadowing through the router: goals, observers, progress, timeline."""

from __future__ import annotations

import dataclasses
import re

import pytest
from sqlalchemy import select

from adapters.console.render import render
from bot.db.models import (
    Huddle,
    HuddleObserver,
    KnowledgeEntry,
    LearningGoal,
    Outbox,
    Status,
)
from bot.router import Router
from bot.runtime import codec, jobs
from bot.services import (
    Services,
    analytics,
    huddles,
    knowledge,
    learning_goals,
    people,
    presence,
)
from bot.types import Actions, Button, Line, Mention
from tests.conftest import NOW
from tests.helpers import audit_rows, button, notices, press, say

TOPIC = "refund for a prepaid top-up"
BILLING = ("alex", "maria", "omar", "priya", "ewa", "tomasz", "hannah", "grace.o", "joy")


def _reachable(services: Services, *keys: str) -> None:
    """The people have an account on the test platform, where the huddles open."""
    with services.db.unit_of_work() as session:
        for key in keys or BILLING:
            people.link_identity(session, people.by_key(session, key), "test", f"U-{key}")


def _open(services: Services, router: Router, text: str = TOPIC, key: str = "alex") -> int:
    reply = say(services, router, key, "huddle", text)
    found = re.search(r"Opened huddle thread #(\d+)", notices(reply)[0].text)
    assert found, reply
    return int(found.group(1))


def _observers(services: Services, number: int) -> list[str]:
    with services.db.unit_of_work() as session:
        rows = session.scalars(
            select(HuddleObserver).where(HuddleObserver.huddle_id == number)
        ).all()
        return sorted(r.person.key for r in rows)


def _thread_lines(services: Services, number: int) -> list[tuple[str, object]]:
    with services.db.unit_of_work() as session:
        rows = session.scalars(
            select(Outbox).where(Outbox.huddle_id == number, Outbox.kind == "thread")
        ).all()
        return [(render(codec.loads(r.body)), codec.loads(r.body)) for r in rows]


def _progress(services: Services, key: str) -> list[learning_goals.GoalProgress]:
    with services.db.unit_of_work() as session:
        return learning_goals.progress(session, people.by_key(session, key))


def _ranked(services: Services, key: str, asker: str = "alex") -> list[str]:
    with services.db.unit_of_work() as session:
        requester = people.by_key(session, asker)
        ranking = services.matcher.rank(
            session, TOPIC, services.clock(), requester_id=requester.id, limit=12
        )
        return [c.key for c in ranking.experts if c.presence.reachable]


# --- goals ---------------------------------------------------------------------------


def test_learn_and_unlearn_are_your_own_and_audited(demo: Services, router: Router) -> None:
    set_ = say(demo, router, "omar", "expertise", "learn refunds")
    assert notices(set_)[0].severity == "success" and "learning “refunds”" in str(set_)
    again = say(demo, router, "omar", "expertise", "learn refunds")
    assert "already learning “refunds” (since 23 Nov 2026)" in notices(again)[0].text
    # A typo gets the nearest topics; someone else's goals are theirs to set.
    typo = say(demo, router, "omar", "expertise", "learn refnds")
    assert "Did you mean 'refunds'" in notices(typo)[0].text
    other = say(demo, router, "priya", "expertise", "learn @omar chargebacks")
    assert (
        notices(other)[0].text
        == "Learning goals are your own: set yours with `expertise learn <topic>`."
    )
    assert say(demo, router, "omar", "expertise", "learn").elements[0].text.startswith("Usage:")  # type: ignore[union-attr]
    stop = say(demo, router, "omar", "expertise", "unlearn refunds")
    assert "no longer learning “refunds”" in notices(stop)[0].text
    twice = say(demo, router, "omar", "expertise", "unlearn refunds")
    assert notices(twice)[0].text == "You are not learning “refunds”."
    with demo.db.unit_of_work() as session:
        goals = session.scalars(select(LearningGoal)).all()
        # Ended, not deleted: the timeline keeps it.
        assert [(g.tag.name, g.ended_at is not None, g.start_level) for g in goals] == [
            ("refunds", True, 1)
        ]
    actions = [(r.action, r.target) for r in audit_rows(demo) if r.action.startswith("learning")]
    assert actions == [("learning.set", "person:omar"), ("learning.end", "person:omar")]


def test_a_person_learns_five_topics_at_most(demo: Services, router: Router) -> None:
    for tag in ("refunds", "chargebacks", "late fees", "roaming", "porting"):
        say(demo, router, "alex", "expertise", f"learn {tag}")
    sixth = say(demo, router, "alex", "expertise", "learn fraud")
    assert "learning 5 topics already" in notices(sixth)[0].text


# --- observers -----------------------------------------------------------------------


def test_a_learner_is_invited_to_observe_mentioned_once_and_never_an_expert(
    demo: Services, router: Router
) -> None:
    _reachable(demo)
    say(demo, router, "omar", "expertise", "learn refunds")
    number = _open(demo, router)
    assert _observers(demo, number) == ["omar"]
    with demo.db.unit_of_work() as session:
        huddle = huddles.get(session, number)
        # Not a participant: not invited as an expert, not messaged as one.
        assert "omar" not in [p.person.key for p in huddle.participants]
        omar = people.by_key(session, "omar").id
        dms = session.scalars(select(Outbox).where(Outbox.kind == "dm")).all()
        assert omar not in {row.person_id for row in dms}
        root = session.scalar(select(Outbox).where(Outbox.is_root.is_(True)))
        assert omar not in {
            p.person_id
            for e in codec.loads(root.body).elements
            if isinstance(e, Line)
            for p in e.parts
            if isinstance(p, Mention)
        }
    # One line in the thread names him, as learning, with a Leave button.
    lines = [(text, reply) for text, reply in _thread_lines(demo, number) if "to learn" in text]
    assert len(lines) == 1
    text, reply = lines[0]
    assert text.startswith("📚 @Omar Haddad is here to learn about refunds: observing only")
    mentions = [p for e in reply.elements if isinstance(e, Line) for p in e.parts]
    assert [m.person_id for m in mentions if isinstance(m, Mention)] == [omar]
    (leave,) = [b for e in reply.elements if isinstance(e, Actions) for b in e.buttons]
    assert (leave.label, leave.action_id, leave.value) == ("Leave", "huddle.leave", str(number))


def test_observers_are_learners_of_the_team_available_now_never_the_asker(
    demo: Services, router: Router
) -> None:
    _reachable(demo, *BILLING, "kwame", "zoe")
    demo.settings = dataclasses.replace(demo.settings, huddle_observers=5)
    for key in ("alex", "omar", "ewa", "tomasz", "zoe"):
        say(demo, router, key, "expertise", "learn refunds")
    # Hannah learns the parent topic: a thread on refunds serves her too, if she worked now.
    say(demo, router, "hannah", "expertise", "learn billing")
    with demo.db.unit_of_work() as session:
        ewa = people.by_key(session, "ewa")
        ewa.work_start_min, ewa.work_end_min = 8 * 60, 18 * 60  # on shift now
        hannah = people.by_key(session, "hannah")
        presence.set_status(session, hannah, Status.AVAILABLE, NOW, source="bot")
        hannah.work_start_min, hannah.work_end_min = 8 * 60, 18 * 60
    number = _open(demo, router, key="alex")
    # Not Alex (he asked), not Tomasz (busy), not Zoe (another team), nor an expert invited.
    assert _invited(demo, number) == ["maria", "ewa"]
    assert _observers(demo, number) == ["hannah", "omar"]


def test_the_learner_who_observed_least_lately_goes_first(demo: Services, router: Router) -> None:
    _reachable(demo)
    for key in ("omar", "maria"):
        say(demo, router, key, "expertise", "learn late fees")
    first = _open(demo, router, "late fee waiver after a bank holiday @hannah")
    second = _open(demo, router, "late fee on a closed account @hannah")
    third = _open(demo, router, "late fee refused by the customer @hannah")
    picked = [_observers(demo, n) for n in (first, second, third)]
    assert picked[0] != picked[1] and picked[2] == picked[0]
    assert sorted(p[0] for p in picked[:2]) == ["maria", "omar"]


def test_an_observer_writing_in_the_thread_is_no_expert_reply_and_the_ladder_skips_them(
    demo: Services, router: Router
) -> None:
    _reachable(demo, *BILLING, "fatima", "thabo", "kwame")
    # Omar knows a little (self-declared), enough that the ladder would ask him next.
    say(demo, router, "omar", "expertise", "tag refunds:4")
    say(demo, router, "omar", "expertise", "learn refunds")
    number = _open(demo, router)
    invited = set(_invited(demo, number))
    assert "omar" not in invited
    next_up = [k for k in _ranked(demo, "omar") if k not in invited]
    assert next_up[0] == "omar", next_up  # without him observing, he is the next expert
    said = say(demo, router, "omar", "huddle", f"reply {number} Following along, thanks")
    assert "Posted in huddle thread" in notices(said)[0].text
    with demo.db.unit_of_work() as session:
        huddle = huddles.get(session, number)
        assert huddle.first_reply_at is None
        assert "omar" not in [p.person.key for p in huddle.participants]
        seen = session.scalar(select(HuddleObserver).where(HuddleObserver.huddle_id == number))
        assert seen.replied_at == NOW
    # The timeout comes: the ladder climbs and asks others, never the observer.
    demo.clock.advance(demo.settings.escalation_timeout_s + 1)  # type: ignore[attr-defined]
    jobs.run_due(demo)
    after = set(_invited(demo, number))
    assert after > invited and "omar" not in after
    escalated = [t for t, _ in _thread_lines(demo, number) if "also inviting" in t]
    assert escalated and "@Omar" not in escalated[0]
    # Not an expert in the numbers either: no first reply, not a helper.
    with demo.db.unit_of_work() as session:
        since = NOW.replace(hour=0)
        scope = analytics.Scope.everything()
        buckets = analytics.reply_time_buckets(session, since, scope)
        assert sum(b.count for b in buckets) == 0
        helpers = analytics.top_helpers(session, since, demo.clock(), scope)
        assert "omar" not in [h.key for h in helpers]


def _invited(services: Services, number: int) -> list[str]:
    with services.db.unit_of_work() as session:
        return [p.person.key for p in huddles.get(session, number).participants if p.invited]


@pytest.mark.parametrize("action", ["resolve", "cancel", "reopen"])
def test_an_observer_may_not_resolve_cancel_or_reopen(
    demo: Services, router: Router, action: str
) -> None:
    _reachable(demo)
    say(demo, router, "omar", "expertise", "learn refunds")
    number = _open(demo, router)
    assert _observers(demo, number) == ["omar"]
    if action == "reopen":
        say(demo, router, "alex", "huddle", f"cancel {number}")
    text = f"{action} {number}" + (" Title | Answer | refunds" if action == "resolve" else "")
    refused = say(demo, router, "omar", "huddle", text)
    assert notices(refused)[0].severity == "error", refused
    assert f"may {action} huddle thread #{number}" in notices(refused)[0].text
    denied = [r for r in audit_rows(demo) if r.action == f"{action}_huddle"]
    assert [(r.target, r.allowed) for r in denied] == [(f"huddle:{number}", False)]


def test_leave_in_one_click_and_it_no_longer_counts(demo: Services, router: Router) -> None:
    _reachable(demo)
    say(demo, router, "omar", "expertise", "learn refunds")
    number = _open(demo, router)
    assert [p.observed for p in _progress(demo, "omar")] == [1]
    (_, reply) = next(x for x in _thread_lines(demo, number) if "to learn" in x[0])
    leave = button(reply, "Leave")
    # Only the observer can leave; anyone else pressing it hears so.
    assert notices(press(demo, router, "maria", leave))[0].text == (
        f"You are not observing huddle thread #{number}."
    )
    left = press(demo, router, "omar", leave)
    assert notices(left)[0].text == f"You stopped observing huddle thread #{number}."
    assert [p.observed for p in _progress(demo, "omar")] == [0]
    again = press(demo, router, "omar", leave)
    assert "not observing" in notices(again)[0].text
    # Having left, what he writes is a reply like anyone's.
    say(demo, router, "omar", "huddle", f"reply {number} Try a Top-up Reversal")
    with demo.db.unit_of_work() as session:
        assert session.get(Huddle, number).first_reply_at is not None


def test_progress_counts_threads_answers_and_skills_since_the_goal(
    demo: Services, router: Router
) -> None:
    _reachable(demo)
    say(demo, router, "omar", "expertise", "learn refunds")
    number = _open(demo, router)
    say(demo, router, "maria", "huddle", f"reply {number} Reverse it with TU-07")
    say(demo, router, "alex", "huddle", f"resolve {number} Wrong-number top-ups | TU-07 | refunds")
    # Omar writes an answer on the topic; Priya raises and verifies his skill.
    with demo.db.unit_of_work() as session:
        omar = people.by_key(session, "omar")
        entry = session.scalar(select(KnowledgeEntry).where(KnowledgeEntry.huddle_id == number))
        written, _ = knowledge.add_entry(
            session, "Refund a roaming bundle", "Refund what was unused.", entry.tags, [omar]
        )
        written.created_at = NOW
    say(demo, router, "priya", "expertise", "tag @omar refunds:3")
    (item,) = _progress(demo, "omar")
    assert (item.tag, item.observed, item.answers) == ("refunds", 1, 1)
    assert [(s.tag, s.level, s.verified, s.was) for s in item.earned] == [("refunds", 3, True, 1)]
    shown = say(demo, router, "omar", "expertise")
    text = render(shown)
    assert (
        "refunds (since 23 Nov 2026): 1 huddle thread observed, 1 answer written, "
        "earned refunds level 3 ✓." in text
    )
    assert "[Find a mentor: refunds]" in text and "[Stop learning refunds]" in text
    # His lead sees it (without his buttons); a colleague does not.
    lead = render(say(demo, router, "priya", "expertise", "show @omar"))
    assert "1 huddle thread observed" in lead and "Stop learning" not in lead
    assert "Learning" not in render(say(demo, router, "maria", "expertise", "show @omar"))
    # App Home shows it too.
    home = render(press(demo, router, "omar", Button("", "home.open", "")))
    assert "refunds (since 23 Nov 2026): 1 huddle thread observed" in home


def test_the_growth_timeline_lists_what_happened_with_dates(demo: Services, router: Router) -> None:
    _reachable(demo)
    say(demo, router, "omar", "expertise", "learn refunds")
    number = _open(demo, router)
    say(demo, router, "priya", "expertise", "verify @omar refunds")
    say(demo, router, "priya", "mentor", "pair @omar @maria refunds")
    with demo.db.unit_of_work() as session:
        events = learning_goals.timeline(session, people.by_key(session, "omar"))
    kinds = {(e.event, e.topic) for e in events}
    assert ("goal_set", "refunds") in kinds
    assert ("observed", "refunds") in kinds
    assert ("mentor", "refunds") in kinds
    # The verification's audit row (permissions.VERIFY) names the level it verified.
    with demo.db.unit_of_work() as session:
        omar = people.by_key(session, "omar")
        level = next(s.level for s in omar.skills if s.tag.name == "refunds")
    verified = f"verify at level {level} by priya"
    assert any(e.event == "skill" and e.detail == verified for e in events), events
    observed = next(e for e in events if e.event == "observed")
    assert observed.when == NOW and f"#{number}" in observed.detail
