"""The Slack app tested against Slack's protocol: signed requests in, Web API calls out.

Requests carry real v0 signatures and go to the real aiohttp application
(`whoknows serve`'s); a local server plays the Slack Web API and response_url.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from adapters.server import build_app
from adapters.slack.acks import ACK_PRESSURE, ACK_WITHIN, DISPATCHING, FORM, HOLD_MAX_S
from adapters.slack.verify import sign
from bot.db.models import (
    Huddle,
    HuddleState,
    Inbound,
    InboundState,
    KnowledgeEntry,
    LabelledExample,
    Person,
)
from bot.router import Router
from bot.services import Services, people
from tests.adapters.slack.fake_slack import TEAM, FakeSlack

SECRET = "test-signing-secret"
SLACK_IDS = {"alex": "UALEX", "maria": "UMARIA", "omar": "UOMAR", "priya": "UPRIYA"}


def _link(services: Services) -> None:
    with services.db.unit_of_work() as session:
        for key, user in SLACK_IDS.items():
            people.link_identity(session, people.by_key(session, key), "slack", user)


Scenario = Callable[[TestClient, FakeSlack], Awaitable[None]]


def single_workspace(fake: FakeSlack) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.api_url,
    }


def run(
    services: Services,
    router: Router,
    scenario: Scenario,
    *,
    worker_interval: float = 0.05,
    env: Callable[[FakeSlack], dict[str, str]] = single_workspace,
    link: bool = True,
    fake: FakeSlack | None = None,
) -> FakeSlack:
    """Start the fake Slack and our server, run the scenario, stop both.

    `link`: the demo people get their Slack ids (SLACK_IDS) first. `fake`: a Slack
    prepared before our server starts (its directory is read at start)."""
    if link:
        _link(services)
    fake = FakeSlack() if fake is None else fake

    async def main() -> None:
        await fake.start()
        app = build_app(services, router, env(fake), worker_interval=worker_interval)
        client = TestClient(TestServer(app))
        await client.start_server()
        try:
            await scenario(client, fake)
        finally:
            await client.close()
            await fake.close()

    asyncio.run(main())
    return fake


async def post(
    client: TestClient,
    body: bytes,
    content_type: str,
    *,
    headers: dict[str, str] | None = None,
    timestamp: int | None = None,
) -> Any:
    signed = sign(SECRET, body, timestamp or int(time.time()))
    return await client.post(
        "/slack/events",
        data=body,
        headers={"Content-Type": content_type, **signed, **(headers or {})},
    )


def form(**fields: str) -> bytes:
    return urlencode(fields).encode()


TRIGGERS = itertools.count(1)


def slash(
    fake: FakeSlack,
    text: str,
    user: str = "UALEX",
    command: str = "/whoknows",
    *,
    key: str = "r1",
) -> bytes:
    """A slash command as Slack posts it; its answers go to `key`'s response_url."""
    return form(
        command=command,
        text=text,
        user_id=user,
        team_id=TEAM,
        channel_id="CGENERAL",
        response_url=fake.response_url(key),
        # Slack gives every invocation its own trigger id.
        trigger_id=f"trigger-{next(TRIGGERS)}",
        token="legacy",
    )


def block_actions(
    fake: FakeSlack,
    user: str,
    key: str,
    actions: list[dict[str, Any]],
    *,
    channel: str = "CGENERAL",
    message_ts: str = "1700000000.000001",
    picked: tuple[str, str, list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """A button pressed on a message, as Slack sends it; its response_url is `key`'s.
    `picked`: (block id, action id, selected options) of a multi-select in the message."""
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user},
        "team": {"id": TEAM},
        "channel": {"id": channel},
        "trigger_id": f"trigger-{key}",
        "response_url": fake.response_url(key),
        "container": {"type": "message", "channel_id": channel},
        "message": {"ts": message_ts},
        "actions": actions,
    }
    if picked is not None:
        block_id, action_id, options = picked
        payload["state"] = {
            "values": {
                block_id: {action_id: {"type": "multi_static_select", "selected_options": options}}
            }
        }
    return payload


def interactive(payload: dict[str, Any]) -> bytes:
    return form(payload=json.dumps(payload))


def event(event_body: dict[str, Any], event_id: str = "Ev1", team: str = TEAM) -> bytes:
    return json.dumps(
        {
            "type": "event_callback",
            "team_id": team,
            "api_app_id": "A1",
            "event_id": event_id,
            "event_time": int(time.time()),
            "event": event_body,
        }
    ).encode()


