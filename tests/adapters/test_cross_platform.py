"""One person on Slack and another on Teams, in one `whoknows serve`: a huddle thread opened
in Slack asks an expert who is only on Teams there, and their answer lands in the thread.

Both real protocols: a signed slash command into the Slack endpoint, Bot Framework
activities with valid tokens into the Teams endpoint, and the fake Slack Web API and
Bot Connector recording what the app sends out.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from adapters.server import build_app
from adapters.teams import store
from bot.db.models import Huddle, Job, JobState
from bot.router import Router
from bot.services import Services, accounts, people
from tests.adapters.slack.fake_slack import FakeSlack
from tests.adapters.slack.test_app import SECRET, post, slash
from tests.adapters.teams.conftest import Teams
from tests.adapters.teams.fake_teams import (
    APP_ID,
    APP_PASSWORD,
    BOT,
    TENANT,
    USERS,
    FakeConnector,
    FakeLogin,
)
from tests.adapters.teams.test_app import card_of, text_of
from tests.adapters.teams.test_huddle import submits

FORM = "application/x-www-form-urlencoded"
ANSWER = "Ask for the card statement before raising the dispute"


def _accounts(services: Services) -> None:
    """Alex is on Slack; Maria only on Teams, linked by an admin."""
    with services.db.unit_of_work() as session:
        people.link_identity(session, people.by_key(session, "alex"), "slack", "UALEX")
        maria = people.by_key(session, "maria")
        accounts.link_by_hand(session, maria, "teams", USERS["maria"].aad, actor_label="test")


def _seen_in_teams(services: Services, connector: FakeConnector) -> None:
    """What a roster listing of Maria's team left: a reference to message her proactively."""
    maria = USERS["maria"]
    with services.db.unit_of_work() as session:
        store.remember_user(
            session,
            aad_object_id=maria.aad,
            user_id=maria.teams_id,
            service_url=connector.url + "/",
            tenant_id=TENANT,
            bot_id=BOT,
            now=services.clock(),
        )


def _in_thread(fake: FakeSlack, thread_ts: str, words: str) -> list[dict[str, Any]]:
    return [
        call
        for call in fake.called("chat.postMessage")
        if call.get("thread_ts") == thread_ts
        and words in call.get("text", "") + json.dumps(call.get("blocks"), ensure_ascii=False)
    ]


def test_an_expert_only_on_teams_answers_a_slack_huddle_thread_from_teams(
    demo: Services, router: Router, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _accounts(demo)
    fake, login, connector = FakeSlack(), FakeLogin(tmp_path), FakeConnector()
    chat = f"a:chat-{USERS['maria'].teams_id}"

    async def scenario(teams: Teams) -> None:
        # Alex opens a huddle thread with Maria from Slack.
        opened = await post(teams.client, slash(fake, "huddle chargeback dispute @maria"), FORM)
        assert opened.status == 200
        await fake.wait_for(
            lambda f: any(c["channel"] == "billing-huddles" for c in f.called("chat.postMessage"))
        )
        with demo.db.unit_of_work() as session:
            huddle = session.scalars(select(Huddle)).one()
            assert huddle.platform == "slack"
            number = huddle.id
        await fake.wait_for(lambda _: _thread_ts(demo) is not None)
        root_ts = _thread_ts(demo)
        assert root_ts is not None

        # Maria is asked in a proactive Teams 1:1 chat, opened for her, saying where and how.
        await connector.wait_for(lambda c: bool(c.sent("POST", f"{chat}/activities")))
        (invitation,) = connector.sent("POST", f"{chat}/activities")
        card = card_of(invitation.body)
        said = text_of(card)
        assert "Alex Turner asked for your help: “chargeback dispute”" in said
        assert f"Huddle thread #{number} is on Slack, where you have no account yet" in said
        buttons = submits(card)
        assert set(buttons) == {"huddle.answer", "huddle.decline"}
        # The thread on Slack says she was asked on Teams.
        await fake.wait_for(lambda f: bool(_in_thread(f, root_ts, "asked them on Microsoft")))

        # She presses Answer: the form comes to her 1:1 chat.
        press = teams.activity(
            "maria", value=buttons["huddle.answer"], replyToId=invitation.answer["id"]
        )
        assert (await teams.send(press)).status == 200
        await connector.wait_for(lambda c: bool(c.sent("POST", f"{chat}/activities/{press['id']}")))
        (form_post,) = connector.sent("POST", f"{chat}/activities/{press['id']}")
        form = card_of(form_post.body)
        inputs = [e["id"] for e in form["body"][0]["items"] if e["type"].startswith("Input.")]
        assert inputs == ["answer"]

        # She sends it: posted in the Slack thread, under her name; the form gives way.
        submit = teams.activity(
            "maria",
            value={**submits(form)["huddle.answer.submit"], "answer": ANSWER},
            replyToId=form_post.answer["id"],
        )
        assert (await teams.send(submit)).status == 200
        await fake.wait_for(lambda f: bool(_in_thread(f, root_ts, f"Maria Santos: {ANSWER}")))
        (posted,) = _in_thread(fake, root_ts, f"Maria Santos: {ANSWER}")
        assert posted["channel"] == "billing-huddles"
        replaced = f"{chat}/activities/{form_post.answer['id']}"
        await connector.wait_for(lambda c: bool(c.sent("PUT", replaced)))
        assert "Posted your answer" in text_of(card_of(connector.sent("PUT", replaced)[0].body))

    async def main() -> None:
        await fake.start()
        await login.start()
        await connector.start()
        assert login.ca_file is not None
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(login.ca_file))
        _seen_in_teams(demo, connector)
        env = {
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": fake.api_url,
            "MICROSOFT_APP_ID": APP_ID,
            "MICROSOFT_APP_PASSWORD": APP_PASSWORD,
            "MICROSOFT_LOGIN_URL": login.url,
            "MICROSOFT_OPENID_METADATA_URL": login.metadata_url,
        }
        app = build_app(demo, router, env, worker_interval=0.05)
        client = TestClient(TestServer(app))
        await client.start_server()
        try:
            await scenario(Teams(client, login, connector, app))
        finally:
            await client.close()
            await connector.close()
            await login.close()
            await fake.close()

    asyncio.run(main())
    with demo.db.unit_of_work() as session:
        huddle = session.scalars(select(Huddle)).one()
        assert huddle.first_reply_at is not None
        (maria,) = huddle.participants
        assert maria.person.key == "maria" and maria.first_reply_at is not None
        ladder = session.scalars(select(Job).where(Job.kind == "escalate")).all()
        assert ladder and all(job.state == JobState.CANCELLED for job in ladder)


def _thread_ts(services: Services) -> str | None:
    with services.db.unit_of_work() as session:
        return session.scalars(select(Huddle.thread_ref)).one()
