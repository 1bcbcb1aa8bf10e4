"""Activities → Commands, settings from the environment, retries and the loopback rule."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from adapters.teams import translate
from adapters.teams.app import over_loopback
from adapters.teams.graph import to_status
from adapters.teams.http import HttpError, request_json, retry_after
from adapters.teams.settings import TeamsConfigError, TeamsSettings
from bot.db.models import Status
from tests.adapters.teams.fake_teams import BOT, FakeConnector


def channel_message(text: str, entities: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {
        "type": "message",
        "id": "1700000000123",
        "text": text,
        "entities": entities,
        "from": {"id": "29:alex", "aadObjectId": "a-1", "name": "Alex Kim"},
        "recipient": {"id": BOT, "name": "whoknows"},
        "conversation": {
            "id": "19:chan@thread.tacv2;messageid=1699",
            "conversationType": "channel",
        },
        "channelData": {
            "team": {"id": "19:team@thread.tacv2"},
            "channel": {"id": "19:chan@thread.tacv2"},
            "tenant": {"id": "t-1"},
        },
        **fields,
    }


def mention(user_id: str, name: str) -> dict[str, Any]:
    return {
        "type": "mention",
        "text": f"<at>{name}</at>",
        "mentioned": {"id": user_id, "name": name},
    }


def test_a_channel_mention_becomes_a_command_without_the_bot_and_with_people_as_tokens() -> None:
    activity = channel_message(
        "<div><at>whoknows</at> huddle refunds &amp; top-ups <at>Maria Santos</at></div>",
        [mention(BOT, "whoknows"), mention("29:maria", "Maria Santos")],
    )
    said = translate.said(activity)
    assert said.to_bot is True
    assert said.text == "huddle refunds & top-ups @Maria_Santos"
    channel = translate.said(
        channel_message(
            "<at>whoknows</at> ask in <at>Billing Huddles</at>",
            [mention(BOT, "whoknows"), mention("19:chan@thread.tacv2", "Billing Huddles")],
        )
    )
    assert channel.text == "ask in Billing Huddles" and channel.mentions == {}
    assert said.mentions["@Maria_Santos"].id == "29:maria"
    command = translate.text_command(activity, 1, said.text, {"@Maria_Santos": 7})
    assert (command.name, command.text, command.private) == (
        "huddle",
        "refunds & top-ups @Maria_Santos",
        False,
    )
    assert command.where.channel == "19:chan@thread.tacv2" and command.where.thread == "1699"
    assert command.where.team == "19:team@thread.tacv2"


def test_a_thread_reply_without_the_bot_is_not_addressed_to_it() -> None:
    said = translate.said(channel_message("Raise a Top-up Reversal", []))
    assert said.to_bot is False
    command = translate.thread_message(channel_message("Raise a Top-up Reversal", []), 3)
    assert command.action_id == "huddle.message" and command.where.thread == "1699"


def test_card_buttons_from_submit_and_execute() -> None:
    submit = channel_message(
        "", [], value={"wk.action": "huddle.start", "wk.value": "{}", "experts": "7,9"}
    )
    data = translate.card_data(submit)
    command = translate.card_action(data, submit, 1)
    assert (command.action_id, command.text, command.values) == (
        "huddle.start",
        "{}",
        {"experts": "7,9"},
    )
    execute = channel_message(
        "",
        [],
        type="invoke",
        name="adaptiveCard/action",
        value={
            "action": {"type": "Action.Execute", "verb": "kb.helpful", "data": {"wk.value": "4"}}
        },
    )
    command = translate.card_action(translate.card_data(execute), execute, 1)
    assert (command.action_id, command.text) == ("kb.helpful", "4")
    assert translate.card_data(channel_message("", [], value={"other": 1})) is None


def test_installs_and_removals() -> None:
    added = translate.roster(
        channel_message("", [], type="conversationUpdate", membersAdded=[{"id": BOT}])
    )
    assert added.greet and added.installed and not added.added
    removed = translate.roster(channel_message("", [], type="installationUpdate", action="remove"))
    assert removed.uninstalled and not removed.installed
    people = translate.roster(
        channel_message("", [], type="conversationUpdate", membersRemoved=[{"id": "29:maria"}])
    )
    assert [a.id for a in people.removed] == ["29:maria"] and not people.uninstalled


def test_settings_never_show_secrets_and_check_the_tenant() -> None:
    settings = TeamsSettings.from_env(
        {
            "MICROSOFT_APP_ID": "app",
            "MICROSOFT_APP_PASSWORD": "s3cret-password",
            "GRAPH_TENANT_ID": "t-1",
        }
    )
    assert settings.enabled and settings.graph_enabled
    assert settings.bot_authority == "https://login.microsoftonline.com/botframework.com"
    assert "s3cret" not in repr(settings) and "s3cret" not in repr(settings.__dict__.keys())
    single = TeamsSettings.from_env(
        {
            "MICROSOFT_APP_ID": "app",
            "MICROSOFT_APP_PASSWORD": "p",
            "MICROSOFT_APP_TYPE": "singletenant",
            "MICROSOFT_APP_TENANT_ID": "t-9",
        }
    )
    assert single.app_type == "SingleTenant"
    assert single.bot_authority == "https://login.microsoftonline.com/t-9"
    with pytest.raises(TeamsConfigError, match="MICROSOFT_APP_TENANT_ID"):
        TeamsSettings.from_env(
            {
                "MICROSOFT_APP_ID": "a",
                "MICROSOFT_APP_PASSWORD": "p",
                "MICROSOFT_APP_TYPE": "SingleTenant",
            }
        )
    with pytest.raises(TeamsConfigError, match="MICROSOFT_APP_TYPE"):
        TeamsSettings.from_env({"MICROSOFT_APP_TYPE": "UserAssignedMSI"})
    assert not TeamsSettings.from_env({}).enabled


@dataclass
class _Transport:
    local: tuple[str, int]

    def get_extra_info(self, name: str) -> Any:
        return self.local if name == "sockname" else None


@dataclass
class _Request:
    transport: _Transport
    remote: str


@pytest.mark.parametrize(
    ("local", "remote", "taken"),
    [
        ("127.0.0.1", "127.0.0.1", True),
        ("::1", "::1", True),
        ("10.0.0.5", "10.0.0.9", False),
        ("0.0.0.0", "192.168.1.20", False),
        ("127.0.0.1", "203.0.113.7", False),  # forwarded onto loopback from outside
    ],
)
def test_without_an_app_id_only_loopback_is_taken(local: str, remote: str, taken: bool) -> None:
    request = _Request(_Transport((local, 3978)), remote)
    assert over_loopback(request) is taken  # type: ignore[arg-type]


def test_retry_after_in_seconds_or_as_a_date() -> None:
    now = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
    assert retry_after("3") == 3.0
    assert retry_after("Mon, 23 Nov 2026 10:00:05 GMT", now) == 5.0
    assert retry_after("soon") is None and retry_after(None) is None


def test_busy_statuses_are_retried_and_others_are_not() -> None:
    async def main() -> tuple[list[float], int]:
        fake = FakeConnector()
        await fake.start()
        waits: list[float] = []

        async def sleep(seconds: float) -> None:
            waits.append(seconds)

        try:
            fake.fail("POST", "/v3/conversations/x/activities", 502)
            fake.fail("POST", "/v3/conversations/x/activities", 412)
            fake.fail("POST", "/v3/conversations/x/activities", 504)
            async with aiohttp.ClientSession() as session:
                url = fake.url + "/v3/conversations/x/activities"
                answer = await request_json(session, "POST", url, body={}, sleep=sleep)
                assert answer["id"]
                fake.fail("POST", "/v3/conversations/x/activities", 400)
                with pytest.raises(HttpError) as refused:
                    await request_json(session, "POST", url, body={}, sleep=sleep)
                # A wait longer than we hold a delivery for goes back to the outbox.
                fake.fail("POST", "/v3/conversations/x/activities", 429, retry_after=120)
                with pytest.raises(HttpError):
                    await request_json(session, "POST", url, body={}, sleep=sleep)
        finally:
            await fake.close()
        return waits, refused.value.status

    waits, status = asyncio.run(main())
    assert len(waits) == 3 and status == 400
    # Full jitter: each wait at most base·2^attempt.
    assert all(0 <= w <= 0.5 * 2**i for i, w in enumerate(waits))


@pytest.mark.parametrize(
    ("availability", "activity", "status"),
    [
        ("Available", "Available", Status.AVAILABLE),
        ("Busy", "InACall", Status.ON_CALL),
        ("Busy", "InAMeeting", Status.BUSY),
        ("DoNotDisturb", "Presenting", Status.BUSY),
        ("Away", "OutOfOffice", Status.OFF),
        ("BeRightBack", "BeRightBack", Status.AWAY),
        ("Offline", "OffWork", Status.OFF),
        ("PresenceUnknown", "PresenceUnknown", None),
    ],
)
def test_graph_presence_maps_to_our_statuses(
    availability: str, activity: str, status: Status | None
) -> None:
    assert to_status(availability, activity) == status