def all_text(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


# --- signatures -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tamper",
    [
        "body changed",
        "too old",
        "no headers",
        "ts abc",
        "ts empty",
        "ts 1.5",
        "ts 5000 digits",
        "non-ascii signature",
    ],
)
@pytest.mark.reliability(2, 3, 4, 5, 6)
def test_a_request_slack_did_not_sign_gets_401_and_does_nothing(
    demo: Services, router: Router, tamper: str
) -> None:
    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        body = slash(fake, "refunds")
        now = int(time.time())
        headers = sign(SECRET, body, now)
        if tamper == "body changed":
            body = body.replace(b"refunds", b"refundz")
        elif tamper == "too old":
            headers = sign(SECRET, body, now - 301)
        elif tamper == "no headers":
            headers = {}
        elif tamper.startswith("ts "):
            value = {"abc": "abc", "empty": "", "1.5": "1.5", "5000 digits": "9" * 5000}
            headers["X-Slack-Request-Timestamp"] = value[tamper[3:]]
        else:
            headers["X-Slack-Signature"] = headers["X-Slack-Signature"][:-1] + "é"
        response = await client.post(
            "/slack/events",
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded", **headers},
        )
        assert response.status == 401
        await asyncio.sleep(0.3)
        assert fake.besides_the_directory() == []

    run(demo, router, scenario)


@pytest.mark.reliability(7)
def test_ssl_check_with_a_bad_signature_runs_no_listener(demo: Services, router: Router) -> None:
    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        response = await client.post(
            "/slack/events",
            data=form(ssl_check="1", token="x"),
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Slack-Request-Timestamp": str(int(time.time())),
                "X-Slack-Signature": "v0=" + "0" * 64,
            },
        )
        assert response.status == 401
        assert fake.besides_the_directory() == []

    run(demo, router, scenario)


@pytest.mark.reliability(8)
def test_url_verification_echoes_the_challenge(demo: Services, router: Router) -> None:
    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        body = json.dumps({"type": "url_verification", "challenge": "abc123", "token": "t"})
        response = await post(client, body.encode(), "application/json")
        assert response.status == 200
        assert "abc123" in await response.text()

    run(demo, router, scenario)


# --- commands and answers ---------------------------------------------------------------


@pytest.mark.reliability(1, 10)
def test_whoknows_acks_at_once_and_answers_privately_with_cards(
    demo: Services, router: Router
) -> None:
    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        started = time.monotonic()
        response = await post(
            client, slash(fake, "refund for a prepaid top-up"), "application/x-www-form-urlencoded"
        )
        assert response.status == 200
        assert time.monotonic() - started < 3
        await fake.wait_for(lambda f: bool(f.called("response_url")))
        (answer,) = fake.called("response_url")
        assert answer["response_type"] == "ephemeral"
        text = all_text(answer["blocks"])
        assert "<@UMARIA>" in text  # a card for someone with a Slack account mentions them
        assert "Refund for a prepaid top-up made to the wrong number" in text
        actions = [b for b in answer["blocks"] if b["type"] == "actions"]
        assert any(e.get("action_id") == "huddle.start" for b in actions for e in b["elements"])

    run(demo, router, scenario)


@pytest.mark.reliability(13)
def test_hostile_knowledge_text_is_escaped(demo: Services, router: Router) -> None:
    with demo.db.unit_of_work() as session:
        from bot.services import knowledge

        knowledge.add_entry(
            session, "Zebra crossing <!channel> & <@U1>", "Zebra body <!here> text", [], []
        )

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        await post(
            client,
            slash(fake, "zebra crossing", command="/kb"),
            "application/x-www-form-urlencoded",
        )
        await fake.wait_for(lambda f: bool(f.called("response_url")))
        text = all_text(fake.called("response_url")[0]["blocks"])
        assert "&lt;!channel&gt; &amp; &lt;@U1&gt;" in text
        assert "<!channel>" not in text and "<!here>" not in text

    run(demo, router, scenario)


