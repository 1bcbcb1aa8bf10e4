"""Slack's directory read and linked to the people a lead imported.

Through Slack's protocol: a lead's CSV import (bot/data/transfer.py), our server
(`whoknows serve`'s aiohttp app) reading users.list from the fake Web API at start,
after an install and daily, events and commands signed as Slack signs them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from adapters.server import build_app
from adapters.slack.directory import PAGE_SIZE
from adapters.slack.settings import DIRECTORY_HOURS, SlackSettings
from bot.data.transfer import import_people
from bot.db.models import Person
from bot.router import Router
from bot.services import Services, accounts, people
from tests.adapters.slack.fake_slack import FakeSlack, member
from tests.adapters.slack.test_app import (
    all_text,
    block_actions,
    event,
    interactive,
    post,
    run,
    slash,
)
from tests.adapters.slack.test_app import single_workspace as one_token
from tests.conftest import NOW

FORM = "application/x-www-form-urlencoded"
# A lead's file: handles unrelated to Slack ids, e-mails in the case the lead typed
# them, and one Slack id given in the `slack` column (Priya's e-mail is not Slack's).
PEOPLE_CSV = (
    "id,name,team,timezone,skills,role,hours,verified,email,slack\n"
    "m.santos,Maria Santos,Billing,Europe/London,refunds:5;prepaid top-up:4,agent,"
    "07:00-19:00,refunds,Maria.Santos@Northwind.example,\n"
    "o.haddad,Omar Haddad,Billing,Europe/London,refunds:4,agent,07:00-19:00,,"
    "omar.haddad@northwind.example,\n"
    "p.sharma,Priya Sharma,Billing,Europe/London,refunds:3,lead,07:00-19:00,,,W0PRIYA\n"
    "a.kim,Alex Kim,Billing,Europe/London,roaming:2,agent,07:00-19:00,,"
    "alex.kim@northwind.example,\n"
)
# The same people in Slack's directory, with a newcomer, a bot and Slackbot.
MARIA = member("UMARIA", "maria", "Maria Santos", email="maria.santos@northwind.example")
OMAR = member("UOMAR", "omar", "Omar H.", email="OMAR.HADDAD@northwind.example")
PRIYA = member("W0PRIYA", "priya", "Priya Sharma", email="priya@elsewhere.example")
ALEX = member("UALEX", "alex", "Alex Kim", email="alex.kim@northwind.example")
KIM = member("UKIM", "kim", "Kim Min", email="kim.min@northwind.example", tz="Asia/Seoul")
BOT = member("UHELPER", "helper", "Helper", email="omar.haddad@northwind.example", is_bot=True)
SLACKBOT = member("USLACKBOT", "slackbot", "Slackbot")


def imported(services: Services, tmp_path: Path, text: str = PEOPLE_CSV) -> None:
    path = tmp_path / "people.csv"
    path.write_text(text, encoding="utf-8", newline="")
    assert import_people(services.db, path, NOW).ok


def persons(services: Services) -> int:
    with services.db.reading() as session:
        return session.scalar(select(func.count(Person.id))) or 0


def slack_of(services: Services, key: str) -> list[str]:
    """The Slack ids linked to a person."""
    with services.db.reading() as session:
        person = people.by_key(session, key)
        return sorted(i.external_id for i in person.identities if i.platform == "slack")


def record(services: Services, key: str) -> Person:
    """A person's row, deactivated or not."""
    with services.db.reading() as session:
        found = session.scalar(
            select(Person).where(Person.key == key).options(selectinload(Person.skills))
        )
        assert found is not None
        return found


def owner(services: Services, slack_id: str) -> str | None:
    with services.db.reading() as session:
        person = people.by_identity(session, "slack", slack_id)
        return person.key if person else None


