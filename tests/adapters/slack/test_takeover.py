"""Nobody takes a huddle thread over, and nobody is invited on a forged button, in Slack.

As an attacker would: signed requests from a Slack user with no team and no part
in the huddle, and from an asker who edits the button's value and picker.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.db.models import AuditEntry, Huddle, HuddleState, KnowledgeEntry
from bot.router import Router
from bot.services import Services
from skills.huddle import start_button_value
from tests.adapters.slack.fake_slack import TEAM, FakeSlack
from tests.adapters.slack.test_app import (
    all_text,
    block_actions,
    event,
    interactive,
    person_id,
    post,
    run,
    slash,
)

FORM = "application/x-www-form-urlencoded"


def command(fake: FakeSlack, text: str, user: str, key: str) -> bytes:
    return slash(fake, text, user, key=key)


async def answer(fake: FakeSlack, key: str) -> str:
    """What Slack was told at the response_url of `key`."""
    await fake.wait_for(lambda f: any(c.key == key for c in f.calls))
    return all_text(next(c for c in fake.calls if c.key == key).args.get("blocks", []))


def resolve_view(number: int, user: str, title: str, body: str) -> dict[str, Any]:
    return {
        "type": "view_submission",
        "user": {"id": user},
        "team": {"id": TEAM},
        "view": {
            "id": "V1",
            "type": "modal",
            "callback_id": "huddle.resolve.submit",
            "private_metadata": str(number),
            "blocks": [{"type": "input", "block_id": "title"}],
            "state": {
                "values": {
                    "title": {"title": {"type": "plain_text_input", "value": title}},
                    "answer": {"answer": {"type": "plain_text_input", "value": body}},
                    "tags": {"tags": {"type": "plain_text_input", "value": "refunds"}},
                }
            },
        },
    }


def refusals(services: Services, actor: str) -> list[tuple[str, str]]:
    with services.db.reading() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.actor_label == actor, AuditEntry.allowed.is_(False))
        )
        return [(r.action, r.target) for r in rows]


def test_a_colleague_who_replied_cannot_resolve_cancel_or_reopen_and_each_try_is_audited(
    demo: Services, router: Router
) -> None:
    numbers: list[int] = []

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        await post(client, command(fake, "huddle chargebacks <@UMARIA|maria>", "UALEX", "o"), FORM)
        await answer(fake, "o")
        with demo.db.reading() as session:
            huddle = session.scalars(select(Huddle)).one()
            number = huddle.id
        numbers.append(number)
        await fake.wait_for(lambda f: bool(f.called("chat.postMessage")))

        # A Slack user nobody knows, with no team: refused at once.
        cancel = command(fake, f"huddle cancel {number}", "UHIJACK", "c1")
        await post(client, cancel, FORM)
        assert "Only the asker, an invited expert or a lead" in await answer(fake, "c1")
        # Replying is welcome: in the thread, and from the command.
        with demo.db.reading() as session:
            thread = session.get(Huddle, number).thread_ref
        reply = {
            "type": "message",
            "user": "UHIJACK",
            "text": "hello",
            "channel": "billing-huddles",
            "ts": "1700000999.000300",
            "thread_ts": thread,
        }
        await post(client, event(reply, "EvHijack"), "application/json")
        await post(client, command(fake, f"huddle reply {number} hello", "UHIJACK", "r"), FORM)
        assert "Posted in huddle thread" in await answer(fake, "r")

        # …but having replied is no right to resolve: not by command, button or modal.
        scam = f"huddle resolve {number} Hijacked answer | Call 0900-SCAM | refunds"
        await post(client, command(fake, scam, "UHIJACK", "s1"), FORM)
        assert "Only the asker" in await answer(fake, "s1")
        pressed = block_actions(
            fake,
            "UHIJACK",
            "b",
            [{"type": "button", "action_id": "huddle.resolve", "value": str(number)}],
            channel="billing-huddles",
            message_ts=thread,
        )
        await post(client, interactive(pressed), FORM)
        assert "Only the asker" in await answer(fake, "b")
        assert fake.called("views.open") == []  # no form to fill in vain
        view = resolve_view(number, "UHIJACK", "Hijacked answer", "Call 0900-SCAM")
        submitted = await post(client, interactive(view), FORM)
        refused = await submitted.json()
        assert refused["response_action"] == "errors"
        assert "Only the asker" in refused["errors"]["title"]
        await post(client, command(fake, f"huddle reopen {number}", "UHIJACK", "o2"), FORM)
        assert "Only the asker" in await answer(fake, "o2")

        # The asker resolves through the modal: allowed, and audited too.
        ok = await post(
            client, interactive(resolve_view(number, "UALEX", "Disputes", "TU-07")), FORM
        )
        assert ok.status == 200
        await fake.wait_for(lambda f: bool(f.called("chat.update")))

    run(demo, router, scenario)
    (number,) = numbers
    with demo.db.reading() as session:
        huddle = session.get(Huddle, number)
        assert huddle.state == HuddleState.RESOLVED
        joined = next(p for p in huddle.participants if p.person.key != "maria")
        assert not joined.invited and joined.first_reply_at is not None
        entries = session.scalars(select(KnowledgeEntry.body)).all()
        assert not any("0900-SCAM" in body for body in entries)
        resolved = session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "resolve_huddle", AuditEntry.allowed.is_(True)
            )
        ).one()
        assert resolved.actor_label == "alex" and resolved.target == f"huddle:{number}"
        assert json.loads(resolved.detail)["standing"] == "asker"
        hijacker = joined.person.key
    target = f"huddle:{number}"
    assert refusals(demo, hijacker) == [
        ("cancel_huddle", target),
        ("resolve_huddle", target),
        ("resolve_huddle", target),
        ("resolve_huddle", target),
        ("reopen_huddle", target),
    ]


def test_a_start_button_forged_to_invite_an_admin_and_another_teams_lead_invites_nobody(
    demo: Services, router: Router
) -> None:
    daniel, kwame = person_id(demo, "daniel"), person_id(demo, "kwame")
    topic = "refund for a prepaid top-up"

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        pressed = block_actions(
            fake,
            "UALEX",
            "f",
            [
                {
                    "type": "button",
                    "action_id": "huddle.start",
                    "value": start_button_value(topic, [daniel]),
                }
            ],
            picked=("b1", "experts", [{"value": str(daniel)}, {"value": str(kwame)}]),
        )
        await post(client, interactive(pressed), FORM)
        said = await answer(fake, "f")
        assert "I can invite the colleagues suggested for this question" in said
        # The picker left as the answer offered it (a suggested expert) still works.
        maria = person_id(demo, "maria")
        fair = dict(pressed, response_url=fake.response_url("g"), state={"values": {}})
        fair["actions"] = [dict(pressed["actions"][0], value=start_button_value(topic, [maria]))]
        await post(client, interactive(fair), FORM)
        assert "Opened huddle thread" in await answer(fake, "g")

    run(demo, router, scenario)
    with demo.db.reading() as session:
        (huddle,) = session.scalars(select(Huddle)).all()
        assert [p.person.key for p in huddle.participants] == ["maria"]
        (denied,) = session.scalars(
            select(AuditEntry).where(AuditEntry.action == "invite_to_huddle")
        ).all()
    assert (denied.actor_label, denied.allowed) == ("alex", False)
    assert json.loads(denied.detail)["people"] == ["daniel", "kwame"]