def test_a_huddle_from_the_button_to_the_saved_answer(demo: Services, router: Router) -> None:
    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        await post(
            client, slash(fake, "refund for a prepaid top-up"), "application/x-www-form-urlencoded"
        )
        await fake.wait_for(lambda f: bool(f.called("response_url")))
        blocks = fake.called("response_url")[0]["blocks"]
        start = next(
            e
            for b in blocks
            if b["type"] == "actions"
            for e in b["elements"]
            if e.get("action_id") == "huddle.start"
        )
        maria = person_id(demo, "maria")
        omar = person_id(demo, "omar")
        # The asker changes the picker to Maria and Omar, then presses Start.
        press = block_actions(
            fake,
            "UALEX",
            "r2",
            [
                {
                    "type": "button",
                    "action_id": start["action_id"],
                    "value": start["value"],
                    "block_id": "b2",
                }
            ],
            picked=("b1", "experts", [{"value": str(maria)}, {"value": str(omar)}]),
        )
        response = await post(client, interactive(press), "application/x-www-form-urlencoded")
        assert response.status == 200
        # The thread root in the team's huddle channel, and a DM to each expert.
        await fake.wait_for(lambda f: len(f.called("chat.postMessage")) >= 3)
        posts = fake.called("chat.postMessage")
        root = next(p for p in posts if p["channel"] == "billing-huddles")
        assert "<@UMARIA>" in all_text(root["blocks"]) and "<@UOMAR>" in all_text(root["blocks"])
        assert {c["users"] for c in fake.called("conversations.open")} == {"UMARIA", "UOMAR"}
        root_ts = next(
            c.args.get("ts")
            for c in fake.calls
            if c.method == "chat.postMessage" and c.args["channel"] == "billing-huddles"
        )
        with demo.db.unit_of_work() as session:
            huddle = session.scalars(select(Huddle)).one()
            assert huddle.platform == "slack" and huddle.thread_ref is not None
            thread_ts, number = huddle.thread_ref, huddle.id
        del root_ts

        # Omar answers in the thread: recorded, once, even when Slack retries the event.
        reply = {
            "type": "message",
            "user": "UOMAR",
            "text": "Raise a Top-up Reversal",
            "channel": "billing-huddles",
            "ts": "1700000999.000200",
            "thread_ts": thread_ts,
        }
        await post(client, event(reply, "EvReply"), "application/json")
        await post(
            client, event(reply, "EvReply"), "application/json", headers={"X-Slack-Retry-Num": "1"}
        )

        def replied(_: FakeSlack) -> bool:
            with demo.db.unit_of_work() as session:
                return session.get(Huddle, number).first_reply_at is not None

        await fake.wait_for(replied)

        # Resolve opens a modal; submitting it saves the entry and updates the root.
        resolve = dict(
            press,
            actions=[{"type": "button", "action_id": "huddle.resolve", "value": str(number)}],
            trigger_id="trigger-3",
        )
        await post(client, interactive(resolve), "application/x-www-form-urlencoded")
        await fake.wait_for(lambda f: bool(f.called("views.open")))
        view = fake.called("views.open")[0]["view"]
        assert view["callback_id"] == "huddle.resolve.submit"
        submission = {
            "type": "view_submission",
            "user": {"id": "UALEX"},
            "team": {"id": TEAM},
            "view": {
                "id": "V1",
                "type": "modal",
                "callback_id": view["callback_id"],
                "private_metadata": view["private_metadata"],
                "blocks": view["blocks"],
                "state": {
                    "values": {
                        "title": {
                            "title": {"type": "plain_text_input", "value": "Wrong-number top-ups"}
                        },
                        "answer": {
                            "answer": {"type": "plain_text_input", "value": "Reverse with TU-07."}
                        },
                        "tags": {"tags": {"type": "plain_text_input", "value": "refunds"}},
                    }
                },
            },
        }
        response = await post(client, interactive(submission), "application/x-www-form-urlencoded")
        assert response.status == 200
        await fake.wait_for(lambda f: bool(f.called("chat.update")))
        update = fake.called("chat.update")[-1]
        assert update["channel"] == "billing-huddles" and update["ts"] == thread_ts
        assert "saved as knowledge entry" in all_text(update["blocks"])

    run(demo, router, scenario)
    with demo.db.unit_of_work() as session:
        huddle = session.scalars(select(Huddle)).one()
        assert huddle.state == HuddleState.RESOLVED
        assert [p.person.key for p in huddle.participants if p.first_reply_at] == ["omar"]
        entry = session.scalar(select(KnowledgeEntry).where(KnowledgeEntry.huddle_id == huddle.id))
        assert [a.key for a in entry.authors] == ["omar"]


def person_id(services: Services, key: str) -> int:
    with services.db.unit_of_work() as session:
        return people.by_key(session, key).id


def _press(fake: FakeSlack, element: dict[str, Any], url: str) -> bytes:
    return interactive(
        {
            "type": "block_actions",
            "user": {"id": "UALEX"},
            "team": {"id": TEAM},
            "channel": {"id": "CGENERAL"},
            "trigger_id": f"trigger-{next(TRIGGERS)}",
            "response_url": fake.response_url(url),
            "container": {"type": "message", "channel_id": "CGENERAL"},
            "actions": [{"type": "button", "block_id": "b", **element}],
        }
    )


