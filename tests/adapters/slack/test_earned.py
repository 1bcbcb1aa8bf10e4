"""Expertise that grows, through Slack's protocol: signed slash commands and button presses
to the real app, answers to the fake response_url, the home tab through views.publish."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from adapters.server import build_app
from bot.config import Settings
from bot.db import open_database
from bot.router import Router
from bot.services import Services
from tests.adapters.slack.fake_slack import TEAM, FakeSlack
from tests.adapters.slack.test_app import (
    all_text,
    event,
    interactive,
    post,
    run,
    single_workspace,
    slash,
)
from tests.earned import age_skill, resolve_huddles, skill_of

FORM = "application/x-www-form-urlencoded"
DAY = timedelta(days=1)


def buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        e for b in blocks if b["type"] == "actions" for e in b["elements"] if e["type"] == "button"
    ]


def button(blocks: list[dict[str, Any]], label: str, after: str = "") -> dict[str, Any]:
    """The first button labelled `label` in the actions block after the text `after`."""
    start = next(i for i, b in enumerate(blocks) if after in json.dumps(b, ensure_ascii=False))
    found = [e for e in buttons(blocks[start:]) if e["text"]["text"] == label]
    assert found, f"no {label!r} button after {after!r}"
    return found[0]


def press(fake: FakeSlack, user: str, pressed: dict[str, Any], *, home: bool = False) -> bytes:
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user},
        "team": {"id": TEAM},
        "trigger_id": f"trigger-{pressed['action_id']}",
        "actions": [
            {
                "type": "button",
                "action_id": pressed["action_id"],
                "value": pressed["value"],
                "block_id": "b1",
            }
        ],
    }
    if home:  # on the App Home tab: no response_url, the view instead
        payload.update(container={"type": "view", "view_id": "VHOME"}, view={"type": "home"})
    else:
        payload.update(
            response_url=fake.response_url(f"r-{pressed['action_id']}"),
            channel={"id": "DPRIYA"},
            container={"type": "message", "channel_id": "DPRIYA"},
            message={"ts": "1700000000.000001"},
        )
    return interactive(payload)


async def answer(client: TestClient, fake: FakeSlack, body: bytes) -> list[dict[str, Any]]:
    """Post a signed request; the blocks of the answer it gets at response_url."""
    seen = len(fake.called("response_url"))
    response = await post(client, body, FORM)
    assert response.status == 200
    await fake.wait_for(lambda f: len(f.called("response_url")) > seen)
    return fake.called("response_url")[seen]["blocks"]


def test_an_expert_suggested_in_slack_is_accepted_and_the_next_ranking_says_verified(
    demo: Services, router: Router
) -> None:
    huddles = resolve_huddles(demo)

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        listed = await answer(
            client, fake, slash(fake, "suggestions", user="UPRIYA", command="/expertise")
        )
        text = all_text(listed)
        assert "Omar Haddad (@omar): chargebacks, level 2 (not tagged)" in text
        assert "Evidence (3 resolved huddle threads)" in text
        assert all(f"huddle thread #{number}" in text for number in huddles)
        accept = button(listed, "Accept (level 2)", "Omar Haddad")
        done = all_text(await answer(client, fake, press(fake, "UPRIYA", accept)))
        assert "Omar Haddad's chargebacks is now verified at level 2" in done
        asked = await answer(client, fake, slash(fake, "chargebacks", user="UALEX"))
        omar = next(i for i, b in enumerate(asked) if "<@UOMAR>" in json.dumps(b))
        assert asked[omar + 1]["type"] == "context"
        reason = asked[omar + 1]["elements"][0]["text"]
        assert reason.startswith("✓ chargebacks level 2, verified by Priya Sharma"), reason

    run(demo, router, scenario)
    assert skill_of(demo, "omar", "chargebacks").verified_at == demo.clock()


def test_a_suggestion_dismissed_in_slack_stays_out_for_90_days(
    demo: Services, router: Router
) -> None:
    resolve_huddles(demo, helper="maria", tag="late fees")

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        def suggestions() -> bytes:
            return slash(fake, "suggestions", user="UPRIYA", command="/expertise")

        listed = await answer(client, fake, suggestions())
        dismiss = button(listed, "Dismiss", "Maria Santos")
        done = all_text(await answer(client, fake, press(fake, "UPRIYA", dismiss)))
        assert "not suggested again for 90 days" in done
        assert "Maria Santos" not in all_text(await answer(client, fake, suggestions()))
        demo.clock.advance((89 * DAY).total_seconds())  # type: ignore[attr-defined]
        assert "Maria Santos" not in all_text(await answer(client, fake, suggestions()))
        demo.clock.advance((2 * DAY).total_seconds())  # type: ignore[attr-defined]
        back = all_text(await answer(client, fake, suggestions()))
        assert "Maria Santos (@maria): late fees, level 2" in back

    run(demo, router, scenario)
    assert skill_of(demo, "maria", "late fees") is None


def test_the_home_tab_shows_a_leads_suggestions_and_a_press_there_updates_it(
    demo: Services, router: Router
) -> None:
    resolve_huddles(demo)

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        opened = {"type": "app_home_opened", "user": "UPRIYA", "tab": "home", "channel": "DPRIYA"}
        await post(client, event(opened, "EvHomeGrowth"), "application/json")
        await fake.wait_for(lambda f: bool(f.called("views.publish")))
        home = fake.called("views.publish")[0]["view"]["blocks"]
        assert "Suggested expertise for your team" in all_text(home)
        accept = button(home, "Accept (level 2)", "Omar Haddad")
        response = await post(client, press(fake, "UPRIYA", accept, home=True), FORM)
        assert response.status == 200
        await fake.wait_for(lambda f: len(f.called("views.publish")) >= 2)
        # The answer as a direct message, and the tab again without the suggestion.
        (said,) = [c for c in fake.called("chat.postMessage") if c["channel"] == "UPRIYA"]
        assert "now verified at level 2" in all_text(said["blocks"])
        again = fake.called("views.publish")[-1]["view"]["blocks"]
        assert "Omar Haddad (@omar): chargebacks" not in all_text(again)

    run(demo, router, scenario)
    assert skill_of(demo, "omar", "chargebacks").verified_at is not None


def test_two_servers_send_a_lead_one_reminder_a_week_and_one_click_confirms(
    demo: Services, router: Router, demo_database_url: str, tmp_path: Path
) -> None:
    """Two `whoknows serve` processes' worth of apps and workers on one database: the
    re-verify reminder goes to Priya's Slack DM once, again a week later, never twice."""
    age_skill(demo, "hannah", "refunds", 400, verified=True)
    other = Services(
        open_database(demo_database_url),
        Settings(database_url=demo_database_url, home=tmp_path, semantic=False),
        clock=demo.clock,
    )

    def reminders(fake: FakeSlack) -> list[dict[str, Any]]:
        return [
            c
            for c in fake.called("chat.postMessage")
            if "Hannah Brooks (@hannah): refunds level 2" in all_text(c.get("blocks", []))
        ]

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        second = TestClient(
            TestServer(build_app(other, router, single_workspace(fake), worker_interval=0.05))
        )
        await second.start_server()
        try:
            await fake.wait_for(lambda f: len(reminders(f)) == 1)
            await asyncio.sleep(0.5)  # both workers have swept since
            assert len(reminders(fake)) == 1
            assert {c["users"] for c in fake.called("conversations.open")} == {"UPRIYA"}
            demo.clock.advance((7 * DAY).total_seconds())  # type: ignore[attr-defined]
            await fake.wait_for(lambda f: len(reminders(f)) == 2)
            await asyncio.sleep(0.5)
            assert len(reminders(fake)) == 2
            confirm = button(reminders(fake)[-1]["blocks"], "Confirm (level 2)")
            done = await answer(client, fake, press(fake, "UPRIYA", confirm))
            assert "Confirmed Hannah Brooks's refunds at level 2" in all_text(done)
            demo.clock.advance((8 * DAY).total_seconds())  # type: ignore[attr-defined]
            await asyncio.sleep(0.5)
            assert len(reminders(fake)) == 2  # decided: no more reminders
        finally:
            await second.close()

    try:
        run(demo, router, scenario)
    finally:
        other.db.dispose()
    assert skill_of(demo, "hannah", "refunds").verified_at is not None
