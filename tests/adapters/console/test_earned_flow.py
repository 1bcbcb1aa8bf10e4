"""Expertise that grows, through the local chat: an expert resolves three huddle threads on a
topic they are not tagged with, their lead sees it suggested with the evidence, accepts
or dismisses it in one press; a verified skill gone quiet asks its lead to re-verify."""

from __future__ import annotations

import re
from datetime import timedelta

from bot.router import Router
from bot.services import Services
from tests.adapters.console.test_huddle_flow import Screen
from tests.earned import age_skill, skill_of

DAY = timedelta(days=1)


def huddle_resolved_by(screen: Screen, helper: str, topic: str, tag: str, n: int) -> int:
    """Alex asks `helper` in a huddle thread, `helper` answers, Alex resolves it."""
    opened = screen.type("/as alex", f"huddle {topic} @{helper}")
    number = int(re.search(r"Opened huddle thread #(\d+)", opened).group(1))  # type: ignore[union-attr]
    screen.type(f"/as {helper}", f"huddle reply {number} Here is how, the {n}th way.")
    resolved = screen.type(
        "/as alex",
        f"huddle resolve {number} {topic}: {helper}'s way | {tag}, the {n}th way | {tag}",
    )
    assert f"Resolved huddle thread #{number}" in resolved, resolved
    return number


def test_three_huddle_threads_suggest_the_skill_and_accepting_verifies_it(
    demo: Services, router: Router
) -> None:
    screen = Screen(demo, router, "alex")
    numbers = [
        huddle_resolved_by(screen, "omar", topic, "chargebacks", n)
        for n, topic in enumerate(
            ("chargeback on a refunded payment", "chargeback letter", "chargeback from abroad")
        )
    ]
    before = screen.type("whoknows chargebacks")
    # Before: his answers show, earned without the tag.
    assert re.search(r"Omar Haddad .*\n(?:   knows: .*\n)?   why: ★ earned: wrote answers", before)

    listed = screen.type("/as priya", "expertise suggestions")
    assert "Omar Haddad (@omar): chargebacks, level 2 (not tagged)" in listed
    assert "Evidence (3 resolved huddle threads)" in listed
    for number in numbers:
        assert f"helped resolve huddle thread #{number}" in listed
    accepted = screen.type(screen.button(listed, "Accept (level 2)"))
    assert "Omar Haddad's chargebacks is now verified at level 2" in accepted
    assert skill_of(demo, "omar", "chargebacks").verified_at is not None

    after = screen.type("/as alex", "whoknows chargebacks")
    assert re.search(
        r"Omar Haddad .*\n   knows: chargebacks 2 ✓.*\n   why: ✓ chargebacks level 2, verified by "
        r"Priya Sharma",
        after,
    ), after
    assert "No suggestions" in screen.type("/as priya", "expertise suggestions")


def test_dismissing_keeps_the_suggestion_out_for_90_days(demo: Services, router: Router) -> None:
    screen = Screen(demo, router, "alex")
    for n, topic in enumerate(
        ("late fee twice", "late fee after a bank holiday", "late fee waiver")
    ):
        huddle_resolved_by(screen, "maria", topic, "late fees", n)
    listed = screen.type("/as priya", "expertise suggestions")
    assert "Maria Santos (@maria): late fees, level 2" in listed
    dismissed = screen.type(screen.button(listed, "Dismiss"))
    assert "not suggested again for 90 days" in dismissed
    assert skill_of(demo, "maria", "late fees") is None
    demo.clock.advance((89 * DAY).total_seconds())  # type: ignore[attr-defined]
    # (The weekly digest, posted meanwhile, may thank her: the suggestion is what is gone.)
    assert "Maria Santos (@maria): late fees" not in screen.type("expertise suggestions")
    demo.clock.advance((2 * DAY).total_seconds())  # type: ignore[attr-defined]
    assert "Maria Santos (@maria): late fees, level 2" in screen.type("expertise suggestions")


def test_a_verified_skill_gone_quiet_asks_its_lead_in_a_message_with_one_click(
    demo: Services, router: Router
) -> None:
    from bot.runtime import jobs

    age_skill(demo, "hannah", "refunds", 400, verified=True)
    screen = Screen(demo, router, "priya")
    jobs.ensure_recurring(demo)
    delivered = screen.tick()
    assert "Hannah Brooks (@hannah): refunds level 2, verified" in delivered
    pressed = screen.type(screen.button(delivered, "Lower to 1"))
    assert "Lowered Hannah Brooks's refunds from level 2 to 1" in pressed
    skill = skill_of(demo, "hannah", "refunds")
    assert (skill.level, skill.verified_at) == (1, demo.clock())
