"""Installing the Slack app into several workspaces (OAuth), and each workspace's token.

Through the real aiohttp application (`whoknows serve`'s) with SLACK_CLIENT_ID /
SLACK_CLIENT_SECRET and no bot token; a local server plays Slack's Web API, including
oauth.v2.access (codes, and refresh tokens that work once). Once the fake has issued
tokens, every call must carry one, and a channel or user of another workspace is
"not found" with that workspace's token, as in Slack.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import yaml
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from alembic import command as alembic
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore
from sqlalchemy import MetaData, Table, func, inspect, select, table

from adapters.server import build_app
from adapters.slack.oauth import BOT_SCOPES, Workspace, Workspaces
from adapters.slack.settings import SlackSettings
from adapters.slack.verify import sign
from bot.db.engine import alembic_config
from bot.router import Router
from bot.services import Services, people
from tests.adapters.slack.fake_slack import CLIENT_ID, CLIENT_SECRET, FakeSlack

SECRET = "test-signing-secret"
MANIFEST = Path(__file__).resolve().parents[3] / "manifest.yml"
ROOT_COOKIE = "slack-app-oauth-state"

Scenario = Callable[[TestClient, FakeSlack], Awaitable[None]]


def env(fake: FakeSlack) -> dict[str, str]:
    return {
        "SLACK_CLIENT_ID": CLIENT_ID,
        "SLACK_CLIENT_SECRET": CLIENT_SECRET,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.api_url,
    }


def run(services: Services, router: Router, scenario: Scenario) -> FakeSlack:
    fake = FakeSlack()

    async def main() -> None:
        await fake.start()
        app = build_app(services, router, env(fake), worker_interval=0.05)
        client = TestClient(TestServer(app))
        await client.start_server()
        try:
            await scenario(client, fake)
        finally:
            await client.close()
            await fake.close()

    asyncio.run(main())
    return fake


def rows(services: Services, name: str) -> list[dict[str, Any]]:
    found = Table(name, MetaData(), autoload_with=services.db.engine)
    with services.db.engine.connect() as connection:
        return [dict(r) for r in connection.execute(select(found)).mappings()]


def count(services: Services, name: str) -> int:
    with services.db.engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table(name))).scalar_one()


async def start(client: TestClient) -> tuple[ClientResponse, str]:
    """GET /slack/install: the response and the state it issued."""
    response = await client.get("/slack/install", allow_redirects=False)
    query = parse_qs(urlsplit(response.headers.get("Location", "")).query)
    return response, query.get("state", [""])[0]


async def come_back(
    client: TestClient, state: str, *, code: str = "", cookie: str | None = None, **extra: str
) -> ClientResponse:
    """Slack sends the admin's browser back to /slack/oauth_redirect."""
    params = {"state": state, **({"code": code} if code else {}), **extra}
    cookie = state if cookie is None else cookie
    headers = {"Cookie": f"{ROOT_COOKIE}={cookie}"} if cookie else {}
    return await client.get("/slack/oauth_redirect", params=params, headers=headers)


async def install(
    client: TestClient, fake: FakeSlack, team: str, name: str, *, expires_in: int | None = None
) -> None:
    _, state = await start(client)
    fake.grant(f"code-{team}", team, name, expires_in=expires_in)
    response = await come_back(client, state, code=f"code-{team}")
    assert response.status == 200, await response.text()


def slash(fake: FakeSlack, text: str, user: str, team: str, channel: str, key: str) -> bytes:
    return urlencode(
        {
            "command": "/whoknows",
            "text": text,
            "user_id": user,
            "team_id": team,
            "channel_id": channel,
            "response_url": fake.response_url(key),
            "trigger_id": f"trigger-{key}",
            "token": "legacy",
        }
    ).encode()


async def command(client: TestClient, body: bytes) -> None:
    response = await client.post(
        "/slack/events",
        data=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            **sign(SECRET, body, int(time.time())),
        },
    )
    assert response.status == 200


def answers(fake: FakeSlack, key: str) -> list[dict[str, Any]]:
    return [c.args for c in fake.calls if c.method == "response_url" and c.key == key]


def tokens(fake: FakeSlack, method: str, **match: str) -> list[str | None]:
    return [
        c.token
        for c in fake.calls
        if c.method == method and all(c.args.get(k) == v for k, v in match.items())
    ]


def user(slack_id: str, team: str, name: str) -> dict[str, Any]:
    return {"id": slack_id, "name": name, "team_id": team, "tz": "Europe/London"}


# --- the schema -------------------------------------------------------------------------