async def until(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def directory(*users: dict[str, Any]) -> FakeSlack:
    fake = FakeSlack()
    fake.add_users(*users)
    return fake


async def answer(client: TestClient, fake: FakeSlack, text: str, user: str, key: str) -> list:
    """The blocks of `/whoknows text` asked by `user`, as Slack posts them back."""
    body = slash(fake, text, user, key=key)
    started = time.monotonic()
    response = await post(client, body, FORM)
    assert response.status == 200 and time.monotonic() - started < 3
    await fake.wait_for(lambda f: any(c.key == key for c in f.calls if c.method == "response_url"))
    return next(c.args for c in fake.calls if c.method == "response_url" and c.key == key)["blocks"]


def start_button(blocks: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The huddle picker (with its block id) and the Start button of an answer."""
    picker_block = next(
        b for b in blocks if b["type"] == "actions" for e in b["elements"] if "options" in e
    )
    picker = next(e for e in picker_block["elements"] if "options" in e)
    start = next(
        e
        for b in blocks
        if b["type"] == "actions"
        for e in b["elements"]
        if e.get("action_id") == "huddle.start"
    )
    # Slack names a block that has no block_id itself.
    return picker, start, picker_block.get("block_id", "b1")


def press_start(fake: FakeSlack, blocks: list[dict[str, Any]], user: str) -> bytes:
    """The asker presses *Start huddle thread*, the picker as shown (its initial options)."""
    picker, start, block_id = start_button(blocks)
    return interactive(
        block_actions(
            fake,
            user,
            "huddle",
            [
                {
                    "type": "button",
                    "action_id": start["action_id"],
                    "value": start["value"],
                    "block_id": "start",
                }
            ],
            picked=(block_id, picker["action_id"], picker.get("initial_options", [])),
        )
    )


# --- done means -------------------------------------------------------------------------


def test_imported_experts_are_mentioned_and_dmed_after_the_directory_read(
    services: Services, router: Router, tmp_path: Path
) -> None:
    imported(services, tmp_path)
    assert persons(services) == 4
    fake = directory(MARIA, OMAR, PRIYA, ALEX, KIM, BOT, SLACKBOT)

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        # Read at start, without anyone asking.
        await until(lambda: owner(services, "UKIM") is not None)
        assert persons(services) == 5  # the newcomer only
        # Linked by e-mail (in any case), or by the id the lead gave.
        assert slack_of(services, "m.santos") == ["UMARIA"]
        assert slack_of(services, "o.haddad") == ["UOMAR"]
        assert slack_of(services, "p.sharma") == ["W0PRIYA"]
        assert slack_of(services, "a.kim") == ["UALEX"]
        assert owner(services, "UHELPER") is None and owner(services, "USLACKBOT") is None

        blocks = await answer(client, fake, "refunds", "UALEX", "ask")
        text = all_text(blocks)
        for expert in ("<@UMARIA>", "<@UOMAR>", "<@W0PRIYA>"):
            assert expert in text
        assert "not on Slack yet" not in text

        response = await post(client, press_start(fake, blocks, "UALEX"), FORM)
        assert response.status == 200
        await fake.wait_for(lambda f: len(f.called("conversations.open")) >= 2)
        picker, _, _ = start_button(blocks)
        invited = {o["text"]["text"] for o in picker["initial_options"]}
        by_name = {"Maria Santos": "UMARIA", "Omar Haddad": "UOMAR", "Priya Sharma": "W0PRIYA"}
        assert {c["users"] for c in fake.called("conversations.open")} == {
            by_name[name] for name in invited
        }
        root = next(p for p in fake.called("chat.postMessage") if p["channel"] == "CGENERAL")
        assert all(f"<@{by_name[name]}>" in all_text(root["blocks"]) for name in invited)
        # Nobody was made twice: not the experts, nor the asker.
        assert persons(services) == 5

    run(services, router, scenario, link=False, fake=fake)


# --- reading users.list -----------------------------------------------------------------


def workspace(count: int) -> list[dict[str, Any]]:
    return [
        member(f"U{n:06d}", f"agent{n}", f"Agent {n}", email=f"agent{n}@northwind.example")
        for n in range(count)
    ]


def test_users_list_is_paged_by_cursor_and_a_429_is_waited_out_while_acks_go_on(
    services: Services, router: Router, caplog: pytest.LogCaptureFixture
) -> None:
    fake = directory(*workspace(450))
    fake.rate_limit("users.list", retry_after=2, on_call=2)

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        # While the read waits out Slack's Retry-After, commands are acked and answered.
        await fake.wait_for(lambda f: len(f.called("users.list")) >= 2)
        started = time.monotonic()
        await answer(client, fake, "help", "U000001", "meanwhile")
        assert time.monotonic() - started < 1.5
        assert len(fake.called("users.list")) == 2  # still waiting

        await until(lambda: persons(services) == 450)
        calls = [c for c in fake.calls if c.method == "users.list"]
        assert len(calls) == 4  # three pages, one of them asked twice
        assert {c.args["limit"] for c in calls} == {str(PAGE_SIZE)}
        cursors = [c.args.get("cursor") for c in calls]
        assert cursors[0] is None and cursors[1] == cursors[2] and cursors[3] not in cursors[:3]
        assert calls[2].at - calls[1].at >= 2.0  # Retry-After honoured
        await until(lambda: "450 user(s) done" in caplog.text)

    with caplog.at_level(logging.INFO, logger="adapters.slack.directory"):
        run(services, router, scenario, link=False, fake=fake)
    assert "rate-limited at page 2; waiting 2 s" in caplog.text
    assert "3 page(s), 450 user(s) done" in caplog.text
    assert "xoxb-test" not in caplog.text


def test_as_whoknows_serve_runs_it_the_directory_is_linked_in_a_process_of_its_own(
    services: Services, router: Router, tmp_path: Path
) -> None:
    imported(services, tmp_path)
    fake = directory(MARIA, OMAR, KIM, *workspace(120))

    def serving(fake: FakeSlack) -> dict[str, str]:
        # `whoknows serve`'s default: commands in a command process.
        return {**one_token(fake), "WHOKNOWS_COMMAND_PROCESSES": "1"}

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        await until(lambda: persons(services) == 4 + 1 + 120, timeout=60)
        assert slack_of(services, "m.santos") == ["UMARIA"]
        assert slack_of(services, "o.haddad") == ["UOMAR"]

    run(services, router, scenario, link=False, fake=fake, env=serving)


def test_two_processes_starting_together_read_the_directory_once(
    services: Services, router: Router
) -> None:
    fake = directory(*workspace(250))

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        app = build_app(services, router, one_token(fake), worker_interval=0.05)
        other = TestClient(TestServer(app))
        await other.start_server()
        try:
            await until(lambda: persons(services) == 250)
            await asyncio.sleep(0.5)
            assert len(fake.called("users.list")) == 2  # two pages, one read
        finally:
            await other.close()

    run(services, router, scenario, link=False, fake=fake)


def test_a_read_that_failed_is_tried_again_by_the_next_process(
    services: Services, router: Router
) -> None:
    fake = directory(MARIA)
    fake.fail("users.list", "missing_scope")

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        await fake.wait_for(lambda f: bool(f.called("users.list")))
        await asyncio.sleep(0.3)
        assert owner(services, "UMARIA") is None
        app = build_app(services, router, one_token(fake), worker_interval=0.05)
        other = TestClient(TestServer(app))
        await other.start_server()
        try:
            await until(lambda: owner(services, "UMARIA") == "maria")
        finally:
            await other.close()

    run(services, router, scenario, link=False, fake=fake)


def test_the_directory_is_read_again_once_a_period_has_passed(
    services: Services, router: Router, caplog: pytest.LogCaptureFixture
) -> None:
    fake = directory(MARIA)

    def often(fake: FakeSlack) -> dict[str, str]:
        return {**one_token(fake), DIRECTORY_HOURS: "0.0003"}  # about a second

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        await fake.wait_for(lambda f: len(f.called("users.list")) == 1)
        await asyncio.sleep(1.5)
        assert len(fake.called("users.list")) == 1  # not due: no time has passed
        fake.add_users(KIM)
        services.clock.advance(2.0)  # type: ignore[attr-defined]
        await fake.wait_for(lambda f: len(f.called("users.list")) == 2, timeout=5)
        await until(lambda: owner(services, "UKIM") == "kim")
        await until(lambda: caplog.text.count("2 user(s) done") == 1)

    with caplog.at_level(logging.INFO, logger="adapters.slack.directory"):
        run(services, router, scenario, link=False, fake=fake, env=often)
    # Maria, read again unchanged, needed no write.
    assert "1 created, 1 already linked (1 of them unchanged)" in caplog.text


def test_with_the_period_zero_the_directory_is_not_read_and_events_still_link(
    services: Services, router: Router, tmp_path: Path
) -> None:
    imported(services, tmp_path)
    fake = directory(MARIA)

    def never(fake: FakeSlack) -> dict[str, str]:
        return {**one_token(fake), DIRECTORY_HOURS: "0"}

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        await asyncio.sleep(0.5)
        assert not fake.called("users.list") and not fake.called("auth.test")
        await post(client, event({"type": "team_join", "user": OMAR}, "EvJoin"), "application/json")
        await until(lambda: owner(services, "UOMAR") == "o.haddad")

    run(services, router, scenario, link=False, fake=fake, env=never)


# --- who is linked to whom --------------------------------------------------------------


def test_a_guest_with_an_imported_persons_e_mail_is_not_linked_to_them(
    services: Services, router: Router, tmp_path: Path
) -> None:
    imported(services, tmp_path)
    guest = member(
        "UGUEST", "omar", "Omar Haddad", email="omar.haddad@northwind.example", is_restricted=True
    )
    single = member(
        "UGUEST2",
        "maria",
        "Maria Santos",
        email="maria.santos@northwind.example",
        is_ultra_restricted=True,
    )
    fake = directory(guest, single, ALEX)

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        await until(lambda: owner(services, "UGUEST2") is not None)
        # Each guest is someone of their own, without the e-mail they showed.
        assert owner(services, "UGUEST") not in (None, "o.haddad")
        assert owner(services, "UGUEST2") not in (None, "m.santos")
        assert slack_of(services, "o.haddad") == [] and slack_of(services, "m.santos") == []
        with services.db.reading() as session:
            omar = people.by_key(session, "o.haddad")
            assert omar.email == "omar.haddad@northwind.example"
            guests = [people.by_identity(session, "slack", g) for g in ("UGUEST", "UGUEST2")]
            assert [g.email for g in guests if g is not None] == [None, None]
        # The imported Omar is still shown, and said to be out of Slack's reach.
        text = all_text(await answer(client, fake, "refunds", "UALEX", "ask"))
        assert "Omar Haddad* · _not on Slack yet_" in text
        assert "<@UGUEST>" not in text

    run(services, router, scenario, link=False, fake=fake)


def test_bots_apps_and_slackbot_are_nobody_to_link(
    services: Services, router: Router, tmp_path: Path
) -> None:
    imported(services, tmp_path)
    app_user = member("UAPP", "app", "An app", email="alex.kim@northwind.example", is_app_user=True)
    fake = directory(BOT, app_user, SLACKBOT, KIM)

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        await until(lambda: owner(services, "UKIM") is not None)
        joined = [
            member("UBOT2", "bot2", "Bot 2", email="bot2@northwind.example", is_bot=True),
            member(
                "UAPP2", "app2", "App 2", email="omar.haddad@northwind.example", is_app_user=True
            ),
        ]
        for n, user in enumerate(joined):
            await post(client, user_event("team_join", user, n), "application/json")
        await asyncio.sleep(0.3)
        assert persons(services) == 5  # the four imported and Kim
        for bot in ("UHELPER", "UAPP", "USLACKBOT", "UBOT2", "UAPP2"):
            assert owner(services, bot) is None
        assert slack_of(services, "o.haddad") == [] and slack_of(services, "a.kim") == []

    run(services, router, scenario, link=False, fake=fake)


def test_someone_met_first_in_a_command_is_linked_by_users_info(
    services: Services, router: Router, tmp_path: Path
) -> None:
    imported(services, tmp_path)
    fake = directory()  # an empty directory at start: Alex joins after it was read

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        await fake.wait_for(lambda f: bool(f.called("users.list")))
        fake.add_users(ALEX)
        await answer(client, fake, "refunds", "UALEX", "ask")
        assert [c["user"] for c in fake.called("users.info")] == ["UALEX"]
        assert owner(services, "UALEX") == "a.kim" and persons(services) == 4

    run(services, router, scenario, link=False, fake=fake)


# --- events -----------------------------------------------------------------------------


def user_event(kind: str, user: dict[str, Any], n: int) -> bytes:
    return event({"type": kind, "user": user}, f"Ev{kind}{n}")


def test_team_join_links_the_imported_person_and_user_change_keeps_them_in_step(
    services: Services, router: Router, tmp_path: Path
) -> None:
    imported(services, tmp_path)
    fake = directory(ALEX)

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        await until(lambda: owner(services, "UALEX") == "a.kim")
        await post(client, user_event("team_join", MARIA, 1), "application/json")
        await post(client, user_event("team_join", KIM, 2), "application/json")
        await until(lambda: owner(services, "UMARIA") == "m.santos")
        await until(lambda: owner(services, "UKIM") == "kim")
        assert persons(services) == 5

        # Kim (whom Slack brought) changes her e-mail: hers follows. Maria's changes
        # too: the e-mail the lead gave stays, and so does the link.
        kim = member("UKIM", "kim", "Kim Min", email="Kim.Min@Seoul.example", tz="Asia/Seoul")
        maria = member("UMARIA", "maria", "Maria Santos", email="m.santos@personal.example")
        await post(client, user_event("user_change", kim, 3), "application/json")
        await post(client, user_event("user_change", maria, 4), "application/json")

        await until(lambda: record(services, "kim").email == "Kim.Min@Seoul.example")
        await asyncio.sleep(0.2)
        assert record(services, "m.santos").email == "Maria.Santos@Northwind.example"
        assert owner(services, "UMARIA") == "m.santos"

        # Deactivated: Maria is no longer suggested; her skills are kept.
        gone = member("UMARIA", "maria", "Maria Santos", deleted=True)
        await post(client, user_event("user_change", gone, 5), "application/json")
        await until(lambda: record(services, "m.santos").deleted_at is not None)
        text = all_text(await answer(client, fake, "refunds", "UALEX", "after-leaving"))
        assert "Maria Santos" not in text and "<@UMARIA>" not in text
        assert len(record(services, "m.santos").skills) == 2
        # Back again: suggested again.
        await post(client, user_event("user_change", MARIA, 6), "application/json")
        await until(lambda: record(services, "m.santos").deleted_at is None)
        assert "<@UMARIA>" in all_text(await answer(client, fake, "refunds", "UALEX", "back"))
        assert persons(services) == 5

    run(services, router, scenario, link=False, fake=fake)


def test_an_e_mail_change_to_someone_elses_is_listed_for_admins_not_merged(
    services: Services, router: Router, tmp_path: Path
) -> None:
    imported(services, tmp_path)
    fake = directory(KIM)

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        await until(lambda: owner(services, "UKIM") == "kim")
        # Kim's Slack account now shows Omar's e-mail (a shared mailbox, a mistake):
        # two people, one e-mail. An admin decides.
        claims = member("UKIM", "kim", "Kim Min", email="omar.haddad@northwind.example")
        await post(client, user_event("user_change", claims, 1), "application/json")

        def listed() -> list[str]:
            with services.db.reading() as session:
                return [accounts.describe(c) for c in accounts.open_conflicts(session)]

        await until(lambda: bool(listed()))
        assert listed() == ["kim claims the e-mail omar.haddad@northwind.example of o.haddad"]
        assert owner(services, "UKIM") == "kim" and slack_of(services, "o.haddad") == []
        assert record(services, "kim").email == "kim.min@northwind.example"

    run(services, router, scenario, link=False, fake=fake)


def test_a_deactivated_account_nobody_had_makes_nobody(services: Services, router: Router) -> None:
    fake = directory(member("UGONE", "gone", "Gone Away", deleted=True), KIM)

    async def scenario(client: TestClient, fake: FakeSlack) -> None:
        await until(lambda: owner(services, "UKIM") == "kim")
        assert owner(services, "UGONE") is None and persons(services) == 1

    run(services, router, scenario, link=False, fake=fake)


# --- settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "hours"), [(None, 24.0), ("", 24.0), (" 12 ", 12.0), ("0", 0.0), ("1.5", 1.5)]
)
def test_the_period_is_read_from_the_environment(text: str | None, hours: float) -> None:
    env = {"SLACK_BOT_TOKEN": "xoxb-x", "SLACK_SIGNING_SECRET": "s"}
    if text is not None:
        env[DIRECTORY_HOURS] = text
    assert SlackSettings.from_env(env).directory_hours == hours


@pytest.mark.parametrize("text", ["daily", "-1", "nan", "1e9"])
def test_a_period_that_is_not_a_number_of_hours_is_refused_by_name(text: str) -> None:
    with pytest.raises(ValueError, match=DIRECTORY_HOURS):
        SlackSettings.from_env({DIRECTORY_HOURS: text})