def test_helpful_and_message_on_an_expert_card_are_what_whoknows_learns_from(
    demo: Services, router: Router
) -> None:
    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        await post(
            client, slash(fake, "refund for a prepaid top-up"), "application/x-www-form-urlencoded"
        )
        await fake.wait_for(lambda f: bool(f.called("response_url")))
        blocks = fake.called("response_url")[0]["blocks"]
        # Each card: its section with the Message link, then its own Helpful button.
        card = next(i for i, b in enumerate(blocks) if "<@UMARIA>" in all_text([b]))
        message = blocks[card]["accessory"]
        assert message["url"].endswith("channel=UMARIA")
        assert message["action_id"] == "whoknows.contact"
        helpful = next(
            e for b in blocks[card + 1 : card + 3] if b["type"] == "actions" for e in b["elements"]
        )
        assert helpful["text"]["text"] == "Helpful"
        assert helpful["value"] == message["value"]
        for url in ("h1", "h2"):
            await post(client, _press(fake, helpful, url), "application/x-www-form-urlencoded")
        await fake.wait_for(lambda f: len(f.called("response_url")) == 3)
        said = [all_text(r["blocks"]) for r in fake.called("response_url")[1:]]
        assert "Thanks: noted that Maria Santos helped" in said[0]
        assert "already said Maria Santos helped" in said[1]
        # The Message link opens the chat in Slack; its click reaches us too, answered
        # with nothing, and kept as a contact until its window passes.
        link = {k: message[k] for k in ("action_id", "value", "url")}
        response = await post(client, _press(fake, link, "m1"), "application/x-www-form-urlencoded")
        assert response.status == 200
        await asyncio.sleep(0.5)
        assert len(fake.called("response_url")) == 3

    run(demo, router, scenario)
    maria = person_id(demo, "maria")
    with demo.db.unit_of_work() as session:
        rows = session.scalars(select(LabelledExample).order_by(LabelledExample.id)).all()
        assert [(r.source.value, r.person_id, r.pending_until is not None) for r in rows] == [
            ("helpful", maria, False),
            ("contact", maria, True),
        ]


@pytest.mark.reliability(9)
def test_a_retried_mention_is_answered_once(demo: Services, router: Router) -> None:
    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        mention = {
            "type": "app_mention",
            "user": "UALEX",
            "text": "<@UBOT> refund for a prepaid top-up",
            "channel": "CGENERAL",
            "ts": "1700000500.000100",
        }
        for retry in (None, "1", "2"):
            headers = {"X-Slack-Retry-Num": retry} if retry else {}
            response = await post(
                client, event(mention, "EvMention"), "application/json", headers=headers
            )
            assert response.status == 200
        await fake.wait_for(lambda f: bool(f.called("chat.postMessage")))
        await asyncio.sleep(0.5)
        answers = fake.called("chat.postMessage")
        assert len(answers) == 1
        assert answers[0]["thread_ts"] == "1700000500.000100"

    run(demo, router, scenario)


@pytest.mark.reliability(16)
def test_new_and_deleted_users_are_kept_in_step(demo: Services, router: Router) -> None:
    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        joined = {
            "type": "team_join",
            "user": {
                "id": "UNEW",
                "name": "kim",
                "tz": "Asia/Seoul",
                "profile": {"real_name": "Kim Min"},
            },
        }
        await post(client, event(joined, "EvJoin"), "application/json")
        gone = {
            "type": "user_change",
            "user": {
                "id": "UMARIA",
                "name": "maria",
                "deleted": True,
                "profile": {"real_name": "Maria Santos"},
            },
        }
        await post(client, event(gone, "EvGone"), "application/json")
        await asyncio.sleep(0.5)

    run(demo, router, scenario)
    with demo.db.unit_of_work() as session:
        kim = people.by_identity(session, "slack", "UNEW")
        assert (kim.display_name, kim.timezone, kim.key) == ("Kim Min", "Asia/Seoul", "kim")
        maria = session.scalar(select(Person).where(Person.key == "maria"))
        assert maria.deleted_at is not None


def test_the_home_tab_shows_my_skills(demo: Services, router: Router) -> None:
    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        opened = {"type": "app_home_opened", "user": "UPRIYA", "tab": "home", "channel": "DPRIYA"}
        await post(client, event(opened, "EvHome"), "application/json")
        await fake.wait_for(lambda f: bool(f.called("views.publish")))
        view = fake.called("views.publish")[0]
        assert view["user_id"] == "UPRIYA" and view["view"]["type"] == "home"
        text = all_text(view["view"]["blocks"])
        assert "refunds: level 5" in text
        assert "Billing:" in text  # a lead sees the team's coverage

    run(demo, router, scenario)


