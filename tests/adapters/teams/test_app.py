"""The Teams bot against the Bot Framework protocol: signed activities in, connector calls out.

Activities go to the real aiohttp application (`whoknows serve`'s) with
`serviceUrl` pointing at a local fake connector, and carry JWTs signed by a
local key whose OpenID metadata a local (HTTPS) login server publishes.
"""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import func, select

from adapters.teams.app import delivery_key
from bot.db.models import (
    Inbound,
    InboundState,
    LabelledExample,
    Person,
    PlatformEvent,
    QueryLog,
    TeamsChannel,
    TeamsUser,
)
from bot.router import Router
from bot.runtime import inbox
from bot.services import Services
from bot.types import Reply, Text
from tests.adapters.teams.conftest import Teams
from tests.adapters.teams.fake_teams import APP_ID, USERS

CARD = "application/vnd.microsoft.card.adaptive"


def card_of(call_body: dict[str, Any]) -> dict[str, Any]:
    activity = call_body.get("activity", call_body)
    (attachment,) = activity["attachments"]
    assert attachment["contentType"] == CARD
    return attachment["content"]


def text_of(card: dict[str, Any]) -> str:
    return json.dumps(card["body"], ensure_ascii=False)


def counts(services: Services) -> list[int]:
    """Rows an accepted activity would add: events, people, Teams references."""
    with services.db.unit_of_work() as session:
        return [
            session.scalar(select(func.count()).select_from(model)) or 0
            for model in (PlatformEvent, Person, TeamsUser, TeamsChannel)
        ]


# --- who may call /api/messages ---------------------------------------------------------


@pytest.mark.reliability(23)
def test_an_activity_without_a_token_gets_401_and_does_nothing(
    demo: Services, router: Router, teams_env
) -> None:
    before = counts(demo)

    async def scenario(teams: Teams) -> None:
        activity = teams.activity("alex", "refund for a prepaid top-up")
        response = await teams.send(activity, token="")
        assert response.status == 401
        response = await teams.send(activity, headers={"Authorization": "Basic abc"})
        assert response.status == 401
        await asyncio.sleep(0.3)
        assert teams.connector.calls == []

    teams_env(demo, router, scenario)
    assert counts(demo) == before


@pytest.mark.parametrize(
    "forgery",
    ["wrong audience", "other serviceUrl", "wrong issuer", "other key", "expired", "garbage"],
)
@pytest.mark.reliability(24)
def test_a_token_not_for_this_bot_or_this_service_gets_401(
    demo: Services, router: Router, teams_env, forgery: str
) -> None:
    before = counts(demo)

    async def scenario(teams: Teams) -> None:
        activity = teams.activity("alex", "refund for a prepaid top-up")
        url = activity["serviceUrl"]
        token = {
            "wrong audience": lambda: teams.login.token(url, aud="someone-elses-app"),
            "other serviceUrl": lambda: teams.login.token("https://smba.example.net/emea/"),
            "wrong issuer": lambda: teams.login.token(url, iss="https://sts.example.net/"),
            "other key": lambda: teams.login.token(
                url, signing_key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
            ),
            "expired": lambda: teams.login.token(url, exp=1_000_000, nbf=999_000, iat=999_000),
            "garbage": lambda: "not.a.jwt",
        }[forgery]()
        response = await teams.send(activity, token=token)
        assert response.status == 401
        await asyncio.sleep(0.3)
        assert teams.connector.calls == []

    teams_env(demo, router, scenario)
    assert counts(demo) == before


