"""Expertise that grows, through the Bot Framework protocol: signed activities to the real
app, Adaptive Cards back through the fake connector, buttons pressed as Action.Submit."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from bot.router import Router
from bot.services import Services, earned
from tests.adapters.teams.conftest import Teams
from tests.adapters.teams.test_app import card_of, text_of
from tests.earned import resolve_huddles, skill_of

DAY = timedelta(days=1)


def submit_after(card: dict[str, Any], action_id: str, text: str) -> dict[str, Any]:
    """The data of the first `action_id` button after the block that says `text`."""
    seen = False
    for item in card["body"]:
        if text in json.dumps(item, ensure_ascii=False):
            seen = True
        for action in item.get("actions", []):
            if seen and action["data"]["wk.action"] == action_id:
                return action["data"]
    raise AssertionError(f"no {action_id} after {text!r}")


async def said(teams: Teams, user: str, text: str = "", **fields: Any) -> dict[str, Any]:
    """Send an activity from `user`; the card the bot answers it with."""
    activity = teams.activity(user, text, **fields)
    assert (await teams.send(activity)).status == 200
    path = f"/activities/{activity['id']}"
    await teams.connector.wait_for(lambda c: bool(c.sent("POST", path)))
    return card_of(teams.connector.sent("POST", path)[0].body)


def test_an_expert_suggested_in_teams_is_accepted_and_the_next_ranking_says_verified(
    demo: Services, router: Router, teams_env
) -> None:
    huddles = resolve_huddles(demo)

    async def scenario(teams: Teams) -> None:
        listed = await said(teams, "priya", "expertise suggestions")
        text = text_of(listed)
        assert "Omar Haddad (@omar): chargebacks, level 2 (not tagged)" in text
        assert "Evidence (3 resolved huddle threads)" in text
        assert all(f"huddle thread #{number}" in text for number in huddles)
        accept = submit_after(listed, earned.ACCEPT, "Omar Haddad")
        done = await said(teams, "priya", value=accept)
        assert "Omar Haddad's chargebacks is now verified at level 2" in text_of(done)
        asked = await said(teams, "alex", "chargebacks")
        omar = next(c for c in asked["body"] if "Omar Haddad" in json.dumps(c))
        reasons = [i["text"] for i in omar["items"] if i.get("isSubtle") and "level" in i["text"]]
        assert reasons and reasons[0].startswith("✓ chargebacks level 2, verified by Priya Sharma")

    teams_env(demo, router, scenario)
    assert skill_of(demo, "omar", "chargebacks").verified_at == demo.clock()


def test_a_suggestion_dismissed_in_teams_stays_out_for_90_days(
    demo: Services, router: Router, teams_env
) -> None:
    resolve_huddles(demo, helper="maria", tag="late fees")

    async def scenario(teams: Teams) -> None:
        listed = await said(teams, "priya", "expertise suggestions")
        dismiss = submit_after(listed, earned.DISMISS, "Maria Santos")
        done = await said(teams, "priya", value=dismiss)
        assert "not suggested again for 90 days" in text_of(done)
        assert "Maria Santos" not in text_of(await said(teams, "priya", "expertise suggestions"))
        demo.clock.advance((89 * DAY).total_seconds())  # type: ignore[attr-defined]
        assert "Maria Santos" not in text_of(await said(teams, "priya", "expertise suggestions"))
        demo.clock.advance((2 * DAY).total_seconds())  # type: ignore[attr-defined]
        back = text_of(await said(teams, "priya", "expertise suggestions"))
        assert "Maria Santos (@maria): late fees, level 2" in back

    teams_env(demo, router, scenario)
    assert skill_of(demo, "maria", "late fees") is None