def test_the_message_shortcut_finds_experts_for_that_message(
    demo: Services, router: Router
) -> None:
    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        shortcut = {
            "type": "message_action",
            "callback_id": "find_expert",
            "user": {"id": "UALEX"},
            "team": {"id": TEAM},
            "channel": {"id": "CGENERAL"},
            "message": {"text": "customer topped up the wrong number, wants a refund", "ts": "1.2"},
            "response_url": fake.response_url("r3"),
            "trigger_id": "t",
        }
        await post(client, interactive(shortcut), "application/x-www-form-urlencoded")
        await fake.wait_for(lambda f: bool(f.called("response_url")))
        assert "Who knows about" in all_text(fake.called("response_url")[0]["blocks"])

    run(demo, router, scenario)


@pytest.mark.reliability(12)
@pytest.mark.parametrize(
    ("error", "explained"),
    [
        ("not_in_channel", "/invite @whoknows"),
        ("is_archived", "archived"),
        ("channel_not_found", "cannot see that channel"),
    ],
)
def test_a_channel_the_bot_cannot_post_in_fails_once_and_the_asker_hears_why(
    demo: Services, router: Router, error: str, explained: str
) -> None:
    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        fake.fail("chat.postMessage", error, channel="billing-huddles")
        await post(
            client,
            slash(fake, "huddle chargebacks <@UMARIA|maria>"),
            "application/x-www-form-urlencoded",
        )
        await fake.wait_for(lambda f: bool(f.called("response_url")))

        def told(f: FakeSlack) -> bool:
            return any(
                "could not post huddle thread" in c.get("text", "")
                for c in f.called("chat.postMessage")
            )

        await fake.wait_for(told)
        await asyncio.sleep(1.0)

    fake = run(demo, router, scenario)
    from bot.db.models import DeliveryState, Outbox

    with demo.db.unit_of_work() as session:
        root = session.scalars(select(Outbox).where(Outbox.is_root.is_(True))).one()
        assert root.state == DeliveryState.FAILED and root.error.startswith(error)
    root_posts = [c for c in fake.called("chat.postMessage") if c["channel"] == "billing-huddles"]
    assert len(root_posts) == 1  # no retry storm
    (notice,) = [
        c for c in fake.called("chat.postMessage") if "could not post" in c.get("text", "")
    ]
    assert notice["channel"] == "DUALEX"  # to the asker, directly
    assert explained in notice["text"]


def test_an_answer_refused_with_429_or_500_at_response_url_is_posted_again(
    demo: Services, router: Router
) -> None:
    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        fake.response_failures = [(429, 1), (500, None)]
        await post(
            client, slash(fake, "refund for a prepaid top-up"), "application/x-www-form-urlencoded"
        )
        await fake.wait_for(lambda f: bool(f.called("response_url")), timeout=20)
        await asyncio.sleep(0.5)

    fake = run(demo, router, scenario)
    refused = [c.at for c in fake.calls if c.method == "response_url.refused"]
    (answer,) = fake.called("response_url")  # then delivered, once
    delivered = next(c.at for c in fake.calls if c.method == "response_url")
    assert len(refused) == 2 and refused[1] - refused[0] >= 1.0  # after Retry-After
    assert delivered > refused[1]
    assert "Who knows about" in all_text(answer["blocks"])


def test_answers_go_through_the_proxy_set_in_the_environment(
    demo: Services, router: Router, monkeypatch: pytest.MonkeyPatch
) -> None:
    """HTTPS_PROXY, as slack_sdk's clients read it: here the fake Slack is the proxy, and
    the response_url's host does not resolve, so only a proxied answer arrives."""

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        monkeypatch.setenv("HTTPS_PROXY", str(fake.server.make_url("/")))
        for n in (1, 2):
            body = form(
                command="/whoknows",
                text="refund for a prepaid top-up",
                user_id="UALEX",
                team_id=TEAM,
                channel_id="CGENERAL",
                response_url=f"http://hooks.slack.invalid/response/proxied{n}",
                trigger_id=f"trigger-{next(TRIGGERS)}",
            )
            await post(client, body, "application/x-www-form-urlencoded")
        await fake.wait_for(lambda f: len(f.called("response_url")) == 2, timeout=20)

    fake = run(demo, router, scenario)
    keys = sorted(c.key for c in fake.calls if c.method == "response_url")
    assert keys == ["proxied1", "proxied2"]  # the first answer's proxy, and the next one's


