"""Expertise that grows: evidence, suggestions and a lead's decisions; verified skills gone
quiet and the weekly reminder that asks their lead (bot/services/earned.py)."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.config import Settings
from bot.db import open_database
from bot.db.models import Job, JobState, Outbox, Person, SkillSource
from bot.router import Router
from bot.runtime import codec, jobs
from bot.services import Services, earned, people, permissions
from bot.services.audit import Denied
from bot.types import Actions, Text
from tests.earned import age_skill, resolve_huddles, skill_of, vote, write_answer
from tests.helpers import Clock, audit_rows, button, notices, press, say

DAY = timedelta(days=1)
YEAR = timedelta(days=365)


def suggested(services: Services, lead: str, **kw) -> dict[tuple[str, str], earned.Suggestion]:  # type: ignore[no-untyped-def]
    with services.db.unit_of_work() as session:
        actor = people.by_key(session, lead)
        return {
            (s.key, s.tag): s for s in earned.suggestions(session, actor, services.clock(), **kw)
        }


def ids(services: Services, key: str, tag: str) -> tuple[int, int]:
    with services.db.unit_of_work() as session:
        from bot.services.expertise import require_tag

        return people.by_key(session, key).id, require_tag(session, tag).id


def decide(services: Services, lead: str, key: str, tag: str, suggested_level: int, **kw):  # type: ignore[no-untyped-def]
    person_id, tag_id = ids(services, key, tag)
    with services.db.unit_of_work() as session:
        actor = people.by_key(session, lead)
        done = earned.decide(
            session, actor, person_id, tag_id, suggested_level, services.clock(), **kw
        )
        return done.already


# --- evidence and suggestions ---------------------------------------------------------


def test_three_resolved_huddle_threads_on_a_tag_they_lack_are_suggested_with_the_evidence(
    demo: Services,
) -> None:
    first_two = resolve_huddles(demo, count=2)
    assert ("omar", "chargebacks") not in suggested(demo, "priya")  # 2 points: not yet
    third = resolve_huddles(demo, count=1, first=2)
    found = suggested(demo, "priya")[("omar", "chargebacks")]
    assert (found.level, found.held_level) == (2, None)
    assert found.evidence.points == 3.0
    proofs = [(p.kind, p.ref) for p in found.evidence.proofs]
    assert proofs == [("huddle", h) for h in reversed(first_two + third)]  # newest first
    assert earned.counts_text(found.evidence) == "3 resolved huddle threads"
    # The huddle's conclusion, credited to omar, is not counted again as an answer.
    assert found.evidence.count("answer") == 0
    # For whoever may verify omar: his team's lead and an admin, not another team's lead,
    # not omar, not a colleague.
    assert ("omar", "chargebacks") in suggested(demo, "daniel")  # admin
    for other in ("kwame", "omar", "alex"):
        assert ("omar", "chargebacks") not in suggested(demo, other)


def test_answers_and_helpful_votes_count_and_old_evidence_counts_less(demo: Services) -> None:
    now = demo.clock()
    entries = [
        write_answer(demo, "hannah", "spending caps", f"Spending cap question {n}", at=now)
        for n in range(2)
    ]
    vote(demo, "alex", entries[0])
    vote(demo, "hannah", entries[1])  # her own vote on her own answer counts nothing
    assert ("hannah", "spending caps") not in suggested(demo, "priya")  # 2.5 points
    vote(demo, "omar", entries[0])
    found = suggested(demo, "priya")[("hannah", "spending caps")]
    assert (found.evidence.points, found.level, found.held_level) == (3.0, 2, None)
    assert earned.counts_text(found.evidence) == "2 answers written, 2 helpful votes"
    for n in range(2, 4):
        write_answer(demo, "hannah", "spending caps", f"Spending cap question {n}", at=now)
    found = suggested(demo, "priya")[("hannah", "spending caps")]
    assert (found.evidence.points, found.level) == (5.0, 3)
    # Evidence counts whole for 180 days, then halves every 180 more.
    assert earned.weight(now - timedelta(days=180), now) == 1.0
    assert earned.weight(now - timedelta(days=360), now) == pytest.approx(0.5)
    demo.clock.advance((270 * DAY).total_seconds())  # type: ignore[attr-defined]
    found = suggested(demo, "priya")[("hannah", "spending caps")]
    assert found.evidence.points == pytest.approx(5.0 * 0.5**0.5)  # 3.54: level 2
    assert found.level == 2
    demo.clock.advance((90 * DAY).total_seconds())  # type: ignore[attr-defined]
    assert ("hannah", "spending caps") not in suggested(demo, "priya")  # 2.5 points


def test_a_skill_held_as_high_as_the_evidence_is_not_suggested(demo: Services) -> None:
    resolve_huddles(demo, helper="priya", asker="alex", tag="chargebacks")
    assert ("priya", "chargebacks") not in suggested(demo, "daniel")  # she holds level 4
    resolve_huddles(demo, helper="omar", tag="refunds")
    found = suggested(demo, "priya")[("omar", "refunds")]
    assert (found.level, found.held_level, found.held_verified) == (2, 1, False)


# --- a lead's decisions ---------------------------------------------------------------


def test_accepting_verifies_at_the_suggested_level_audited_and_not_suggested_again(
    demo: Services,
) -> None:
    resolve_huddles(demo)
    assert decide(demo, "priya", "omar", "chargebacks", 2, decision=earned.ACCEPTED) is False
    skill = skill_of(demo, "omar", "chargebacks")
    assert (skill.level, skill.source, skill.verified_at) == (2, SkillSource.EVIDENCE, demo.clock())
    assert skill.verified_by_id == ids(demo, "priya", "chargebacks")[0]
    entry = audit_rows(demo)[-1]
    assert (entry.actor_label, entry.action, entry.target, entry.allowed) == (
        "priya",
        "skill.suggestion.accept",
        "person:omar",
        True,
    )
    assert json.loads(entry.detail) == {
        "answers": 0,
        "before": "none",
        "helpful": 0,
        "huddles": 3,
        "level": 2,
        "suggested": 2,
        "tag": "chargebacks",
    }
    assert ("omar", "chargebacks") not in suggested(demo, "priya")
    # A second click changes nothing and audits nothing.
    before = len(audit_rows(demo))
    assert decide(demo, "priya", "omar", "chargebacks", 2, decision=earned.ACCEPTED) is True
    assert len(audit_rows(demo)) == before
    # Once the evidence says more, it is suggested again, higher.
    resolve_huddles(demo, count=2, first=3)
    again = suggested(demo, "priya")[("omar", "chargebacks")]
    assert (again.level, again.held_level, again.held_verified) == (3, 2, True)


def test_setting_another_level_verifies_at_that_level(demo: Services) -> None:
    resolve_huddles(demo)
    decide(demo, "priya", "omar", "chargebacks", 2, decision=earned.CHANGED, level=3)
    skill = skill_of(demo, "omar", "chargebacks")
    assert (skill.level, skill.verified_at is not None) == (3, True)
    assert audit_rows(demo)[-1].action == "skill.suggestion.change"
    assert json.loads(audit_rows(demo)[-1].detail)["level"] == 3
    assert ("omar", "chargebacks") not in suggested(demo, "priya")
    # Lower than suggested: the same suggestion does not come back either.
    resolve_huddles(demo, helper="maria", tag="late fees")
    decide(demo, "priya", "maria", "late fees", 2, decision=earned.CHANGED, level=1)
    assert skill_of(demo, "maria", "late fees").level == 1
    assert ("maria", "late fees") not in suggested(demo, "priya")


def test_dismissing_keeps_it_out_for_90_days(demo: Services) -> None:
    resolve_huddles(demo)
    decide(demo, "priya", "omar", "chargebacks", 2, decision=earned.DISMISSED)
    assert skill_of(demo, "omar", "chargebacks") is None  # nothing changed but the list
    entry = audit_rows(demo)[-1]
    assert (entry.action, entry.target) == ("skill.suggestion.dismiss", "person:omar")
    assert json.loads(entry.detail)["days"] == 90
    assert ("omar", "chargebacks") not in suggested(demo, "priya")
    assert ("omar", "chargebacks") not in suggested(demo, "daniel")  # for every lead
    demo.clock.advance((89 * DAY).total_seconds())  # type: ignore[attr-defined]
    assert ("omar", "chargebacks") not in suggested(demo, "priya")
    demo.clock.advance((DAY + timedelta(hours=1)).total_seconds())  # type: ignore[attr-defined]
    assert ("omar", "chargebacks") in suggested(demo, "priya")


def test_only_a_lead_of_their_team_or_an_admin_decides_and_nobody_on_their_own(
    demo: Services,
) -> None:
    resolve_huddles(demo)
    resolve_huddles(demo, helper="priya", tag="direct debit", first=0)
    for actor, key, tag in (
        ("alex", "omar", "chargebacks"),  # an agent
        ("kwame", "omar", "chargebacks"),  # another team's lead
        ("omar", "omar", "chargebacks"),  # himself
        ("priya", "priya", "direct debit"),  # a lead, on her own
    ):
        with pytest.raises(Denied) as refused:
            decide(demo, actor, key, tag, 2, decision=earned.ACCEPTED)
        assert refused.value.action == permissions.ACCEPT_SUGGESTION
    assert skill_of(demo, "omar", "chargebacks") is None
    assert skill_of(demo, "priya", "direct debit") is None
    decide(demo, "daniel", "priya", "direct debit", 2, decision=earned.ACCEPTED)  # an admin
    assert skill_of(demo, "priya", "direct debit").verified_at is not None


def test_a_refused_decision_in_chat_is_audited(demo: Services, router: Router) -> None:
    resolve_huddles(demo)
    listed = say(demo, router, "priya", "expertise", "suggestions")
    accept = button(listed, "Accept (level 2)")
    reply = press(demo, router, "alex", accept)
    assert notices(reply)[0].severity == "error"
    refused = audit_rows(demo)[-1]
    assert (refused.actor_label, refused.action, refused.target, refused.allowed) == (
        "alex",
        permissions.ACCEPT_SUGGESTION,
        "person:omar",
        False,
    )
    assert skill_of(demo, "omar", "chargebacks") is None
    # An agent asking for suggestions is told who sees them.
    told = say(demo, router, "alex", "expertise", "suggestions")
    assert "for leads and admins" in notices(told)[0].text


def test_a_button_with_a_value_made_up_is_a_friendly_error(demo: Services, router: Router) -> None:
    resolve_huddles(demo)
    accept = button(say(demo, router, "priya", "expertise", "suggestions"), "Accept (level 2)")
    for value in ("", "1:2", "x:y:z", "1:2:3:4", "99999:99999:2", f"{accept.value[:-1]}9"):
        reply = press(demo, router, "priya", type(accept)(accept.label, accept.action_id, value))
        assert notices(reply)[0].severity == "warning", value
        assert "expired" in notices(reply)[0].text or "level" in notices(reply)[0].text


# --- freshness: verified skills gone quiet --------------------------------------------


def stale(services: Services, lead: str) -> list[tuple[str, str, int]]:
    with services.db.unit_of_work() as session:
        actor = people.by_key(session, lead)
        after = timedelta(days=services.settings.reverify_after_days)
        return [
            (s.key, s.tag, s.level)
            for s in earned.stale_verified(session, actor, services.clock(), after)
        ]


def test_a_verified_skill_with_no_evidence_for_a_year_is_listed_for_its_lead(
    demo: Services,
) -> None:
    age_skill(demo, "hannah", "refunds", 364, verified=True)
    assert stale(demo, "priya") == []
    age_skill(demo, "hannah", "refunds", 366, verified=True)
    assert stale(demo, "priya") == [("hannah", "refunds", 2)]
    assert stale(demo, "kwame") == []  # not his team
    assert stale(demo, "hannah") == []  # nobody re-verifies their own
    # Evidence within the year keeps it fresh.
    write_answer(demo, "hannah", "refunds", "A refund question", at=demo.clock() - 30 * DAY)
    assert stale(demo, "priya") == []


def test_a_lead_confirms_or_lowers_and_nothing_is_lowered_without_them(
    demo: Services, router: Router
) -> None:
    age_skill(demo, "hannah", "refunds", 400, verified=True)
    age_skill(demo, "grace.o", "itemised bills", 400, verified=True)
    listed = say(demo, router, "priya", "expertise", "suggestions")
    texts = [e.text for e in listed.elements if isinstance(e, Text)]
    assert any(t.startswith("Hannah Brooks (@hannah): refunds level 2, verified") for t in texts)
    assert skill_of(demo, "hannah", "refunds").level == 2  # listing changes nothing
    confirm = next(
        b
        for e in listed.elements
        if isinstance(e, Actions)
        for b in e.buttons
        if b.action_id == earned.CONFIRM and b.value.endswith(":2")
    )
    reply = press(demo, router, "priya", confirm)
    assert notices(reply)[0].severity == "success", reply
    assert skill_of(demo, "hannah", "refunds").verified_at == demo.clock()
    assert audit_rows(demo)[-1].action == "skill.reverify.confirm"
    lower = button(listed, "Lower to 2")  # grace.o's itemised bills, level 3
    press(demo, router, "priya", lower)
    skill = skill_of(demo, "grace.o", "itemised bills")
    assert (skill.level, skill.verified_at) == (2, demo.clock())
    assert audit_rows(demo)[-1].action == "skill.reverify.lower"
    assert stale(demo, "priya") == []
    # Raising is not re-verifying.
    raised = press(demo, router, "priya", type(lower)("", lower.action_id, lower.value[:-1] + "5"))
    assert "tag it instead" in notices(raised)[0].text


def dms(services: Services, key: str) -> list[str]:
    with services.db.unit_of_work() as session:
        person_id = people.by_key(session, key).id
        rows = session.scalars(
            select(Outbox).where(Outbox.kind == "dm", Outbox.person_id == person_id)
        ).all()
        return [
            " / ".join(e.text for e in codec.loads(r.body).elements if isinstance(e, Text))
            for r in rows
        ]


def sweep(services: Services, hours: float = 1) -> None:
    services.clock.advance(hours * 3600)  # type: ignore[attr-defined]
    jobs.run_due(services)


def test_the_reverify_reminder_reaches_each_lead_once_a_week(
    demo: Services, router: Router
) -> None:
    age_skill(demo, "hannah", "refunds", 400, verified=True)
    assert jobs.ensure_recurring(demo) == 1
    assert jobs.ensure_recurring(demo) == 0  # already pending
    jobs.run_due(demo)
    (sent,) = dms(demo, "priya")
    assert "Hannah Brooks (@hannah): refunds level 2" in sent
    assert dms(demo, "kwame") == [] and dms(demo, "fatima") == []  # nothing stale there
    asked = audit_rows(demo)[-1]
    assert (asked.actor_label, asked.action, asked.target) == (
        "whoknows",
        "skill.reverify.ask",
        "person:priya",
    )
    for _ in range(6 * 24):  # every hour for six days: the sweep runs, priya is not asked
        sweep(demo)
    assert len(dms(demo, "priya")) == 1
    with demo.db.unit_of_work() as session:  # the sweep's two rows take turns
        rows = session.scalars(select(Job).where(Job.kind == earned.REVERIFY_SWEEP)).all()
        assert sorted(r.step for r in rows) == [0, 1]
        assert [r.state for r in rows].count(JobState.PENDING) == 1
    sweep(demo, 24)  # a week after: still not decided, so asked again
    assert len(dms(demo, "priya")) == 2
    # Decided: asked no more.
    reply = say(demo, router, "priya", "expertise", "suggestions")
    press(demo, router, "priya", button(reply, "Confirm (level 2)"))
    sweep(demo, 24 * 8)
    assert len(dms(demo, "priya")) == 2


def test_a_lead_off_shift_is_asked_once_their_day_starts(demo: Services) -> None:
    age_skill(demo, "hannah", "refunds", 400, verified=True)
    demo.clock.now = demo.clock.now.replace(hour=20)  # type: ignore[attr-defined]
    jobs.ensure_recurring(demo)
    jobs.run_due(demo)
    assert dms(demo, "priya") == []  # 20:00 in London: her shift is 08:00–16:00
    for _ in range(12):
        sweep(demo)
    assert dms(demo, "priya") != []
    with demo.db.unit_of_work() as session:
        asked = people.by_key(session, "priya").reverify_asked_at
        assert asked is not None and asked.hour == 8


def test_two_workers_sweeping_at_once_ask_each_lead_once(
    demo_database_url: str, tmp_path: Path
) -> None:
    """Two worker processes' worth of services on one database (PostgreSQL: row locks and
    SKIP LOCKED; SQLite: one writer at a time), starting and sweeping at the same moment."""
    clock = Clock(demo_clock_now())
    workers = [
        Services(
            open_database(demo_database_url),
            Settings(database_url=demo_database_url, home=tmp_path, semantic=False),
            clock=clock,
        )
        for _ in range(2)
    ]
    try:
        age_skill(workers[0], "hannah", "refunds", 400, verified=True)
        age_skill(workers[0], "kasia", "international calls", 400, verified=True)
        for _ in range(3):  # three rounds: start, a week later, two weeks later
            barrier = threading.Barrier(2)
            failures: list[BaseException] = []

            def work(
                services: Services,
                barrier: threading.Barrier = barrier,
                failures: list[BaseException] = failures,
            ) -> None:
                try:
                    barrier.wait()
                    jobs.ensure_recurring(services)
                    for _ in range(3):
                        jobs.run_due(services)
                except BaseException as error:  # pragma: no cover - reported below
                    failures.append(error)

            threads = [threading.Thread(target=work, args=(w,)) for w in workers]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            assert not failures, failures
            clock.advance((7 * DAY).total_seconds())
        assert len(dms(workers[0], "priya")) == 3
        assert len(dms(workers[0], "kwame")) == 3
        with workers[0].db.unit_of_work() as session:
            count = session.scalar(
                select(func.count()).select_from(Job).where(Job.kind == earned.REVERIFY_SWEEP)
            )
            assert count == 2
            assert session.scalar(select(func.count()).select_from(Person)) == 30
    finally:
        for services in workers:
            services.db.dispose()


def demo_clock_now():  # type: ignore[no-untyped-def]
    from tests.conftest import NOW

    return NOW
