"""Only the Slack workspaces whoknows serves are answered; an install elsewhere is refused.

Signed requests to the real application, Slack played by the fake Web API: with one
bot token the token's workspace is served; installed by OAuth with no allow-list, the
first workspace installed; with WHOKNOWS_SLACK_WORKSPACES, exactly those (an
Enterprise Grid org's id serves its workspaces). Anyone else is told so politely, is
never made a person, and the attempt is audited.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest
from aiohttp.test_utils import TestClient
from slack_sdk.oauth.installation_store import Installation
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from sqlalchemy import func, select

from bot import messages
from bot.db.models import HomeWorkspace, Identity, Inbound, InboundState, Person
from bot.router import Router
from bot.services import Services
from tests.adapters.slack.fake_slack import CLIENT_ID, FakeSlack
from tests.adapters.slack.test_app import FORM, event, form, interactive, post, run
from tests.adapters.slack.test_app import slash as slash_here
from tests.adapters.slack.test_oauth import (
    answers,
    come_back,
    command,
    first_install_env,
    install,
    rows,
    slash,
    start,
    user,
)
from tests.adapters.slack.test_oauth import run as run_installed
from tests.helpers import audit_rows

OTHER = "T0OTHER"
NOT_SERVED = "works only in the Slack workspaces it was set up for"


def people_count(services: Services) -> tuple[int, int]:
    with services.db.unit_of_work() as session:
        return (
            session.scalar(select(func.count()).select_from(Person)) or 0,
            session.scalar(select(func.count()).select_from(Identity)) or 0,
        )


def refusals(services: Services) -> list[tuple[str, str, str]]:
    return [
        (e.actor_label, e.target, json.loads(e.detail)["what"])
        for e in audit_rows(services)
        if e.action == "workspace.refused" and not e.allowed
    ]


def known(services: Services, slack_id: str) -> bool:
    with services.db.unit_of_work() as session:
        found = session.scalar(
            select(Identity).where(Identity.platform == "slack", Identity.external_id == slack_id)
        )
        return found is not None


def press(fake: FakeSlack, user_id: str, team: str, key: str) -> bytes:
    return interactive(
        {
            "type": "block_actions",
            "user": {"id": user_id, "team_id": team},
            "team": {"id": team},
            "channel": {"id": "COUT"},
            "response_url": fake.response_url(key),
            "trigger_id": f"trigger-{key}",
            "actions": [{"type": "button", "action_id": "kb.helpful", "value": "1"}],
        }
    )


# --- one bot token ------------------------------------------------------------------------


def test_another_workspace_than_the_bot_tokens_is_refused_politely_and_keeps_nothing(
    demo: Services, router: Router
) -> None:
    before: list[tuple[int, int]] = []

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        before.append(people_count(demo))  # the demo org, linked to its Slack ids
        fake.users["UOUT"] = {"id": "UOUT", "name": "mallory", "team_id": OTHER}
        body = form(
            command="/whoknows",
            text="dashboard",
            user_id="UOUT",
            team_id=OTHER,
            channel_id="COUT",
            response_url=fake.response_url("out"),
            trigger_id="trigger-out",
        )
        assert (await post(client, body, FORM)).status == 200
        assert (await post(client, press(fake, "UOUT", OTHER, "press"), FORM)).status == 200
        mention = {
            "type": "app_mention",
            "user": "UOUT",
            "text": "<@UBOT> refunds",
            "channel": "COUT",
            "ts": "1700000600.000100",
        }
        assert (
            await post(client, event(mention, "EvOut1", team=OTHER), "application/json")
        ).status == 200
        # Nothing else from there is taken in: a thread reply, a new member.
        reply = {
            "type": "message",
            "user": "UOUT",
            "text": "I know this",
            "channel": "COUT",
            "ts": "1700000601.000100",
            "thread_ts": "1700000600.000100",
        }
        joined = {"type": "team_join", "user": {"id": "UOUT2", "name": "trudy", "team_id": OTHER}}
        for n, what in enumerate((reply, joined)):
            response = await post(
                client, event(what, f"EvOut{n + 2}", team=OTHER), "application/json"
            )
            assert response.status == 200
        await fake.wait_for(lambda f: len(answers(f, "out")) == 1 and len(answers(f, "press")) == 1)
        await fake.wait_for(lambda f: bool(f.called("chat.postMessage")))
        for said in (
            *answers(fake, "out"),
            *answers(fake, "press"),
            *fake.called("chat.postMessage"),
        ):
            assert said["text"] == messages.SLACK_NOT_SERVED
            assert "token=" not in json.dumps(said)  # no dashboard link
        assert fake.called("chat.postMessage")[0]["thread_ts"] == "1700000600.000100"
        assert not fake.called("users.info")

        # The bot token's own workspace is answered as ever.
        assert (await post(client, slash_here(fake, "kb apn"), FORM)).status == 200
        await fake.wait_for(lambda f: bool(answers(f, "r1")))
        assert NOT_SERVED not in json.dumps(answers(fake, "r1"))
        await asyncio.sleep(0.3)

    run(demo, router, scenario)
    assert [people_count(demo)] == before
    assert not known(demo, "UOUT") and not known(demo, "UOUT2")
    target = f"slack workspace {OTHER}"
    assert refusals(demo) == [
        ("slack:UOUT", target, "a /whoknows command"),
        ("slack:UOUT", target, "block_actions"),
        ("slack:UOUT", target, "app_mention"),
    ]
    with demo.db.unit_of_work() as session:
        assert set(session.scalars(select(Inbound.state))) == {InboundState.DONE}


def test_someone_from_another_organisation_in_a_shared_channel_is_not_made_a_person(
    demo: Services, router: Router
) -> None:
    """Slack Connect: a channel shared with another organisation's workspace."""

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        fake.users["UEXT"] = {"id": "UEXT", "name": "eve", "team_id": "T0EXT"}
        reply = {
            "type": "message",
            "user": "UEXT",
            "user_team": "T0EXT",
            "text": "call 0900-SCAM",
            "channel": "CSHARED",
            "ts": "1700000701.000100",
            "thread_ts": "1700000700.000100",
        }
        shared = json.loads(event(reply, "EvExt"))
        shared["is_ext_shared_channel"] = True
        assert (await post(client, json.dumps(shared).encode(), "application/json")).status == 200
        # Mentioned by a colleague: Slack's profile places them elsewhere.
        asked = slash_here(fake, "huddle refunds <@UEXT|eve>")
        assert (await post(client, asked, FORM)).status == 200
        await fake.wait_for(lambda f: bool(answers(f, "r1")))
        assert fake.called("users.info") == [{"user": "UEXT"}]
        await asyncio.sleep(0.3)

    run(demo, router, scenario)
    assert not known(demo, "UEXT")