@pytest.mark.reliability(11)
def test_a_rate_limited_post_is_retried_after_retry_after(demo: Services, router: Router) -> None:
    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        fake.fail(
            "chat.postMessage", "ratelimited", status=429, retry_after=2, channel="billing-huddles"
        )
        started = time.monotonic()
        await post(
            client,
            slash(fake, "huddle chargebacks <@UMARIA|maria>"),
            "application/x-www-form-urlencoded",
        )
        await fake.wait_for(
            lambda f: (
                len([c for c in f.called("chat.postMessage") if c["channel"] == "billing-huddles"])
                >= 2
            ),
            timeout=20,
        )
        tries = [
            c.at
            for c in fake.calls
            if c.method == "chat.postMessage" and c.args["channel"] == "billing-huddles"
        ]
        assert tries[1] - tries[0] >= 2.0
        # Not in the ack path: Slack had its answer long before the retry.
        (answer,) = fake.called("response_url")
        assert next(c.at for c in fake.calls if c.method == "response_url") - started < 2.0
        assert answer["response_type"] == "ephemeral"

    run(demo, router, scenario)


@pytest.mark.reliability(27)
def test_a_database_too_busy_to_keep_the_request_does_not_make_the_ack_late(
    demo: Services, router: Router
) -> None:
    held = 4.0  # longer than Slack waits for an ack (3 s)

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        # Another connection holds the write lock the ack path needs to keep the request.
        blocker = demo.db.engine.connect()
        blocker.begin()  # on SQLite: BEGIN IMMEDIATE
        if demo.db.backend == "postgresql":
            blocker.exec_driver_sql("LOCK TABLE inbound IN EXCLUSIVE MODE")
        started = time.monotonic()

        async def ask(after: float) -> float:
            """How long its ack took, for a command sent `after` seconds in."""
            await asyncio.sleep(after)
            sent = time.monotonic()
            response = await post(
                client,
                slash(fake, "refund for a prepaid top-up"),
                "application/x-www-form-urlencoded",
            )
            assert response.status == 200
            return time.monotonic() - sent

        try:
            # Two, a little apart: each is acked in time, counted from its own arrival.
            acks = await asyncio.gather(ask(0.0), ask(0.7))
            assert all(ACK_WITHIN <= acked < 3.0 for acked in acks), acks
            await asyncio.sleep(max(0.0, held - (time.monotonic() - started)))
        finally:
            blocker.rollback()
            blocker.close()
        # Once the database lets go, the requests are kept, answered once and closed.
        await fake.wait_for(lambda f: len(f.called("response_url")) == 2, timeout=30)
        for answer in fake.called("response_url"):
            assert "Who knows about" in str(answer["blocks"])

    run(demo, router, scenario)
    with demo.db.reading() as session:
        assert session.scalars(select(Inbound.state)).all() == [InboundState.DONE] * 2


def test_presence_of_the_people_shown_is_asked_of_slack(demo: Services, router: Router) -> None:
    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        fake.presence["UMARIA"] = "away"
        fake.dnd.add("UPRIYA")
        await post(
            client, slash(fake, "refund for a prepaid top-up"), "application/x-www-form-urlencoded"
        )
        await fake.wait_for(lambda f: len(f.called("users.getPresence")) >= 2)
        asked = {c["user"] for c in fake.called("users.getPresence")}
        assert {"UMARIA", "UPRIYA"} <= asked
        (dnd,) = fake.called("dnd.teamInfo")
        assert "UMARIA" in dnd["users"]

        def written(_: FakeSlack) -> bool:
            with demo.db.unit_of_work() as session:
                return people.by_key(session, "maria").presence.source == "slack-presence"

        await fake.wait_for(written)
        # Asked again at once: nobody is asked twice within a minute.
        await post(
            client, slash(fake, "refund for a prepaid top-up"), "application/x-www-form-urlencoded"
        )
        await fake.wait_for(lambda f: len(f.called("response_url")) >= 2)
        await asyncio.sleep(0.3)
        assert len(fake.called("dnd.teamInfo")) == 1

    run(demo, router, scenario)
    with demo.db.unit_of_work() as session:
        assert people.by_key(session, "maria").presence.status == "away"
        assert people.by_key(session, "priya").presence.status == "busy"


def test_presence_polling_keeps_within_slacks_rate_limits(demo: Services, router: Router) -> None:
    from slack_sdk.web.async_client import AsyncWebClient

    from adapters.slack.presence import SlackPresence

    keys = ("maria", "priya", "omar", "tomasz")
    shown = {person_id(demo, key): f"U{key.upper()}" for key in keys}

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        poller = SlackPresence(AsyncWebClient(token="xoxb-test", base_url=fake.api_url), demo)
        poller.per_minute["users.getPresence"] = 3  # Tier 3 is 50 a minute
        await poller.refresh(shown)
        assert len(fake.called("users.getPresence")) == 3
        # The one who did not fit is not asked about until the budget refills.
        await poller.refresh(shown)
        assert len(fake.called("users.getPresence")) == 3
        assert len(fake.called("dnd.teamInfo")) == 1

    run(demo, router, scenario)