async def send_raw(teams: Teams, body: bytes, token: str) -> tuple[int, str]:
    response = await teams.client.post(
        "/api/messages",
        data=body,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    return response.status, await response.text()


def ours(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith(("adapters", "bot", "botbuilder"))]


@pytest.mark.parametrize("demo_database_url", ["sqlite"], indirect=True)
def test_a_bogus_token_is_refused_before_the_body_is_read(
    demo: Services, router: Router, teams_env, caplog: pytest.LogCaptureFixture
) -> None:
    """100 KB of nested brackets (the body never parsed) with a token nobody issued."""
    before = counts(demo)
    nested = b"[" * 50_000 + b"]" * 50_000

    async def scenario(teams: Teams) -> None:
        forged = teams.login.token(
            teams.connector.url + "/",
            signing_key=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        )
        with caplog.at_level(logging.INFO):
            for token in (forged, "not.a.jwt"):
                status, text = await send_raw(teams, nested, token)
                assert status == 401 and "Traceback" not in text
        await asyncio.sleep(0.3)
        assert teams.connector.calls == []

    teams_env(demo, router, scenario)
    assert counts(demo) == before
    assert [r.levelname for r in ours(caplog)] == ["WARNING", "WARNING"]
    assert not any(r.exc_info for r in caplog.records)


@pytest.mark.parametrize("demo_database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize(
    "shape", ["nested brackets", "not JSON", "a list", "no type", "a bad timestamp"]
)
def test_a_signed_but_malformed_activity_gets_400_and_one_log_line(
    demo: Services, router: Router, teams_env, caplog: pytest.LogCaptureFixture, shape: str
) -> None:
    before = counts(demo)

    async def scenario(teams: Teams) -> None:
        activity = teams.activity("alex", "refunds")
        body = {
            "nested brackets": b"[" * 50_000 + b"]" * 50_000,
            "not JSON": b"{activity",
            "a list": json.dumps([activity]).encode(),
            "no type": json.dumps({**activity, "type": None}).encode(),
            "a bad timestamp": json.dumps({**activity, "timestamp": "yesterday"}).encode(),
        }[shape]
        token = teams.login.token(activity["serviceUrl"])
        with caplog.at_level(logging.INFO):
            status, text = await send_raw(teams, body, token)
        assert status == 400 and "Traceback" not in text
        await asyncio.sleep(0.3)
        assert teams.connector.calls == []

    teams_env(demo, router, scenario)
    assert counts(demo) == before
    assert [r.levelname for r in ours(caplog)] == ["WARNING"], [
        r.getMessage() for r in ours(caplog)
    ]
    assert "malformed" in ours(caplog)[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)


def test_a_signed_question_in_a_personal_chat_gets_the_answer_card(
    demo: Services, router: Router, teams_env
) -> None:
    async def scenario(teams: Teams) -> None:
        activity = teams.activity("alex", "refund for a prepaid top-up")
        response = await teams.send(activity)
        assert response.status == 200
        await teams.connector.wait_for(lambda c: bool(c.sent("POST", "/activities")))
        (answer,) = teams.connector.sent("POST", "/activities")
        # A reply to the activity, in alex's chat, with the bot's own token.
        assert answer.path == f"/v3/conversations/a:chat-29:alex/activities/{activity['id']}"
        assert answer.body["replyToId"] == activity["id"]
        assert answer.authorization == "Bearer token:https://api.botframework.com/.default"
        card = card_of(answer.body)
        assert card["version"] == "1.5" and card["type"] == "AdaptiveCard"
        text = text_of(card)
        # Knowledge first, then the experts, then the actions.
        article = text.index("Refund for a prepaid top-up made to the wrong number")
        assert article < text.index("Maria Santos") < text.index("Start huddle thread")
        chat = f"https://teams.microsoft.com/l/chat/0/0?users={USERS['maria'].aad}"
        assert chat in text
        picker = next(e for e in card["body"] if e["type"] == "Input.ChoiceSet")
        assert picker["isMultiSelect"] is True and picker["id"] == "experts"
        submits = [
            a["data"]["wk.action"]
            for e in card["body"]
            if e["type"] == "ActionSet"
            for a in e["actions"]
            if a["type"] == "Action.Submit"
        ]
        assert "huddle.start" in submits and "kb.helpful" in submits
        # The token came from the bot's tenant-independent authority, with its secret.
        (grant,) = teams.login.token_requests
        assert grant["tenant"] == "botframework.com" and grant["client_id"] == APP_ID

    teams_env(demo, router, scenario)


def test_helpful_on_an_expert_card_says_who_helped_once(
    demo: Services, router: Router, teams_env
) -> None:
    async def scenario(teams: Teams) -> None:
        connector = teams.connector
        ask = teams.activity("alex", "refund for a prepaid top-up")
        await teams.send(ask)
        await connector.wait_for(lambda c: bool(c.sent("POST", f"/activities/{ask['id']}")))
        answer = connector.sent("POST", f"/activities/{ask['id']}")[0]
        card = card_of(answer.body)
        # In each expert's container, beside the link to chat with them.
        experts = [
            item
            for item in card["body"]
            if item["type"] == "Container" and "Chat" in json.dumps(item)
        ]
        assert experts
        (actions,) = [i for i in experts[0]["items"] if i["type"] == "ActionSet"]
        kinds = [a["type"] for a in actions["actions"]]
        assert kinds == ["Action.OpenUrl", "Action.Submit"]
        helpful = actions["actions"][1]
        assert helpful["title"] == "Helpful" and helpful["data"]["wk.action"] == "whoknows.helpful"
        said = []
        for _ in range(2):  # pressed twice: counted once
            press = teams.activity("alex", value=helpful["data"], replyToId=answer.answer["id"])
            await teams.send(press)
            path = f"/activities/{press['id']}"
            await connector.wait_for(lambda c, path=path: bool(c.sent("POST", path)))
            said.append(text_of(card_of(connector.sent("POST", path)[0].body)))
        first, second = said
        assert "Thanks: noted that" in first and "already said" in second

    teams_env(demo, router, scenario)
    with demo.db.unit_of_work() as session:
        rows = session.scalars(select(LabelledExample)).all()
        assert [(r.source.value, r.text) for r in rows] == [
            ("helpful", "refund for a prepaid top-up")
        ]


def test_the_same_activity_twice_is_answered_once(
    demo: Services, router: Router, teams_env
) -> None:
    async def scenario(teams: Teams) -> None:
        activity = teams.activity("alex", "kb apn")
        for _ in range(3):
            assert (await teams.send(activity)).status == 200
        await teams.connector.wait_for(lambda c: bool(c.sent("POST", "/activities")))
        await asyncio.sleep(0.5)
        assert len(teams.connector.sent("POST", "/activities")) == 1

    teams_env(demo, router, scenario)


def test_a_channel_mention_is_stripped_and_answered_in_the_thread(
    demo: Services, router: Router, teams_env
) -> None:
    async def scenario(teams: Teams) -> None:
        bot_text, bot_entity = teams.mention(None)
        conversation = "19:billing-huddles@thread.tacv2;messageid=777"
        activity = teams.activity(
            "alex",
            f"<p>{bot_text} kb apn &amp; roaming</p>",
            conversation=conversation,
            conversation_type="channel",
            entities=[bot_entity],
        )
        assert (await teams.send(activity)).status == 200
        await teams.connector.wait_for(lambda c: bool(c.sent("POST", "/activities")))
        (answer,) = teams.connector.sent("POST", "/activities")
        assert answer.path.startswith(f"/v3/conversations/{conversation}/activities")
        text = text_of(card_of(answer.body))
        assert "apn" in text.lower() and "whoknows</at>" not in text

    teams_env(demo, router, scenario)


def test_channel_chatter_without_a_mention_is_not_answered(
    demo: Services, router: Router, teams_env
) -> None:
    async def scenario(teams: Teams) -> None:
        activity = teams.activity(
            "alex", "lunch anyone?", conversation_type="channel", conversation=None
        )
        assert (await teams.send(activity)).status == 200
        await asyncio.sleep(0.5)
        assert teams.connector.sent("POST", "/activities") == []

    teams_env(demo, router, scenario)


def test_an_action_execute_invoke_is_answered_at_once_and_then_in_the_chat(
    demo: Services, router: Router, teams_env
) -> None:
    async def scenario(teams: Teams) -> None:
        invoke = teams.activity(
            "alex",
            kind="invoke",
            name="adaptiveCard/action",
            value={
                "action": {
                    "type": "Action.Execute",
                    "verb": "kb.helpful",
                    "data": {"wk.action": "kb.helpful", "wk.value": "1"},
                }
            },
        )
        response = await teams.send(invoke)
        assert response.status == 200
        assert (await response.json())["statusCode"] == 200
        await teams.connector.wait_for(lambda c: bool(c.sent("POST", "/activities")))
        text = text_of(card_of(teams.connector.sent("POST", "/activities")[0].body))
        assert "helpful" in text

    teams_env(demo, router, scenario)


def test_without_an_app_id_only_loopback_requests_are_taken(
    demo: Services, router: Router, teams_env
) -> None:
    async def scenario(teams: Teams) -> None:
        # The test client talks to 127.0.0.1: local development, no token needed.
        response = await teams.send(teams.activity("alex", "kb apn"), token="")
        assert response.status == 200
        await teams.connector.wait_for(lambda c: bool(c.sent("POST", "/activities")))
        assert teams.connector.sent("POST", "/activities")[0].authorization is None

    teams_env(
        demo,
        router,
        scenario,
        env={"MICROSOFT_APP_ID": "", "MICROSOFT_APP_PASSWORD": "", "WHOKNOWS_TEAMS_LOCAL": "1"},
    )


# --- kept from before the 200 until answered (bot/runtime/inbox.py) -------------------------


def _teams_inbound(services: Services) -> list[Inbound]:
    with services.db.unit_of_work() as session:
        rows = session.scalars(
            select(Inbound).where(Inbound.platform == "teams").order_by(Inbound.id)
        ).all()
        session.expunge_all()
        return list(rows)


def _left_behind(services: Services, activity: dict[str, Any], reply: Reply | None) -> int:
    """An activity kept, and answered (with `reply`) or not, by a process that then died:
    its lease ran out a minute ago."""
    lease = timedelta(seconds=services.settings.request_lease_s)
    then = services.clock() - 2 * lease
    with services.db.unit_of_work() as session:
        payload = {"kind": "activity", "body": activity}
        (kept,) = inbox.accept_many(session, "teams", [(delivery_key(activity), payload)], then)
        assert kept is not None
        if reply is not None:
            inbox.answered(session, kept, reply, then, lease)
    return kept


async def _closed(services: Services) -> list[Inbound]:
    """The Teams rows kept, once every one is closed (done marks linger a little)."""
    for _ in range(100):
        rows = _teams_inbound(services)
        if rows and all(row.state == InboundState.DONE for row in rows):
            break
        await asyncio.sleep(0.05)
    return rows


def _asked(services: Services) -> int:
    with services.db.unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(QueryLog)) or 0


