"""Nobody takes a huddle thread over, and nobody is invited on a forged card, in Teams.

Activities carry Bot Framework tokens from the local issuer; the card data is
what a client could send instead of what the card held.
"""

from __future__ import annotations

import json

from sqlalchemy import select

from adapters.teams.render import ACTION_KEY, VALUE_KEY
from bot.db.models import AuditEntry, Huddle, HuddleState
from bot.router import Router
from bot.services import Services
from skills.huddle import start_button_value
from tests.adapters.teams.conftest import Teams
from tests.adapters.teams.test_app import card_of, text_of
from tests.adapters.teams.test_huddle import person_id


async def said(teams: Teams, activity: dict) -> str:
    """Send an activity and read the bot's answer to it."""
    await teams.send(activity)
    path = f"/activities/{activity['id']}"
    await teams.connector.wait_for(lambda c: bool(c.sent("POST", path)))
    return text_of(card_of(teams.connector.sent("POST", path)[0].body))


def test_an_uninvited_reply_gives_no_right_to_resolve_and_a_forged_card_invites_nobody(
    demo: Services, router: Router, teams_env
) -> None:
    daniel = person_id(demo, "daniel")

    async def scenario(teams: Teams) -> None:
        opened = await said(teams, teams.activity("alex", "huddle chargebacks @maria"))
        assert "Opened huddle thread" in opened
        with demo.db.reading() as session:
            number = session.scalars(select(Huddle.id)).one()
        # Omar, of the same team but not invited, replies: welcome.
        posted = await said(teams, teams.activity("omar", f"huddle reply {number} try TU-07"))
        assert "Posted in huddle thread" in posted
        # Then submits the resolve form he was never shown: refused.
        form = {
            ACTION_KEY: "huddle.resolve.submit",
            VALUE_KEY: str(number),
            "title": "Mine now",
            "answer": "Call 0900-SCAM",
            "tags": "",
        }
        refused = await said(teams, teams.activity("omar", value=form))
        assert "Only the asker, an invited expert or a lead" in refused
        # Alex's *Start huddle thread* card, its picker forged to an admin.
        start = {
            ACTION_KEY: "huddle.start",
            VALUE_KEY: start_button_value("refund for a prepaid top-up", [daniel]),
            "experts": str(daniel),
        }
        forged = await said(teams, teams.activity("alex", value=start))
        assert "I can invite the colleagues suggested for this question" in forged

    teams_env(demo, router, scenario, known_team=True)
    with demo.db.reading() as session:
        (huddle,) = session.scalars(select(Huddle)).all()
        assert huddle.state == HuddleState.OPEN
        rows = session.scalars(select(AuditEntry).where(AuditEntry.allowed.is_(False))).all()
        refusals = [(r.actor_label, r.action, r.target) for r in rows]
        assert refusals == [
            ("omar", "resolve_huddle", f"huddle:{huddle.id}"),
            ("alex", "invite_to_huddle", "huddle:new"),
        ]
        assert json.loads(rows[-1].detail)["people"] == ["daniel"]