def test_a_status_someone_chose_outlasts_slack_presence(demo: Services, router: Router) -> None:
    from slack_sdk.web.async_client import AsyncWebClient

    from adapters.slack.presence import SlackPresence

    tomasz, omar = person_id(demo, "tomasz"), person_id(demo, "omar")

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        fake.presence["UOMAR"] = "away"
        poller = SlackPresence(AsyncWebClient(token="xoxb-test", base_url=fake.api_url), demo)
        # Tomasz said "busy" in the bot (the demo's status); Slack says he is active.
        await poller.refresh({tomasz: "UTOMASZ", omar: "UOMAR"})

    run(demo, router, scenario)
    with demo.db.unit_of_work() as session:
        assert people.by_key(session, "tomasz").presence.status == "busy"
        assert people.by_key(session, "tomasz").presence.source != "slack-presence"
        assert people.by_key(session, "omar").presence.status == "away"


def test_a_refused_form_keeps_the_modal_open_with_the_reason(
    demo: Services, router: Router
) -> None:
    with demo.db.unit_of_work() as session:
        entry = session.scalars(select(KnowledgeEntry).order_by(KnowledgeEntry.id)).first()
        metadata, title = f"{entry.id}:{entry.version}", entry.title

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        submission = {
            "type": "view_submission",
            "user": {"id": "UPRIYA"},
            "team": {"id": TEAM},
            "view": {
                "id": "V2",
                "type": "modal",
                "callback_id": "kb.edit.submit",
                "private_metadata": metadata,
                "blocks": [{"type": "input", "block_id": "title"}],
                "state": {
                    "values": {
                        "title": {"title": {"type": "plain_text_input", "value": ""}},
                        "answer": {"answer": {"type": "plain_text_input", "value": ""}},
                    }
                },
            },
        }
        response = await post(client, interactive(submission), "application/x-www-form-urlencoded")
        assert response.status == 200
        body = await response.json()
        assert body["response_action"] == "errors"
        assert "kb edit" in body["errors"]["title"]

    run(demo, router, scenario)
    with demo.db.unit_of_work() as session:
        first = session.scalars(select(KnowledgeEntry).order_by(KnowledgeEntry.id)).first()
        assert first.title == title


@pytest.mark.reliability(30)
def test_a_burst_of_commands_is_acked_once_kept_and_dispatched_as_answers_go_out(
    demo: Services, router: Router
) -> None:
    """The ack waits for the keep, not for bolt: with every answer held up on its way
    out, a burst larger than bolt is given at once is acked and kept in full; once
    the answers flow, each command is answered once."""
    burst = DISPATCHING + 4

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        fake.hold_responses = True
        bodies = [
            form(
                command="/whoknows",
                text="refunds",
                user_id="UALEX",
                team_id=TEAM,
                channel_id="CGENERAL",
                response_url=fake.response_url(f"burst-{i}"),
                trigger_id=f"burst-{i}",
            )
            for i in range(burst)
        ]
        acks = await asyncio.gather(*(post(client, b, FORM) for b in bodies))
        assert [ack.status for ack in acks] == [200] * burst
        with demo.db.reading() as session:
            assert len(session.scalars(select(Inbound.id)).all()) == burst
        # Bolt has as many as it is given at once; their answers hang, so no more start.
        await fake.wait_for(lambda f: len(f.called("response_url")) == DISPATCHING)
        await asyncio.sleep(0.3)
        assert len(fake.called("response_url")) == DISPATCHING
        fake.hold_responses = False
        await fake.wait_for(lambda f: len(f.called("response_url")) == burst)
        keys = sorted(c.key for c in fake.calls if c.method == "response_url")
        assert keys == sorted(f"burst-{i}" for i in range(burst))

    run(demo, router, scenario)
    with demo.db.reading() as session:
        assert set(session.scalars(select(Inbound.state))) == {InboundState.DONE}


async def unacked_requests(client: TestClient, count: int) -> list[asyncio.StreamWriter]:
    """Requests that wait for their ack: each has sent its headers, not yet its body."""
    writers = []
    for _ in range(count):
        _, writer = await asyncio.open_connection(client.host, client.port)
        writer.write(
            b"POST /slack/events HTTP/1.1\r\nHost: localhost\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
        )
        await writer.drain()
        writers.append(writer)
    await asyncio.sleep(0.2)  # each is in the handler, reading its body
    return writers