@pytest.mark.reliability(29)
def test_a_question_is_kept_before_its_200_and_closed_once_answered(
    demo: Services, router: Router, teams_env
) -> None:
    async def scenario(teams: Teams) -> None:
        activity = teams.activity("alex", "refund for a prepaid top-up")
        assert (await teams.send(activity)).status == 200
        await teams.connector.wait_for(lambda c: bool(c.sent("POST", "/activities")))
        (row,) = await _closed(demo)
        assert row.key == delivery_key(activity)
        assert (row.state, row.payload, row.reply) == (InboundState.DONE, None, None)

    teams_env(demo, router, scenario)


@pytest.mark.reliability(29)
def test_a_question_whose_process_died_after_its_200_is_answered_by_a_worker(
    demo: Services, router: Router, teams_env
) -> None:
    async def scenario(teams: Teams) -> None:
        activity = teams.activity("alex", "refund for a prepaid top-up")
        kept = _left_behind(demo, activity, None)
        await teams.connector.wait_for(lambda c: bool(c.sent("POST", "/activities")))
        (answer,) = teams.connector.sent("POST", "/activities")
        assert answer.path.endswith(f"/activities/{activity['id']}")
        assert "Maria Santos" in text_of(card_of(answer.body))
        assert [(r.id, r.state) for r in await _closed(demo)] == [(kept, InboundState.DONE)]
        # Delivered again by Teams, it is the same activity: not answered twice.
        assert (await teams.send(activity)).status == 200
        await asyncio.sleep(0.5)
        assert len(teams.connector.sent("POST", "/activities")) == 1

    teams_env(demo, router, scenario)


@pytest.mark.reliability(29)
def test_a_kept_answer_is_delivered_without_running_the_question_again(
    demo: Services, router: Router, teams_env
) -> None:
    async def scenario(teams: Teams) -> None:
        activity = teams.activity("alex", "refund for a prepaid top-up")
        asked = _asked(demo)
        kept = _left_behind(demo, activity, Reply((Text("The answer kept with its request"),)))
        await teams.connector.wait_for(lambda c: bool(c.sent("POST", "/activities")))
        (answer,) = teams.connector.sent("POST", "/activities")
        assert "The answer kept with its request" in json.dumps(answer.body)
        assert [(r.id, r.state) for r in await _closed(demo)] == [(kept, InboundState.DONE)]
        assert _asked(demo) == asked  # the question was not ranked a second time

    teams_env(demo, router, scenario)
