"""Only the Microsoft 365 tenants whoknows serves are answered.

Activities with valid Bot Framework tokens from the local issuer, to the real
application: with no WHOKNOWS_TEAMS_TENANTS, the first tenant whose activity
arrives is served and kept; with it, exactly those. Someone from another tenant is
told so politely, nothing of theirs is kept, nobody is created, and it is audited.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sqlalchemy import func, select

from bot import messages
from bot.db.models import HomeWorkspace, Person, TeamsChannel, TeamsUser
from bot.router import Router
from bot.services import Services
from tests.adapters.teams.conftest import Teams
from tests.adapters.teams.fake_teams import TEAM, TENANT
from tests.helpers import audit_rows

OTHER = "0b1c2d3e-4f50-4a6b-8c7d-9e0f1a2b3c4d"
EVE = {
    "id": "29:eve",
    "name": "Eve Outsider",
    "aadObjectId": "eeeeeeee-0000-4000-8000-0000000000e1",
}


def kept(services: Services) -> list[int]:
    with services.db.unit_of_work() as session:
        return [
            session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Person, TeamsUser, TeamsChannel)
        ]


def from_elsewhere(teams: Teams, text: str = "", **fields: Any) -> dict[str, Any]:
    """Eve, of another organisation, in her own chat with the bot (or as `fields` say)."""
    activity = teams.activity("alex", text, **fields)
    activity["from"] = dict(EVE)
    activity["channelData"]["tenant"] = {"id": OTHER}
    activity["conversation"]["tenantId"] = OTHER
    if activity["conversation"]["conversationType"] == "personal":
        activity["conversation"]["id"] = "a:chat-29:eve"
    return activity


def texts(call_body: dict[str, Any]) -> str:
    return json.dumps(call_body, ensure_ascii=False)


def refusals(services: Services) -> list[tuple[str, str, str]]:
    return [
        (e.actor_label, e.target, json.loads(e.detail)["what"])
        for e in audit_rows(services)
        if e.action == "workspace.refused" and not e.allowed
    ]


def test_with_no_allow_list_the_first_tenant_seen_is_the_one_served(
    demo: Services, router: Router, teams_env
) -> None:
    before: list[list[int]] = []

    async def scenario(teams: Teams) -> None:
        before.append(kept(demo))
        assert (await teams.send(teams.activity("alex", "kb apn"))).status == 200
        await teams.connector.wait_for(lambda c: len(c.sent("POST", "/activities")) == 1)

        asked = from_elsewhere(teams, "dashboard")
        assert (await teams.send(asked)).status == 200
        await teams.connector.wait_for(lambda c: len(c.sent("POST", "/activities")) == 2)
        refusal = teams.connector.sent("POST", "/activities")[-1]
        assert refusal.path.startswith("/v3/conversations/a:chat-29:eve/activities")
        assert messages.TEAMS_NOT_SERVED in texts(refusal.body)
        assert "token=" not in texts(refusal.body)  # no dashboard link

        # Installed in a team of theirs: told once, no roster read, no channel kept.
        install = from_elsewhere(
            teams,
            kind="conversationUpdate",
            conversation="19:rival-general@thread.tacv2",
            conversation_type="channel",
            membersAdded=[{"id": teams.activity("alex")["recipient"]["id"]}],
            text=None,
        )
        install["channelData"]["team"] = {"id": "19:rival-general@thread.tacv2"}
        assert (await teams.send(install)).status == 200
        # Chatter in a channel of theirs: nothing at all.
        chatter = from_elsewhere(
            teams,
            "lunch?",
            conversation="19:rival-general@thread.tacv2",
            conversation_type="channel",
        )
        assert (await teams.send(chatter)).status == 200
        await teams.connector.wait_for(lambda c: len(c.sent("POST", "/activities")) == 3)
        await asyncio.sleep(0.5)
        assert len(teams.connector.sent("POST", "/activities")) == 3
        assert [c for c in teams.connector.calls if "members" in c.path] == []
        assert kept(demo)[0] == before[0][0]  # nobody new

    teams_env(demo, router, scenario)
    with demo.db.unit_of_work() as session:
        (home,) = session.scalars(select(HomeWorkspace)).all()
        assert (home.platform, home.workspace_id, home.how) == ("teams", TENANT, "first seen")
        assert (
            session.scalar(select(TeamsUser).where(TeamsUser.aad_object_id == EVE["aadObjectId"]))
            is None
        )
        assert session.scalar(select(TeamsChannel).where(TeamsChannel.tenant_id == OTHER)) is None
    assert refusals(demo) == [
        (f"teams:{EVE['aadObjectId']}", f"teams workspace {OTHER}", "a message"),
        (f"teams:{EVE['aadObjectId']}", f"teams workspace {OTHER}", "an installation"),
    ]


def test_the_allow_list_serves_its_tenants_only(demo: Services, router: Router, teams_env) -> None:
    async def scenario(teams: Teams) -> None:
        # Alex's tenant is not listed: refused, although it is the first to arrive.
        assert (await teams.send(teams.activity("alex", "kb apn"))).status == 200
        await teams.connector.wait_for(lambda c: len(c.sent("POST", "/activities")) == 1)
        assert messages.TEAMS_NOT_SERVED in texts(
            teams.connector.sent("POST", "/activities")[0].body
        )
        assert (await teams.send(from_elsewhere(teams, "kb apn"))).status == 200
        await teams.connector.wait_for(lambda c: len(c.sent("POST", "/activities")) == 2)
        answer = teams.connector.sent("POST", "/activities")[1]
        assert messages.TEAMS_NOT_SERVED not in texts(answer.body)

    teams_env(demo, router, scenario, env={"WHOKNOWS_TEAMS_TENANTS": f"{OTHER.upper()}"})
    with demo.db.unit_of_work() as session:
        assert session.scalars(select(HomeWorkspace)).all() == []


def test_a_team_kept_from_a_tenant_not_served_is_not_read_again(
    demo: Services, router: Router, teams_env
) -> None:
    """The daily roster read skips teams of a tenant that is not (or no longer) served."""

    async def scenario(teams: Teams) -> None:
        await asyncio.sleep(1.5)  # the start's roster check has run
        assert teams.connector.sent("GET", f"/v3/conversations/{TEAM}/pagedmembers") == []

    teams_env(
        demo, router, scenario, link=False, known_team=True, env={"WHOKNOWS_TEAMS_TENANTS": OTHER}
    )
