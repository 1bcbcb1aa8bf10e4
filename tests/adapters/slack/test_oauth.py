"""Installing the Slack app into several workspaces (OAuth), and each workspace's token.

Through the real aiohttp application (`whoknows serve`'s) with SLACK_CLIENT_ID /
SLACK_CLIENT_SECRET and no bot token; a local server plays Slack's Web API, including
oauth.v2.access (codes, and refresh tokens that work once). Once the fake has issued
tokens, every call must carry one, and a channel or user of another workspace is
"not found" with that workspace's token, as in Slack.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
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
from adapters.slack.oauth import BOT_SCOPES, DIRECTORY, Workspace, Workspaces
from adapters.slack.settings import SlackSettings
from bot.data.transfer import import_people
from bot.db.engine import alembic_config
from bot.db.models import Outbox, Person
from bot.ops import logs
from bot.router import Router
from bot.runtime import outbox
from bot.services import Services, people
from bot.types import Reply
from tests.adapters.slack.fake_slack import CLIENT_ID, CLIENT_SECRET, FakeSlack, member
from tests.adapters.slack.test_app import SECRET, Scenario, event, post
from tests.adapters.slack.test_app import run as run_app
from tests.conftest import NOW

MANIFEST = Path(__file__).resolve().parents[3] / "manifest.yml"
ROOT_COOKIE = "slack-app-oauth-state"


def env(fake: FakeSlack) -> dict[str, str]:
    """Installed by OAuth into the two workspaces these tests use (and no other)."""
    return {**first_install_env(fake), "WHOKNOWS_SLACK_WORKSPACES": "T0AAA, T0BBB"}


def first_install_env(fake: FakeSlack) -> dict[str, str]:
    """Installed by OAuth with no allow-list: the first workspace installed is served."""
    return {
        "SLACK_CLIENT_ID": CLIENT_ID,
        "SLACK_CLIENT_SECRET": CLIENT_SECRET,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.api_url,
    }


def run(
    services: Services,
    router: Router,
    scenario: Scenario,
    env: Callable[[FakeSlack], dict[str, str]] = env,
) -> FakeSlack:
    """Our server installed by OAuth, with Slack played by a fake."""
    return run_app(services, router, scenario, env=env, link=False)


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
    response = await post(client, body, "application/x-www-form-urlencoded")
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


def test_the_directory_table_is_the_migrations(services: Services) -> None:
    def only_directory(obj: Any, name: str | None, type_: str, reflected: bool, _: Any) -> bool:
        return type_ != "table" or name == DIRECTORY.name

    with services.db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"include_object": only_directory, "compare_type": True}
        )
        assert compare_metadata(context, DIRECTORY.metadata) == []


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
        assert fake.besides_the_directory() == []

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


def test_an_install_reads_that_workspaces_directory_with_its_new_token(
    services: Services, router: Router, tmp_path: Path
) -> None:
    path = tmp_path / "people.csv"
    path.write_text(
        "id,name,email\nann.lee,Ann Lee,Ann.Lee@Acme.example\nbo.chen,Bo Chen,bo@acme.example\n",
        encoding="utf-8",
    )
    assert import_people(services.db, path, NOW).ok

    def owner(slack_id: str) -> str | None:
        with services.db.reading() as session:
            person = people.by_identity(session, "slack", slack_id)
            return person.key if person else None

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        fake.add_users(
            member("UANN", "ann", "Ann Lee", email="ann.lee@acme.example", team="T0AAA"),
            member("UZED", "zed", "Zed Other", email="bo@acme.example", team="T0BBB"),
        )
        await asyncio.sleep(0.3)
        assert not fake.called("users.list")  # nothing installed: nothing to read
        await install(client, fake, "T0AAA", "Acme Support")
        await until(lambda: owner("UANN") == "ann.lee")
        (token,) = fake.tokens
        assert [c.token for c in fake.calls if c.method == "users.list"] == [token]
        assert owner("UZED") is None  # another workspace's member: not listed here
        # Installed again (to add a scope, say): read again at once, with the new token.
        fake.add_users(member("UBO", "bo", "Bo Chen", email="BO@acme.example", team="T0AAA"))
        await install(client, fake, "T0AAA", "Acme Support")
        await until(lambda: owner("UBO") == "bo.chen")
        assert [c.token for c in fake.calls if c.method == "users.list"][-1] != token
        with services.db.reading() as session:
            assert session.scalar(select(func.count(Person.id))) == 2

    run(services, router, scenario)


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
        fake.channels.update({"CAAA": "T0AAA", "CBBB": "T0BBB"})
        await install(client, fake, "T0AAA", "Acme Support")
        await install(client, fake, "T0BBB", "Acme Billing")
        token_a = next(t for t, team in fake.tokens.items() if team == "T0AAA")
        token_b = next(t for t, team in fake.tokens.items() if team == "T0BBB")
        # Each install reads its workspace's directory with its own token…
        await fake.wait_for(lambda f: len(f.called("users.list")) == 2)
        assert sorted(c.token for c in fake.calls if c.method == "users.list") == sorted(
            [token_a, token_b]
        )
        # …and these people join after it: whoknows meets them as they ask.
        fake.users.update(
            {
                "UANN": user("UANN", "T0AAA", "ann"),
                "UMARIA": user("UMARIA", "T0AAA", "maria"),
                "UBEN": user("UBEN", "T0BBB", "ben"),
                "UPRIYA": user("UPRIYA", "T0BBB", "priya"),
            }
        )

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
        # Tokens that expire in a minute: well inside the refresh window.
        await install(client, fake, "T0AAA", "Acme Support", expires_in=60)
        (first,) = fake.tokens
        # Two people who join after the install's directory read.
        await fake.wait_for(lambda f: bool(f.called("users.list")))
        fake.users.update(
            {"UANN": user("UANN", "T0AAA", "ann"), "UAMY": user("UAMY", "T0AAA", "amy")}
        )
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


# --- uninstalled, or tokens revoked ----------------------------------------------------


async def send_event(client: TestClient, body: bytes, retry: str | None = None) -> None:
    headers = {"X-Slack-Retry-Num": retry} if retry else {}
    response = await post(client, body, "application/json", headers=headers)
    assert response.status == 200


UNINSTALLED = {"type": "app_uninstalled"}


def revoked(*bots: str, users: tuple[str, ...] = ()) -> dict[str, Any]:
    return {"type": "tokens_revoked", "tokens": {"oauth": list(users), "bot": list(bots)}}


def waiting(services: Services, **to: str | int) -> int:
    """A delivery that waits for its next attempt (after a 429, say): its row id."""
    with services.db.unit_of_work() as session:
        row = outbox.enqueue(
            session,
            platform="slack",
            reply=Reply.notice("a message on its way"),
            now=services.clock() - timedelta(minutes=1),
            **to,  # type: ignore[arg-type]
        )
        row.next_attempt_at = services.clock() + timedelta(hours=1)
        session.flush()
        return row.id


def deliveries(services: Services) -> dict[int, tuple[str, str | None]]:
    with services.db.unit_of_work() as session:
        return {r.id: (r.state.value, r.error) for r in session.scalars(select(Outbox))}


async def until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def installed_teams(services: Services) -> tuple[list[str], list[str]]:
    return (
        sorted(r["team_id"] for r in rows(services, "slack_installations") if r["bot_token"]),
        sorted(r["team_id"] for r in rows(services, "slack_bots")),
    )


def maria_in_a_and_priya_in_b(demo: Services, fake: FakeSlack) -> tuple[int, int]:
    """Maria (UMARIA, channel CAAA) in workspace A, Priya (UPRIYA, CBBB) in B: their ids."""
    with demo.db.unit_of_work() as session:
        maria = people.by_key(session, "maria")
        priya = people.by_key(session, "priya")
        people.link_identity(session, maria, "slack", "UMARIA")
        people.link_identity(session, priya, "slack", "UPRIYA")
        ids = maria.id, priya.id
    fake.users.update(
        {"UMARIA": user("UMARIA", "T0AAA", "maria"), "UPRIYA": user("UPRIYA", "T0BBB", "priya")}
    )
    fake.channels.update({"CAAA": "T0AAA", "CBBB": "T0BBB"})
    return ids


async def both_ask(client: TestClient, fake: FakeSlack) -> None:
    """Maria and Priya each ask in their channel: whoknows learns where they are."""
    await command(client, slash(fake, "help", "UMARIA", "T0AAA", "CAAA", "maria"))
    await command(client, slash(fake, "help", "UPRIYA", "T0BBB", "CBBB", "priya"))
    await fake.wait_for(lambda f: bool(answers(f, "maria") and answers(f, "priya")))


@pytest.mark.reliability(26)
def test_an_uninstalled_workspace_loses_its_tokens_and_its_waiting_deliveries(
    demo: Services, router: Router
) -> None:
    reason = "whoknows was uninstalled from the Slack workspace T0AAA"

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        maria_id, priya_id = maria_in_a_and_priya_in_b(demo, fake)
        # Workspace A installed twice (an earlier installation stays as history), and B.
        await install(client, fake, "T0AAA", "Acme Support")
        await install(client, fake, "T0AAA", "Acme Support")
        await install(client, fake, "T0BBB", "Acme Billing")
        assert installed_teams(demo) == (["T0AAA", "T0AAA", "T0BBB"], ["T0AAA", "T0AAA", "T0BBB"])
        await both_ask(client, fake)
        to_a = [
            waiting(demo, kind="post", channel="CAAA"),
            waiting(demo, kind="dm", person_id=maria_id),
        ]
        to_b = [
            waiting(demo, kind="post", channel="CBBB"),
            waiting(demo, kind="dm", person_id=priya_id),
        ]

        fake.revoke("T0AAA")
        await send_event(client, event(UNINSTALLED, "EvGone", team="T0AAA"))
        await until(lambda: deliveries(demo)[to_a[0]][0] == "failed")
        assert installed_teams(demo) == (["T0BBB"], ["T0BBB"])
        assert [r["team_id"] for r in rows(demo, "slack_installations")] == ["T0BBB"]
        states = deliveries(demo)
        assert [states[i] for i in to_a] == [("failed", reason)] * 2
        assert [states[i] for i in to_b] == [("pending", None)] * 2

        # Slack's retry of the event, and the same news again, change nothing.
        before = deliveries(demo)
        await send_event(client, event(UNINSTALLED, "EvGone", team="T0AAA"), retry="1")
        await send_event(client, event(UNINSTALLED, "EvGoneAgain", team="T0AAA"))
        await send_event(client, event(revoked("UBOTT0AAA"), "EvRevoked", team="T0AAA"))
        await asyncio.sleep(0.5)
        assert deliveries(demo) == before
        assert installed_teams(demo) == (["T0BBB"], ["T0BBB"])

        # Workspace A is told to install again; B goes on as before.
        await command(client, slash(fake, "refunds", "UMARIA", "T0AAA", "CAAA", "a-later"))
        await command(client, slash(fake, "refunds", "UPRIYA", "T0BBB", "CBBB", "b-later"))
        await fake.wait_for(lambda f: bool(answers(f, "a-later") and answers(f, "b-later")))
        assert "not installed in this workspace" in answers(fake, "a-later")[0]["text"]
        assert "not installed" not in str(answers(fake, "b-later"))
        # A message for A written after the uninstall fails at once, and is never tried
        # with B's token.
        with demo.db.unit_of_work() as session:
            late = outbox.enqueue(
                session,
                platform="slack",
                kind="post",
                channel="CAAA",
                reply=Reply.notice("late"),
                now=demo.clock(),
            )
            session.flush()
            late_id = late.id
        await until(lambda: deliveries(demo)[late_id][0] == "failed")
        assert "no longer installed" in str(deliveries(demo)[late_id][1])
        assert tokens(fake, "chat.postMessage", channel="CAAA") == []

    run(demo, router, scenario)


def test_the_last_workspace_uninstalled_stops_every_waiting_slack_delivery(
    services: Services, router: Router
) -> None:
    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        await install(client, fake, "T0AAA", "Acme Support")
        # A channel no request has named: with no workspace left, it can only have been A's.
        row = waiting(services, kind="post", channel="CUNSEEN")
        fake.revoke("T0AAA")
        await send_event(client, event(UNINSTALLED, "EvGone", team="T0AAA"))
        await until(lambda: deliveries(services)[row][0] == "failed")
        assert count(services, "slack_installations") == count(services, "slack_bots") == 0
        assert "uninstalled from the Slack workspace T0AAA" in str(deliveries(services)[row][1])

    run(services, router, scenario)


def test_a_revoked_bot_token_is_gone_and_other_workspaces_keep_theirs(
    services: Services, router: Router
) -> None:
    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        await install(client, fake, "T0AAA", "Acme Support")
        await install(client, fake, "T0BBB", "Acme Billing")
        fake.revoke("T0AAA")
        await send_event(client, event(revoked("UBOTT0AAA"), "EvRevoked", team="T0AAA"))
        await until(lambda: installed_teams(services) == (["T0BBB"], ["T0BBB"]))
        # Who installed it and when stay; the token does not.
        assert sorted(r["team_id"] for r in rows(services, "slack_installations")) == [
            "T0AAA",
            "T0BBB",
        ]
        await command(client, slash(fake, "refunds", "UANN", "T0AAA", "CAAA", "a"))
        await command(client, slash(fake, "refunds", "UBEN", "T0BBB", "CBBB", "b"))
        await fake.wait_for(lambda f: bool(answers(f, "a") and answers(f, "b")))
        assert "not installed in this workspace" in answers(fake, "a")[0]["text"]
        assert "not installed" not in str(answers(fake, "b"))

    run(services, router, scenario)


def test_user_tokens_revoked_leave_the_bot_token(services: Services, router: Router) -> None:
    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        await install(client, fake, "T0AAA", "Acme Support")
        await send_event(
            client, event(revoked(users=("UADMINT0AAA",)), "EvUserRevoked", team="T0AAA")
        )
        await asyncio.sleep(0.5)
        assert installed_teams(services) == (["T0AAA"], ["T0AAA"])
        await command(client, slash(fake, "help", "UANN", "T0AAA", "CAAA", "a"))
        await fake.wait_for(lambda f: bool(answers(f, "a")))
        assert "not installed" not in str(answers(fake, "a"))

    run(services, router, scenario)


@pytest.mark.parametrize("news", [UNINSTALLED, revoked("UBOT")], ids=["uninstalled", "revoked"])
def test_with_one_bot_token_the_news_is_logged_and_nothing_breaks(
    services: Services, router: Router, news: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    fake = FakeSlack()

    async def main() -> None:
        await fake.start()
        single = {"SLACK_BOT_TOKEN": "xoxb-one", "SLACK_SIGNING_SECRET": SECRET}
        app = build_app(services, router, single | {"SLACK_API_URL": fake.api_url})
        client = TestClient(TestServer(app))
        await client.start_server()
        try:
            with caplog.at_level(logging.WARNING, logger="adapters.slack.oauth"):
                await send_event(client, event(news, "EvNews", team="T0001"))
                await until(lambda: str(news["type"]) in caplog.text)
            assert "T0001" in caplog.text and "xoxb-one" not in caplog.text
            await command(client, slash(fake, "help", "UANN", "T0001", "CGEN", "after"))
            await fake.wait_for(lambda f: bool(answers(f, "after")))
        finally:
            await client.close()
            await fake.close()

    asyncio.run(main())


# --- what other processes learned ------------------------------------------------------


@asynccontextmanager
async def another_process(
    services: Services, router: Router, fake: FakeSlack
) -> AsyncIterator[TestClient]:
    """The app again on the same database, as after a restart or in another process."""
    app = build_app(services, router, env(fake), worker_interval=0.05)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client
    finally:
        await client.close()


def directory(services: Services) -> dict[str, str | None]:
    return {r["slack_id"]: r["team_id"] for r in rows(services, "slack_directory")}


def test_after_a_restart_a_delivery_goes_with_its_channels_workspace_token(
    services: Services, router: Router
) -> None:
    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        fake.channels.update({"CAAA": "T0AAA", "CBBB": "T0BBB"})
        await install(client, fake, "T0AAA", "Acme Support")
        await install(client, fake, "T0BBB", "Acme Billing")
        token_b = next(t for t, team in fake.tokens.items() if team == "T0BBB")
        await command(client, slash(fake, "help", "UBEN", "T0BBB", "CBBB", "ben"))
        await fake.wait_for(lambda f: bool(answers(f, "ben")))
        await until(lambda: directory(services).get("CBBB") == "T0BBB")
        await client.close()  # the process that saw CBBB is gone

        seen = len(fake.calls)
        async with another_process(services, router, fake):
            with services.db.unit_of_work() as session:
                outbox.enqueue(
                    session,
                    platform="slack",
                    kind="post",
                    channel="CBBB",
                    reply=Reply.notice("on its way"),
                    now=services.clock(),
                )
            await until(lambda: set(deliveries(services).values()) == {("sent", None)})
        # Straight to B: never first tried with A's token (and "not found" there).
        posts = [c for c in fake.calls[seen:] if c.method == "chat.postMessage"]
        assert [(c.args["channel"], c.token) for c in posts] == [("CBBB", token_b)]
        assert directory(services) == {"UBEN": "T0BBB", "CBBB": "T0BBB"}

    run(services, router, scenario)


def test_an_uninstall_stops_deliveries_to_channels_only_another_process_saw(
    demo: Services, router: Router
) -> None:
    reason = "whoknows was uninstalled from the Slack workspace T0AAA"

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        maria_id, _ = maria_in_a_and_priya_in_b(demo, fake)
        await install(client, fake, "T0AAA", "Acme Support")
        await install(client, fake, "T0BBB", "Acme Billing")
        await both_ask(client, fake)
        await until(lambda: len(directory(demo)) == 4)
        await client.close()

        async with another_process(demo, router, fake) as other:
            to_a = [
                waiting(demo, kind="post", channel="CAAA"),
                waiting(demo, kind="dm", person_id=maria_id),
            ]
            to_b = waiting(demo, kind="post", channel="CBBB")
            fake.revoke("T0AAA")
            await send_event(other, event(UNINSTALLED, "EvGone", team="T0AAA"))
            await until(lambda: deliveries(demo)[to_a[0]][0] == "failed")
            states = deliveries(demo)
            assert [states[i] for i in to_a] == [("failed", reason)] * 2
            assert states[to_b] == ("pending", None)
            # A's channels and people are forgotten; B's are still known.
            assert directory(demo) == {"UPRIYA": "T0BBB", "CBBB": "T0BBB"}

    run(demo, router, scenario)


# --- the log ------------------------------------------------------------------------------


@pytest.fixture
def debug_log() -> Iterator[io.StringIO]:
    """The process's log (bot.ops.logs, as `whoknows serve` sets it up) at DEBUG, captured."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    out = io.StringIO()
    logs.configure({"WHOKNOWS_LOG_LEVEL": "DEBUG"}, stream=out)
    try:
        yield out
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def test_the_code_slack_hands_back_is_not_in_the_log_even_at_debug(
    services: Services, router: Router, debug_log: io.StringIO
) -> None:
    code = "7104829365.1850362947.d1e5c0a7b2f94e63a8c1f0b9d2e7a4c6"

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        _, state = await start(client)
        fake.grant(code, "T0AAA", "Acme Support")
        response = await come_back(client, state, code=code)
        assert response.status == 200
        # A code Slack no longer takes: bolt logs its failure (with the code) at WARNING.
        _, state = await start(client)
        response = await come_back(client, state, code=code)
        assert response.status == 401

    run(services, router, scenario)
    text = debug_log.getvalue()
    assert "oauth.v2.access" in text  # the exchange was logged, at DEBUG
    assert code not in text and code[:21] not in text