# --- installed by OAuth -------------------------------------------------------------------


def keep_installation(services: Services, fake: FakeSlack, team: str) -> None:
    """An installation kept from before the allow-list (its token one Slack issued)."""
    token = f"xoxb-{team}-old"
    fake.tokens[token] = team
    SQLAlchemyInstallationStore(client_id=CLIENT_ID, engine=services.db.engine).save(
        Installation(
            app_id="A1",
            team_id=team,
            team_name=team,
            bot_token=token,
            bot_id=f"B{team}",
            bot_user_id=f"UBOT{team}",
            user_id=f"UADMIN{team}",
            installed_at=datetime.now(UTC).timestamp(),
        )
    )


def test_with_no_allow_list_the_first_workspace_installed_is_the_one_served(
    services: Services, router: Router
) -> None:
    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        fake.users.update(
            {"UANN": user("UANN", "T0AAA", "ann"), "UBEN": user("UBEN", "T0BBB", "ben")}
        )
        await install(client, fake, "T0AAA", "Acme Support")
        _, state = await start(client)
        fake.grant("code-b", "T0BBB", "Rival Corp")
        response = await come_back(client, state, code="code-b")
        page = await response.text()
        assert response.status == 403 and "whoknows was not installed" in page
        assert "not installed in Rival Corp" in page and "T0BBB" in page
        # Slack was asked to take the app out of there again, with that install's token.
        (uninstall,) = [c for c in fake.calls if c.method == "apps.uninstall"]
        assert fake.revoked and uninstall.token in fake.revoked
        assert uninstall.args["client_id"] == CLIENT_ID

        # A workspace installed before there was an allow-list is not served either.
        keep_installation(services, fake, "T0BBB")
        await command(client, slash(fake, "refunds", "UBEN", "T0BBB", "CBBB", "ben"))
        await command(client, slash(fake, "refunds", "UANN", "T0AAA", "CAAA", "ann"))
        await fake.wait_for(lambda f: bool(answers(f, "ben")) and bool(answers(f, "ann")))
        assert [a["text"] for a in answers(fake, "ben")] == [messages.SLACK_NOT_SERVED]
        assert NOT_SERVED not in json.dumps(answers(fake, "ann"))
        # Ben is nobody to look up; Ann was linked when her workspace's directory was read.
        assert "UBEN" not in [c.args["user"] for c in fake.calls if c.method == "users.info"]
        # Only the workspace served had its directory read.
        assert {fake.tokens.get(c.token or "") for c in fake.calls if c.method == "users.list"} == {
            "T0AAA"
        }

    run_installed(services, router, scenario, env=first_install_env)
    assert [r["team_id"] for r in rows(services, "slack_installations")] == ["T0AAA", "T0BBB"]
    with services.db.unit_of_work() as session:
        (home,) = session.scalars(select(HomeWorkspace)).all()
        assert (home.platform, home.workspace_id, home.how) == ("slack", "T0AAA", "first install")
    assert not known(services, "UBEN") and known(services, "UANN")
    assert refusals(services) == [
        ("slack:UADMINT0BBB", "slack workspace T0BBB", "an installation"),
        ("slack:UBEN", "slack workspace T0BBB", "a /whoknows command"),
    ]

    # Restarted: still the first one, however the installs go.
    async def again(client: TestClient, fake: FakeSlack) -> None:
        _, state = await start(client)
        fake.grant("code-b2", "T0BBB", "Rival Corp")
        assert (await come_back(client, state, code="code-b2")).status == 403

    run_installed(services, router, again, env=first_install_env)


@pytest.mark.parametrize("listed", ["E0ORG", "T0CCC"])
def test_the_allow_list_serves_its_workspaces_and_its_orgs_workspaces_only(
    services: Services, router: Router, listed: str
) -> None:
    def env(fake: FakeSlack) -> dict[str, str]:
        return {**first_install_env(fake), "WHOKNOWS_SLACK_WORKSPACES": listed}

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        # Not served, although it is the first to install.
        _, state = await start(client)
        fake.grant("code-a", "T0AAA", "Acme Support")
        assert (await come_back(client, state, code="code-a")).status == 403
        _, state = await start(client)
        fake.grant("code-c", "T0CCC", "Grid Billing", enterprise="E0ORG")
        response = await come_back(client, state, code="code-c")
        assert response.status == 200, await response.text()

    run_installed(services, router, scenario, env=env)
    assert [r["team_id"] for r in rows(services, "slack_installations")] == ["T0CCC"]
    with services.db.unit_of_work() as session:
        assert session.scalars(select(HomeWorkspace)).all() == []  # nothing chosen for you
