"""A learner through Slack's protocol: signed slash commands, thread events and button
presses into the real app, Web API calls out to the fake Slack. The learner is invited
to observe the next huddle thread on their topic (one mention, a Leave button), is not
part of its escalation, and their progress counts it."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.db.models import Huddle, HuddleObserver
from bot.router import Router
from bot.services import Services
from tests.adapters.slack.fake_slack import TEAM, FakeSlack
from tests.adapters.slack.test_app import all_text, event, interactive, post, run, slash
from tests.conformance.slack import message_problems

FORM = "application/x-www-form-urlencoded"
TOPIC = "refund for a prepaid top-up"


def _thread_posts(fake: FakeSlack) -> list[dict[str, Any]]:
    return [c for c in fake.called("chat.postMessage") if c.get("thread_ts")]


def _answers(fake: FakeSlack, key: str | None = None) -> str:
    """Everything answered at response_url (at one key's, when given)."""
    return all_text(
        [
            block
            for c in fake.calls
            if c.method == "response_url" and key in {None, c.key}
            for block in c.args.get("blocks", [])
        ]
    )


def _leave_button(message: dict[str, Any]) -> dict[str, Any]:
    return next(
        e
        for b in message["blocks"]
        if b["type"] == "actions"
        for e in b["elements"]
        if e["action_id"].split("~")[0] == "huddle.leave"
    )


def test_a_learner_observes_a_huddle_thread_in_slack(demo: Services, router: Router) -> None:
    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        for text in ("tag refunds:4", "learn refunds"):
            await post(client, slash(fake, text, user="UOMAR", command="/expertise"), FORM)
        await fake.wait_for(lambda f: len(f.called("response_url")) == 2)
        assert "you are learning “refunds”" in _answers(fake)

        await post(client, slash(fake, f"huddle {TOPIC}"), FORM)
        await fake.wait_for(lambda f: bool(_thread_posts(f)))
        (note,) = _thread_posts(fake)
        # In the thread, once: Omar mentioned as learning, with a Leave button.
        assert note["channel"] == "billing-huddles"
        text = all_text(note["blocks"])
        assert "<@UOMAR> is here to learn about refunds: observing only" in text
        assert message_problems(note) == []
        leave = _leave_button(note)
        root = next(c for c in fake.called("chat.postMessage") if not c.get("thread_ts"))
        assert "<@UOMAR>" not in all_text(root["blocks"])
        assert "UOMAR" not in {c["users"] for c in fake.called("conversations.open")}
        with demo.db.unit_of_work() as session:
            huddle = session.scalars(select(Huddle)).one()
            number, thread_ts = huddle.id, huddle.thread_ref

        # Omar writes in the thread: not an expert reply.
        said = {
            "type": "message",
            "user": "UOMAR",
            "text": "Following along",
            "channel": "billing-huddles",
            "ts": "1700000999.000300",
            "thread_ts": thread_ts,
        }
        await post(client, event(said, "EvOmar"), "application/json")

        def noted(_: FakeSlack) -> bool:
            with demo.db.unit_of_work() as session:
                seen = session.scalar(select(HuddleObserver))
                return seen is not None and seen.replied_at is not None

        await fake.wait_for(noted)
        # The timeout passes: the ladder climbs, and asks others than Omar.
        demo.clock.advance(demo.settings.escalation_timeout_s + 1)  # type: ignore[attr-defined]
        await fake.wait_for(
            lambda f: "also inviting" in all_text([c["blocks"] for c in _thread_posts(f)])
        )
        climbed = next(c for c in _thread_posts(fake) if "also inviting" in all_text(c["blocks"]))
        assert "<@UOMAR>" not in all_text(climbed["blocks"])
        assert "UOMAR" not in {c["users"] for c in fake.called("conversations.open")}

        # His profile counts the thread; then he leaves it with one click.
        await post(client, slash(fake, "", user="UOMAR", command="/expertise"), FORM)
        await fake.wait_for(lambda f: "1 huddle thread observed" in _answers(f))
        press = {
            "type": "block_actions",
            "user": {"id": "UOMAR"},
            "team": {"id": TEAM},
            "channel": {"id": "billing-huddles"},
            "trigger_id": "trigger-leave",
            "response_url": fake.response_url("leave"),
            "container": {"type": "message", "channel_id": "billing-huddles"},
            "message": {"ts": "1700000100.000100", "thread_ts": thread_ts},
            "actions": [
                {"type": "button", "action_id": leave["action_id"], "value": leave["value"]}
            ],
        }
        assert (await post(client, interactive(press), FORM)).status == 200
        await fake.wait_for(lambda f: "You stopped observing" in _answers(f, "leave"))
        assert f"huddle thread #{number}" in _answers(fake, "leave")

    run(demo, router, scenario)
    with demo.db.unit_of_work() as session:
        huddle = session.scalars(select(Huddle)).one()
        assert huddle.first_reply_at is None and huddle.ladder_step >= 1
        assert "omar" not in [p.person.key for p in huddle.participants]
        seen = session.scalar(select(HuddleObserver))
        assert seen.person.key == "omar" and seen.left_at is not None
