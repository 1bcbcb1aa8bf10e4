"""A whole huddle through the local chat: ask, open, escalate, reply, resolve, ask again."""

from __future__ import annotations

import io
import re

from sqlalchemy import func, select

from adapters.console.chat import ConsoleChat
from bot.db import open_database
from bot.db.models import Huddle, HuddleState, Job, JobState, KnowledgeEntry
from bot.router import Router
from bot.services import Services, people
from tests.helpers import Clock


class Screen:
    """The chat's terminal: what it printed since the last look."""

    def __init__(self, services: Services, router: Router, handle: str) -> None:
        self.out = io.StringIO()
        self.chat = ConsoleChat(services, router, self.out)
        assert self.chat.sign_in(handle)
        self.seen = 0

    def type(self, *lines: str) -> str:
        for line in lines:
            self.chat.handle(line)
            self.chat.tick()
        return self.fresh()

    def tick(self) -> str:
        self.chat.tick()
        return self.fresh()

    def fresh(self) -> str:
        text = self.out.getvalue()[self.seen :]
        self.seen = len(self.out.getvalue())
        return text

    def button(self, text: str, label: str) -> str:
        found = re.findall(rf"\[(!\d+) {re.escape(label)}\]", text)
        assert found, f"no [{label}] button in:\n{text}"
        return found[-1]


def _score(services: Services, key: str, query: str, asker: str) -> float:
    with services.db.unit_of_work() as session:
        requester = people.by_key(session, asker)
        ranking = services.matcher.rank(
            session, query, services.clock(), requester_id=requester.id, limit=30
        )
        found = [c.score for c in ranking.experts if c.key == key]
        return found[0] if found else 0.0


def test_a_huddle_from_question_to_saved_answer(demo: Services, router: Router) -> None:
    clock = demo.clock
    assert isinstance(clock, Clock)
    topic = "refund for a prepaid top-up"
    screen = Screen(demo, router, "alex")

    answer = screen.type(topic)
    start = screen.button(answer, "Start huddle thread")
    opened = screen.type(start)
    invited = re.search(r"Opened huddle thread #(\d+) in #billing-huddles with (.+)\. I'll", opened)
    assert invited, opened
    number, names = invited.group(1), invited.group(2).split(", ")
    assert len(names) == 2
    # The thread root names the asker and mentions the experts; each gets a direct message.
    assert f"── #billing-huddles ──\nHuddle thread #{number}: “{topic}”, asked by @alex." in opened
    assert opened.count("✉ to @") == 2

    # Nobody answers: nothing happens before the timeout, the ladder climbs after it.
    clock.advance(179)
    assert screen.tick() == ""
    clock.advance(2)
    escalated = screen.tick()
    assert "No answer yet, so I am also inviting @" in escalated, escalated
    third = re.search(r"also inviting @([\w.]+)", escalated).group(1)
    assert f"✉ to @{third}" in escalated
    assert third not in {"alex"}

    # The third expert answers in the thread; the ladder stops.
    reply = screen.type(f"/as {third}", f"huddle reply {number} Raise a Top-up Reversal, TU-07.")
    assert "│ " in reply and "Raise a Top-up Reversal, TU-07." in reply
    clock.advance(3600)
    assert "No answer yet" not in screen.tick()

    # Resolving asks for the conclusion, saves it and updates the thread root.
    before = _score(demo, third, topic, "alex")
    form = screen.type(f"huddle resolve {number}")
    assert "what did you conclude?" in form
    done = screen.type(
        "Refund a prepaid top-up sent to the wrong number",
        "Raise a Top-up Reversal with code TU-07; the unused credit returns in 3-5 days.",
        "refunds, prepaid top-up",
    )
    saved = re.search(r"saved as knowledge entry #(\d+), credited to (.+)\.", done)
    assert saved, done
    assert "Resolved by" in done and "the huddle thread now reads" in done

    # The next agent who asks sees that answer first, and the credited expert ranks higher.
    again = screen.type("/as jordan", topic)
    first_article = re.search(r"▤ #(\d+) ", again).group(1)
    assert first_article == saved.group(1)
    assert _score(demo, third, topic, "alex") > before
    with demo.db.unit_of_work() as session:
        huddle = session.get(Huddle, int(number))
        assert huddle.state == HuddleState.RESOLVED
        assert huddle.first_reply_at is not None
        entry = session.get(KnowledgeEntry, int(saved.group(1)))
        assert entry.huddle_id == huddle.id
        assert [a.key for a in entry.authors] == [third]


def test_a_restart_mid_huddle_fires_the_escalation_once(demo: Services, router: Router) -> None:
    clock = demo.clock
    screen = Screen(demo, router, "alex")
    opened = screen.type("huddle refund for a prepaid top-up")
    assert "Opened huddle thread" in opened

    # The process ends before the timeout; a new one starts on the same database.
    demo.db.dispose()
    restarted = Services(open_database(demo.db.url), demo.settings, clock=clock)
    try:
        again = Screen(restarted, router, "alex")
        clock.advance(200)
        first = again.tick()
        second = again.tick()
        # And an old worker still running does not fire it a second time.
        third = screen.tick()
        assert first.count("No answer yet") == 1
        assert "No answer yet" not in second + third
        with restarted.db.unit_of_work() as session:
            fired = session.scalar(
                select(func.count()).select_from(Job).where(Job.state == JobState.DONE)
            )
        assert fired == 1
    finally:
        restarted.db.dispose()