def test_the_migrated_tables_are_slack_sdks_own(services: Services) -> None:
    metadata = MetaData()
    SQLAlchemyInstallationStore.build_installations_table(metadata, "slack_installations")
    SQLAlchemyInstallationStore.build_bots_table(metadata, "slack_bots")
    SQLAlchemyOAuthStateStore.build_oauth_states_table(metadata, "slack_oauth_states")
    theirs = set(metadata.tables)

    def only_slack(obj: Any, name: str | None, type_: str, reflected: bool, _: Any) -> bool:
        return type_ != "table" or name in theirs

    with services.db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_object": only_slack, "compare_type": True}
        )
        assert compare_metadata(context, metadata) == []
    columns = {c["name"] for c in inspect(services.db.engine).get_columns("slack_installations")}
    assert {"bot_refresh_token", "bot_token_expires_at", "installed_at"} <= columns


def test_the_adapter_never_creates_its_tables(services: Services, router: Router) -> None:
    alembic.downgrade(alembic_config(services.db.engine), "0006")
    assert not {"slack_installations", "slack_oauth_states"} & set(
        inspect(services.db.engine).get_table_names()
    )

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        response, _ = await start(client)
        assert response.status == 500  # no table to keep the state in: nothing made up

    run(services, router, scenario)
    assert not {n for n in inspect(services.db.engine).get_table_names() if n.startswith("slack_")}
    services.db.upgrade()


def test_the_scopes_asked_for_are_the_manifests() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    assert list(BOT_SCOPES) == manifest["oauth_config"]["scopes"]["bot"]
    assert manifest["oauth_config"]["redirect_urls"] == ["https://YOUR-HOST/slack/oauth_redirect"]


def test_settings_choose_oauth_only_without_a_bot_token() -> None:
    both = {"SLACK_CLIENT_ID": "id", "SLACK_CLIENT_SECRET": "s", "SLACK_SIGNING_SECRET": "x"}
    assert SlackSettings.from_env(both).oauth and SlackSettings.from_env(both).enabled
    single = SlackSettings.from_env({**both, "SLACK_BOT_TOKEN": "xoxb-1"})
    assert single.enabled and not single.oauth
    half = SlackSettings.from_env({"SLACK_CLIENT_ID": "id", "SLACK_SIGNING_SECRET": "x"})
    assert not half.enabled and not half.oauth
    assert "s3cr3t" not in repr(SlackSettings.from_env({**both, "SLACK_CLIENT_SECRET": "s3cr3t"}))


# --- installing -------------------------------------------------------------------------


