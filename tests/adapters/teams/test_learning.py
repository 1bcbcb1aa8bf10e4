"""A learner through Teams' protocol: Bot Framework activities into the real app, the
connector's REST calls out to the fake Microsoft side. The learner is invited to observe
the next huddle thread on their topic (one mention, a Leave button), is not part of its
escalation, and their progress counts it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.db.models import Huddle, HuddleObserver
from bot.router import Router
from bot.services import Services
from tests.adapters.teams.conftest import Teams
from tests.adapters.teams.fake_teams import HUDDLES, USERS, FakeConnector
from tests.adapters.teams.test_app import card_of, text_of
from tests.adapters.teams.test_huddle import installed, root_posts, submits

TOPIC = "refund for a prepaid top-up"


def _proactive(connector: FakeConnector, user: str) -> list[Any]:
    """Messages the bot started in the user's 1:1 chat (not answers to what they wrote)."""
    path = f"/v3/conversations/a:chat-29:{user}/activities"
    return [c for c in connector.sent("POST", path) if c.path == path]


def _to(connector: FakeConnector, user: str) -> list[Any]:
    """Everything posted in the user's 1:1 chat."""
    return connector.sent("POST", f"/v3/conversations/a:chat-29:{user}/activities")


def _answer(connector: FakeConnector, activity: dict[str, Any]) -> str:
    return " ".join(
        text_of(card_of(c.body)) for c in connector.sent("POST", f"/activities/{activity['id']}")
    )


def test_a_learner_observes_a_huddle_thread_in_teams(
    demo: Services, router: Router, teams_env
) -> None:
    async def scenario(teams: Teams) -> None:
        connector = teams.connector
        await installed(teams)

        async def say(user: str, text: str) -> dict[str, Any]:
            activity = teams.activity(user, text)
            await teams.send(activity)
            await connector.wait_for(
                lambda c: bool(c.sent("POST", f"/activities/{activity['id']}"))
            )
            return activity

        await say("omar", "expertise tag refunds:4")
        learned = await say("omar", "expertise learn refunds")
        assert "you are learning “refunds”" in _answer(connector, learned)

        await say("alex", f"huddle {TOPIC}")
        await connector.wait_for(lambda c: bool(root_posts(c)))
        (root,) = root_posts(connector)
        post_id = root.answer["activityId"]
        thread = f"{HUDDLES};messageid={post_id}"

        def notes(c: FakeConnector) -> list[dict[str, Any]]:
            return [card_of(call.body) for call in c.sent("POST", f"{thread}/activities")]

        await connector.wait_for(lambda c: any("to learn" in text_of(n) for n in notes(c)))
        (note,) = [n for n in notes(connector) if "to learn" in text_of(n)]
        # Mentioned once, as learning, with a Leave button; not in the root, not messaged.
        assert "<at>Omar Haddad</at> is here to learn about refunds" in text_of(note)
        assert USERS["omar"].aad in {e["mentioned"]["id"] for e in note["msteams"]["entities"]}
        assert "Omar Haddad" not in text_of(card_of(root.body))
        assert not _proactive(connector, "omar")
        leave = submits(note)["huddle.leave"]

        # He writes in the thread: not an expert's reply.
        await teams.send(
            teams.activity(
                "omar", "Following along", conversation=thread, conversation_type="channel"
            )
        )

        def noted(_: FakeConnector) -> bool:
            with demo.db.unit_of_work() as session:
                seen = session.scalar(select(HuddleObserver))
                return seen is not None and seen.replied_at is not None

        await connector.wait_for(noted)
        # The timeout passes: the ladder climbs, and asks others than Omar.
        demo.clock.advance(demo.settings.escalation_timeout_s + 1)  # type: ignore[attr-defined]
        await connector.wait_for(lambda c: any("also inviting" in text_of(n) for n in notes(c)))
        climbed = next(n for n in notes(connector) if "also inviting" in text_of(n))
        assert "Omar Haddad" not in text_of(climbed)
        assert not _proactive(connector, "omar")

        # His profile counts the thread; he leaves it with one click, in the thread.
        profile = await say("omar", "expertise")
        assert "1 huddle thread observed" in _answer(connector, profile)
        press = teams.activity(
            "omar", value=leave, conversation=thread, conversation_type="channel"
        )
        await teams.send(press)
        # The answer is private: to his 1:1 chat, never the channel.
        await connector.wait_for(
            lambda c: any(
                "You stopped observing" in text_of(card_of(x.body)) for x in _to(c, "omar")
            )
        )
        assert not any("You stopped observing" in text_of(n) for n in notes(connector))

    teams_env(demo, router, scenario)
    with demo.db.unit_of_work() as session:
        huddle = session.scalars(select(Huddle)).one()
        assert huddle.platform == "teams" and huddle.first_reply_at is None
        assert huddle.ladder_step >= 1
        assert "omar" not in [p.person.key for p in huddle.participants]
        seen = session.scalar(select(HuddleObserver))
        assert seen.person.key == "omar" and seen.left_at is not None