@pytest.mark.reliability(30)
def test_while_requests_wait_for_their_ack_a_kept_command_waits_its_turn(
    demo: Services, router: Router
) -> None:
    """Acks first: while ACK_PRESSURE requests wait for their ack, a command that was
    kept and acked is not answered yet; it is once they are through, and within
    HOLD_MAX_S of its ack however long they last."""

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        pending = await unacked_requests(client, ACK_PRESSURE)
        ack = await post(client, slash(fake, "refunds"), FORM)
        assert ack.status == 200
        with demo.db.reading() as session:
            assert len(session.scalars(select(Inbound.id)).all()) == 1
        await asyncio.sleep(0.5)
        assert fake.called("response_url") == []  # held while the acks are due
        for writer in pending:
            writer.close()
        await fake.wait_for(lambda f: len(f.called("response_url")) == 1, timeout=1.0)

        # Pressure that does not ease holds a command no longer than HOLD_MAX_S.
        pending = await unacked_requests(client, ACK_PRESSURE)
        acked = time.monotonic()
        assert (await post(client, slash(fake, "refunds"), FORM)).status == 200
        await fake.wait_for(lambda f: len(f.called("response_url")) == 2, timeout=HOLD_MAX_S + 2)
        assert time.monotonic() - acked >= HOLD_MAX_S - 0.1
        for writer in pending:
            writer.close()

    run(demo, router, scenario)
    with demo.db.reading() as session:
        assert set(session.scalars(select(Inbound.state))) == {InboundState.DONE}


# --- signed but malformed ---------------------------------------------------------------


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


MALFORMED: dict[str, tuple[bytes, str]] = {
    "payload not JSON": (form(payload="{not json"), FORM),
    "payload a list": (form(payload="[1, 2]"), FORM),
    "payload a string": (form(payload='"block_actions"'), FORM),
    "payload nested 50,000 deep": (form(payload=_nested(50_000)), FORM),
    "command without user_id": (
        form(command="/whoknows", text="refunds", team_id=TEAM, channel_id="CGENERAL"),
        FORM,
    ),
    "command with an empty user_id": (
        form(command="/kb", text="refunds", user_id="", team_id=TEAM, channel_id="CGENERAL"),
        FORM,
    ),
    "block_actions without user": (
        interactive(
            {
                "type": "block_actions",
                "team": {"id": TEAM},
                "actions": [{"type": "button", "action_id": "kb.helpful", "value": "1"}],
            }
        ),
        FORM,
    ),
    "block_actions with a user that is a string": (
        interactive(
            {
                "type": "block_actions",
                "user": "UALEX",
                "team": {"id": TEAM},
                "actions": [{"type": "button", "action_id": "kb.helpful", "value": "1"}],
            }
        ),
        FORM,
    ),
    "block_actions without actions": (
        interactive({"type": "block_actions", "user": {"id": "UALEX"}, "team": {"id": TEAM}}),
        FORM,
    ),
    "view_submission without view": (
        interactive({"type": "view_submission", "user": {"id": "UALEX"}, "team": {"id": TEAM}}),
        FORM,
    ),
    "shortcut without user": (
        interactive({"type": "message_action", "callback_id": "find_expert", "team": {"id": TEAM}}),
        FORM,
    ),
    "event body a list": (b"[1, 2, 3]", "application/json"),
    "event body nested 50,000 deep": (_nested(50_000).encode(), "application/json"),
    "event that is not an object": (
        json.dumps(
            {"type": "event_callback", "team_id": TEAM, "event_id": "Ev9", "event": [1]}
        ).encode(),
        "application/json",
    ),
    "message event with a user that is an object": (
        event(
            {
                "type": "message",
                "user": {"id": "UALEX"},
                "text": "hi",
                "channel": "C1",
                "ts": "2.0",
                "thread_ts": "1.0",
            },
            "EvBad",
        ),
        "application/json",
    ),
}


@pytest.mark.parametrize("demo_database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("shape", list(MALFORMED))
def test_a_signed_but_malformed_request_gets_400_and_one_log_line(
    demo: Services, router: Router, shape: str, caplog: pytest.LogCaptureFixture
) -> None:
    body, content_type = MALFORMED[shape]

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        with caplog.at_level(logging.INFO):
            response = await post(client, body, content_type)
            assert response.status == 400
            assert "Traceback" not in await response.text()
            await asyncio.sleep(0.3)
        assert [c.method for c in fake.besides_the_directory()] == []

    run(demo, router, scenario)
    ours = [
        r
        for r in caplog.records
        # The directory's own progress lines (read at start) are not about the request.
        if r.name.startswith(("adapters", "bot", "slack")) and r.name != "adapters.slack.directory"
    ]
    assert [r.levelname for r in ours] == ["WARNING"], [r.getMessage() for r in ours]
    assert "malformed" in ours[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)
    with demo.db.unit_of_work() as session:
        assert session.scalars(select(Inbound)).all() == []