def test_install_sends_the_admin_to_slack_with_our_client_id_scopes_and_a_state(
    services: Services, router: Router
) -> None:
    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        response, state = await start(client)
        assert response.status == 302
        location = urlsplit(response.headers["Location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == (
            "https://slack.com/oauth/v2/authorize"
        )
        query = parse_qs(location.query)
        assert query["client_id"] == [CLIENT_ID]
        assert query["scope"][0].split(",") == list(BOT_SCOPES)
        assert state and [r["state"] for r in rows(services, "slack_oauth_states")] == [state]
        cookie = response.headers["Set-Cookie"]
        assert f"{ROOT_COOKIE}={state}" in cookie and "HttpOnly" in cookie
        assert fake.calls == []

    run(services, router, scenario)


def test_coming_back_from_slack_saves_the_installation(services: Services, router: Router) -> None:
    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        _, state = await start(client)
        fake.grant("the-code", "T0AAA", "Acme Support")
        response = await come_back(client, state, code="the-code")
        page = await response.text()
        assert response.status == 200
        assert "whoknows is installed" in page and "Acme Support" in page
        (exchange,) = fake.called("oauth.v2.access")
        assert exchange["code"] == "the-code"
        # The state works once: it is gone.
        assert count(services, "slack_oauth_states") == 0

    fake = run(services, router, scenario)
    (saved,) = rows(services, "slack_installations")
    assert saved["team_id"] == "T0AAA" and saved["team_name"] == "Acme Support"
    assert saved["client_id"] == CLIENT_ID and saved["bot_user_id"] == "UBOTT0AAA"
    assert saved["bot_token"] in fake.tokens and fake.tokens[saved["bot_token"]] == "T0AAA"
    assert [b["team_id"] for b in rows(services, "slack_bots")] == ["T0AAA"]


@pytest.mark.parametrize("attempt", ["unknown state", "used state", "no cookie", "cancelled"])
def test_a_bad_or_used_state_gets_a_friendly_page_and_installs_nothing(
    services: Services, router: Router, attempt: str
) -> None:
    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        _, state = await start(client)
        fake.grant("code-1", "T0AAA", "Acme Support")
        fake.grant("code-2", "T0BBB", "Acme Billing")
        if attempt == "unknown state":
            response = await come_back(client, "made-up", code="code-1")
        elif attempt == "used state":
            assert (await come_back(client, state, code="code-1")).status == 200
            response = await come_back(client, state, code="code-2")
        elif attempt == "no cookie":
            response = await come_back(client, state, code="code-1", cookie="")
        else:
            response = await come_back(client, state, error="access_denied")
        page = await response.text()
        assert 400 <= response.status < 500
        assert "whoknows was not installed" in page
        assert 'href="/slack/install"' in page and "Traceback" not in page
        # Slack was asked for no token beyond the one good install.
        assert len(fake.called("oauth.v2.access")) == (1 if attempt == "used state" else 0)

    run(services, router, scenario)
    installed = [r["team_id"] for r in rows(services, "slack_installations")]
    assert installed == (["T0AAA"] if attempt == "used state" else [])


# --- using each workspace's token -------------------------------------------------------


def test_each_workspace_is_answered_with_its_own_token(demo: Services, router: Router) -> None:
    with demo.db.unit_of_work() as session:
        people.link_identity(session, people.by_key(session, "maria"), "slack", "UMARIA")
        people.link_identity(session, people.by_key(session, "priya"), "slack", "UPRIYA")

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        fake.users.update(
            {
                "UANN": user("UANN", "T0AAA", "ann"),
                "UMARIA": user("UMARIA", "T0AAA", "maria"),
                "UBEN": user("UBEN", "T0BBB", "ben"),
                "UPRIYA": user("UPRIYA", "T0BBB", "priya"),
            }
        )
        fake.channels.update({"CAAA": "T0AAA", "CBBB": "T0BBB"})
        await install(client, fake, "T0AAA", "Acme Support")
        await install(client, fake, "T0BBB", "Acme Billing")
        token_a = next(t for t, team in fake.tokens.items() if team == "T0AAA")
        token_b = next(t for t, team in fake.tokens.items() if team == "T0BBB")

        # Priya asks from her workspace first, so whoknows knows where she is.
        await command(client, slash(fake, "help", "UPRIYA", "T0BBB", "CBBB", "priya"))
        await command(client, slash(fake, "refunds", "UANN", "T0AAA", "CAAA", "ann"))
        await command(client, slash(fake, "refunds", "UBEN", "T0BBB", "CBBB", "ben"))
        await fake.wait_for(lambda f: all(answers(f, k) for k in ("priya", "ann", "ben")))
        # New people's profiles, each read with their own workspace's token.
        assert tokens(fake, "users.info", user="UANN") == [token_a]
        assert tokens(fake, "users.info", user="UBEN") == [token_b]
        # Presence of the experts shown, each answered for with their own workspace's
        # token (Maria, never seen, may first be looked for in the asker's: "not found").
        await fake.wait_for(lambda f: len(f.called("users.getPresence")) >= 2)
        await asyncio.sleep(0.3)
        assert set(tokens(fake, "users.getPresence", user="UPRIYA")) == {token_b}
        assert tokens(fake, "users.getPresence", user="UMARIA")[-1] == token_a
        (dnd,) = [
            c for c in fake.calls if c.method == "dnd.teamInfo" and "UPRIYA" in c.args["users"]
        ]
        assert dnd.token == token_b

        # A huddle thread from Ben: posted in his channel and Priya messaged, as his workspace.
        await command(
            client, slash(fake, "huddle refunds <@UPRIYA|priya>", "UBEN", "T0BBB", "CBBB", "h")
        )
        await fake.wait_for(lambda f: bool(tokens(f, "chat.postMessage", channel="DUPRIYA")))
        assert set(tokens(fake, "chat.postMessage", channel="CBBB")) == {token_b}
        assert tokens(fake, "conversations.open", users="UPRIYA") == [token_b]
        assert tokens(fake, "chat.postMessage", channel="DUPRIYA") == [token_b]
        # Nothing went out without a token or with a token Slack did not issue.
        web_api = [c for c in fake.calls if c.method not in {"oauth.v2.access", "response_url"}]
        assert [c.method for c in web_api if c.token not in fake.tokens] == []

    run(demo, router, scenario)


def test_a_delivery_to_someone_not_yet_seen_finds_their_workspace(
    demo: Services, router: Router
) -> None:
    with demo.db.unit_of_work() as session:
        people.link_identity(session, people.by_key(session, "priya"), "slack", "UPRIYA")

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        fake.users.update(
            {"UBEN": user("UBEN", "T0BBB", "ben"), "UPRIYA": user("UPRIYA", "T0BBB", "priya")}
        )
        fake.channels.update({"CBBB": "T0BBB"})
        await install(client, fake, "T0AAA", "Acme Support")
        await install(client, fake, "T0BBB", "Acme Billing")
        token_a = next(t for t, team in fake.tokens.items() if team == "T0AAA")
        token_b = next(t for t, team in fake.tokens.items() if team == "T0BBB")
        await command(
            client, slash(fake, "huddle refunds <@UPRIYA|priya>", "UBEN", "T0BBB", "CBBB", "h")
        )
        await fake.wait_for(lambda f: bool(tokens(f, "chat.postMessage", channel="DUPRIYA")))
        # Priya never wrote to the bot: the first workspace says "no such user", hers answers.
        assert tokens(fake, "conversations.open", users="UPRIYA") == [token_a, token_b]
        assert tokens(fake, "chat.postMessage", channel="DUPRIYA") == [token_b]

    run(demo, router, scenario)
    from bot.db.models import DeliveryState, Outbox

    with demo.db.unit_of_work() as session:
        states = set(session.scalars(select(Outbox.state)))
        assert states == {DeliveryState.SENT}


def test_a_workspace_without_an_installation_is_told_how_to_install(
    services: Services, router: Router
) -> None:
    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        await install(client, fake, "T0AAA", "Acme Support")
        await command(client, slash(fake, "refunds", "UZED", "T0ZZZ", "CZZZ", "z"))
        await fake.wait_for(lambda f: bool(answers(f, "z")))
        (answer,) = answers(fake, "z")
        assert "not installed in this workspace" in answer["text"]
        assert "/slack/install" in answer["text"]
        assert not fake.called("users.info")

    run(services, router, scenario)


# --- rotating tokens --------------------------------------------------------------------


@pytest.mark.reliability(22)
def test_two_requests_near_expiry_refresh_the_token_once(demo: Services, router: Router) -> None:
    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        fake.users.update(
            {"UANN": user("UANN", "T0AAA", "ann"), "UAMY": user("UAMY", "T0AAA", "amy")}
        )
        # Tokens that expire in a minute: well inside the refresh window.
        await install(client, fake, "T0AAA", "Acme Support", expires_in=60)
        (first,) = fake.tokens
        # A slow Slack makes the two refreshes overlap, were there two.
        fake.refresh_delay = 0.3
        await asyncio.gather(
            command(client, slash(fake, "refunds", "UANN", "T0AAA", "CAAA", "ann")),
            command(client, slash(fake, "refunds", "UAMY", "T0AAA", "CAAA", "amy")),
        )
        await fake.wait_for(lambda f: bool(answers(f, "ann") and answers(f, "amy")))
        refreshes = [
            c for c in fake.called("oauth.v2.access") if c.get("grant_type") == "refresh_token"
        ]
        assert len(refreshes) == 1 and refreshes[0]["refresh_token"].startswith("xoxe-1-")
        (renewed,) = set(fake.tokens) - {first}
        # Both were answered (not told to install), as the workspace, with the new token.
        for key in ("ann", "amy"):
            assert "not installed" not in str(answers(fake, key))
        assert tokens(fake, "users.info", user="UANN") == [renewed]
        assert tokens(fake, "users.info", user="UAMY") == [renewed]

    fake = run(demo, router, scenario)
    (saved,) = rows(demo, "slack_installations")
    assert saved["bot_token"] == max(fake.tokens) and saved["bot_refresh_token"] in (
        fake.refresh_tokens
    )
    assert [b["bot_token"] for b in rows(demo, "slack_bots")] == [saved["bot_token"]]


@pytest.mark.reliability(22)
def test_two_processes_near_expiry_refresh_the_token_once(
    services: Services, router: Router
) -> None:
    """Two processes each have their own in-process lock: the database lock decides."""

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        await install(client, fake, "T0AAA", "Acme Support", expires_in=60)
        fake.refresh_delay = 0.3
        settings = SlackSettings.from_env(env(fake))
        one, two = (Workspaces(services.db.engine, settings) for _ in range(2))
        workspace = Workspace.of(None, "T0AAA")
        got = await asyncio.gather(one.token(workspace), two.token(workspace))
        assert got[0] == got[1] and fake.tokens[got[0] or ""] == "T0AAA"
        assert one.refreshes + two.refreshes == 1
        refreshes = [
            c for c in fake.called("oauth.v2.access") if c.get("grant_type") == "refresh_token"
        ]
        assert len(refreshes) == 1
        # A spent refresh token is refused, as Slack does: the reason this matters.
        assert refreshes[0]["refresh_token"] not in fake.refresh_tokens

    run(services, router, scenario)
