"""A learner through the local chat: sets a goal, is invited to observe the next huddle
thread on it, is not part of its escalation, sees it counted, and leaves."""

from __future__ import annotations

import re

from bot.router import Router
from bot.services import Services
from tests.adapters.console.test_huddle_flow import Screen
from tests.helpers import Clock

TOPIC = "refund for a prepaid top-up"


def test_a_learner_observes_the_next_huddle_thread_on_the_topic(
    demo: Services, router: Router
) -> None:
    clock = demo.clock
    assert isinstance(clock, Clock)
    screen = Screen(demo, router, "omar")
    # Omar knows a little about refunds (self-declared) and wants to learn them.
    assert "Added to your expertise" in screen.type("expertise tag refunds:4")
    learning = screen.type("expertise learn refunds")
    assert "✓ Noted: you are learning “refunds”." in learning

    opened = screen.type("/as alex", f"huddle {TOPIC}")
    number = re.search(r"Opened huddle thread #(\d+)", opened).group(1)
    invited = re.search(rf"#{number} in #billing-huddles with (.+)\. I'll", opened).group(1)
    assert "Omar" not in invited
    # Mentioned once, in the thread, as learning; not messaged as an expert.
    assert opened.count("@omar") == 1
    assert "│ 📚 @omar is here to learn about refunds: observing only" in opened
    assert "✉ to @omar" not in opened
    leave = screen.button(opened, "Leave")

    # What he writes is not an expert's answer: the ladder still climbs, without him.
    screen.type("/as omar", f"huddle reply {number} Following this one")
    clock.advance(demo.settings.escalation_timeout_s + 1)
    escalated = screen.tick()
    assert "No answer yet, so I am also inviting @" in escalated
    assert "@omar" not in escalated and "✉ to @omar" not in escalated

    # His progress counts it; then he leaves with one press, and it no longer does.
    profile = screen.type("expertise")
    assert "refunds (since 23 Nov 2026): 1 huddle thread observed, 0 answers written" in profile
    assert f"You stopped observing huddle thread #{number}." in screen.type(leave)
    assert "0 huddle threads observed" in screen.type("expertise")
