"""Running the real `whoknows serve` app against the fake Microsoft side, and Teams activities."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer

from adapters.server import ADAPTERS, build_app
from adapters.teams import store
from adapters.teams.app import TeamsAdapter
from bot.router import Router
from bot.services import Services, people
from tests.adapters.teams.fake_teams import (
    APP_ID,
    APP_PASSWORD,
    BOT,
    HUDDLES,
    TEAM,
    TENANT,
    USERS,
    FakeConnector,
    FakeLogin,
)

_ids = itertools.count(1)


@dataclass
class Teams:
    client: TestClient
    login: FakeLogin
    connector: FakeConnector
    app: web.Application

    @property
    def adapter(self) -> TeamsAdapter:
        return self.app[ADAPTERS]["teams"]

    async def send(
        self,
        activity: dict[str, Any],
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> ClientResponse:
        """POST an activity as the Bot Connector would: signed for its serviceUrl."""
        if token is None:
            token = self.login.token(activity["serviceUrl"])
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.client.post(
            "/api/messages", json=activity, headers={**auth, **(headers or {})}
        )

    def activity(
        self,
        user: str,
        text: str = "",
        *,
        kind: str = "message",
        conversation: str | None = None,
        conversation_type: str = "personal",
        **fields: Any,
    ) -> dict[str, Any]:
        who = USERS[user]
        channel_data: dict[str, Any] = {"tenant": {"id": TENANT}}
        if conversation_type == "channel":
            channel = (conversation or HUDDLES).partition(";")[0]
            channel_data.update({"team": {"id": TEAM}, "channel": {"id": channel}})
        activity = {
            "type": kind,
            "id": f"activity-{next(_ids)}",
            "channelId": "msteams",
            "serviceUrl": self.connector.url + "/",
            "from": who.account(),
            "recipient": {"id": BOT, "name": "whoknows"},
            "conversation": {
                "id": conversation or f"a:chat-{who.teams_id}",
                "conversationType": conversation_type,
                "tenantId": TENANT,
            },
            "channelData": channel_data,
            "text": text,
            "localTimezone": "Europe/London",
        }
        activity.update(fields)
        return activity

    def mention(self, user: str | None) -> tuple[str, dict[str, Any]]:
        """The `<at>` text and entity Teams puts in a message mentioning someone (None: the bot)."""
        if user is None:
            name, account = "whoknows", {"id": BOT, "name": "whoknows"}
        else:
            name, account = USERS[user].name, {"id": USERS[user].teams_id, "name": USERS[user].name}
        text = f"<at>{name}</at>"
        return text, {"type": "mention", "text": text, "mentioned": account}

    def install(self, user: str = "priya") -> dict[str, Any]:
        """The app added to the team: the bot joins the General channel's conversation."""
        return self.activity(
            user,
            kind="conversationUpdate",
            conversation=TEAM,
            conversation_type="channel",
            membersAdded=[{"id": BOT}],
            text=None,
        )


Scenario = Callable[[Teams], Awaitable[None]]


def remember_team(services: Services, connector: FakeConnector) -> None:
    """The team and its channels as an earlier install left them (their references)."""
    with services.db.unit_of_work() as session:
        for channel in connector.channels:
            store.remember_channel(
                session,
                conversation_id=channel["id"],
                kind="channel",
                team_id=TEAM,
                name=channel["name"],
                service_url=connector.url + "/",
                tenant_id=TENANT,
                bot_id=BOT,
                now=services.clock(),
            )


def link_people(services: Services) -> None:
    """The demo org's people with their Teams (AAD) identities, as after a first sign-in."""
    with services.db.unit_of_work() as session:
        for key, user in USERS.items():
            people.link_identity(session, people.by_key(session, key), "teams", user.aad)


@pytest.fixture
def teams_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Run a scenario: the fakes and our server started, stopped after."""

    def run(
        services: Services,
        router: Router,
        scenario: Scenario,
        *,
        env: dict[str, str] | None = None,
        link: bool = True,
        connector: FakeConnector | None = None,
        known_team: bool = False,
    ) -> FakeConnector:
        """`link`: the demo org's people linked to USERS' Teams ids beforehand;
        `known_team`: the team's references kept from before, as if the app had been
        installed in it when the server (re)starts."""
        if link:
            link_people(services)
        login, fake = FakeLogin(tmp_path), connector or FakeConnector()

        async def main() -> None:
            connector = fake
            await login.start()
            await connector.start()
            if known_team:
                remember_team(services, connector)
            assert login.ca_file is not None
            # msal and botbuilder fetch with `requests`: trust the fake login's certificate.
            monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(login.ca_file))
            settings = {
                "MICROSOFT_APP_ID": APP_ID,
                "MICROSOFT_APP_PASSWORD": APP_PASSWORD,
                "MICROSOFT_LOGIN_URL": login.url,
                "MICROSOFT_OPENID_METADATA_URL": login.metadata_url,
                "GRAPH_API_URL": connector.graph_url,
                **(env or {}),
            }
            app = build_app(services, router, settings, worker_interval=0.05)
            client = TestClient(TestServer(app))
            await client.start_server()
            try:
                await scenario(Teams(client, login, connector, app))
            finally:
                await client.close()
                await connector.close()
                await login.close()

        asyncio.run(main())
        return fake

    return run
