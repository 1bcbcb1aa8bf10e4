"""Huddles in Teams end to end, installs and rosters, presence, and the connector failing."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from sqlalchemy import select

from bot.db.models import (
    DeliveryState,
    Huddle,
    HuddleState,
    KnowledgeEntry,
    Outbox,
    Person,
    Status,
    TeamsChannel,
    TeamsUser,
)
from bot.router import Router
from bot.services import Services, people, presence
from tests.adapters.teams.conftest import Teams
from tests.adapters.teams.fake_teams import HUDDLES, TEAM, TENANT, USERS, FakeConnector
from tests.adapters.teams.test_app import card_of, text_of


def person_id(services: Services, key: str) -> int:
    with services.db.unit_of_work() as session:
        return people.by_key(session, key).id


def root_posts(connector: FakeConnector) -> list[Any]:
    """Channel posts: conversations created in the huddle channel."""
    return [
        c
        for c in connector.sent("POST", "/v3/conversations")
        if c.path == "/v3/conversations" and c.body.get("isGroup")
    ]


async def installed(teams: Teams) -> None:
    """The app added to the team, its channels and roster read, the welcome posted."""
    assert (await teams.send(teams.install())).status == 200
    await teams.connector.wait_for(
        lambda c: any(call.path == f"/v3/conversations/{TEAM}/activities" for call in c.calls)
    )
    await teams.connector.wait_for(lambda c: roster_read(teams))


def roster_read(teams: Teams) -> bool:
    """Everyone in the fake roster is known to the bot, with their Teams ids."""
    wanted = {m["aadObjectId"] for m in teams.connector.members}
    with teams.adapter.services.db.reading() as session:
        known = set(session.scalars(select(TeamsUser.aad_object_id)))
    return wanted <= known


def submits(card: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Action.Submit data by action id, anywhere in the card."""
    found: dict[str, dict[str, Any]] = {}

    def walk(items: list[dict[str, Any]]) -> None:
        for item in items:
            for action in item.get("actions", []):
                if action["type"] == "Action.Submit":
                    found.setdefault(action["data"]["wk.action"], action["data"])
            walk(item.get("items", []))

    walk(card["body"])
    return found


def test_installing_reads_channels_and_roster_and_says_hello(
    demo: Services, router: Router, teams_env
) -> None:
    async def scenario(teams: Teams) -> None:
        await installed(teams)
        welcome = teams.connector.sent("POST", f"/v3/conversations/{TEAM}/activities")[0]
        assert "I find the colleague who knows" in text_of(card_of(welcome.body))
        # Both pages of the roster were read.
        pages = teams.connector.sent("GET", "/pagedmembers")
        assert len(pages) == 2

    teams_env(demo, router, scenario)
    with demo.db.unit_of_work() as session:
        channels = {c.conversation_id: c.name for c in session.scalars(select(TeamsChannel))}
        assert channels[HUDDLES] == "billing-huddles" and TEAM in channels
        maria = session.scalar(select(TeamsUser).where(TeamsUser.user_id == "29:maria"))
        assert maria.aad_object_id == USERS["maria"].aad and maria.tenant_id == TENANT


def test_a_huddle_from_the_button_to_the_saved_answer(
    demo: Services, router: Router, teams_env
) -> None:
    maria, omar = person_id(demo, "maria"), person_id(demo, "omar")

    async def scenario(teams: Teams) -> None:
        connector = teams.connector
        await installed(teams)
        ask = teams.activity("alex", "refund for a prepaid top-up")
        await teams.send(ask)
        await connector.wait_for(lambda c: bool(c.sent("POST", f"/activities/{ask['id']}")))
        answer = connector.sent("POST", f"/activities/{ask['id']}")[0]
        start = submits(card_of(answer.body))["huddle.start"]

        # Alex picks Maria and Omar and presses Start huddle.
        press = teams.activity(
            "alex",
            value={**start, "experts": f"{maria},{omar}"},
            replyToId=answer.answer["id"],
        )
        await teams.send(press)
        # The thread root in the huddle channel, and a proactive 1:1 message to each expert.
        await connector.wait_for(lambda c: len(c.sent("POST", "a:chat-29:omar/activities")) == 1)
        await connector.wait_for(lambda c: len(c.sent("POST", "a:chat-29:maria/activities")) == 1)
        (root,) = root_posts(connector)
        assert root.body["channelData"]["channel"]["id"] == HUDDLES
        card = card_of(root.body)
        assert "<at>Maria Santos</at>" in text_of(card) and "<at>Omar Haddad</at>" in text_of(card)
        mentioned = {e["mentioned"]["id"] for e in card["msteams"]["entities"]}
        assert {USERS["maria"].aad, USERS["omar"].aad, USERS["alex"].aad} <= mentioned
        chats = [
            c.body["members"][0]["id"]
            for c in connector.sent("POST", "/v3/conversations")
            if c.path == "/v3/conversations" and not c.body.get("isGroup")
        ]
        assert sorted(chats) == ["29:maria", "29:omar"]
        dm = connector.sent("POST", "a:chat-29:maria/activities")[0]
        assert "Alex Turner asked for your help" in text_of(card_of(dm.body))
        post_id = root.answer["activityId"]
        thread = f"{HUDDLES};messageid={post_id}"

        # Maria answers in the thread (the bot sees it through ChannelMessage.Read.Group).
        reply = teams.activity(
            "maria", "Raise a Top-up Reversal", conversation=thread, conversation_type="channel"
        )
        await teams.send(reply)

        def replied(_: FakeConnector) -> bool:
            with demo.db.unit_of_work() as session:
                return session.scalars(select(Huddle)).one().first_reply_at is not None

        await connector.wait_for(replied)

        # Alex presses Resolve on the root: the form comes to his 1:1 chat, not the channel.
        resolve = submits(card)["huddle.resolve"]
        await teams.send(
            teams.activity(
                "alex",
                value=resolve,
                conversation=thread,
                conversation_type="channel",
                replyToId=post_id,
            )
        )
        await connector.wait_for(lambda c: bool(form_posts(c)))
        (form_post,) = form_posts(connector)
        form = card_of(form_post.body)
        inputs = {e["id"] for e in form["body"][0]["items"] if e["type"].startswith("Input.")}
        assert inputs == {"title", "answer", "tags"}
        submit = submits(form)["huddle.resolve.submit"]
        await teams.send(
            teams.activity(
                "alex",
                value={
                    **submit,
                    "title": "Wrong-number top-ups",
                    "answer": "Reverse with TU-07.",
                    "tags": "refunds",
                },
                replyToId=form_post.answer["id"],
            )
        )
        # The form is replaced by the outcome, and the thread root updated in place.
        await connector.wait_for(
            lambda c: bool(c.sent("PUT", f"a:chat-29:alex/activities/{form_post.answer['id']}"))
        )
        await connector.wait_for(lambda c: bool(c.sent("PUT", f"{thread}/activities/{post_id}")))
        update = connector.sent("PUT", f"{thread}/activities/{post_id}")[-1]
        assert update.body["id"] == post_id
        assert "saved as knowledge entry" in text_of(card_of(update.body))

    teams_env(demo, router, scenario)
    with demo.db.unit_of_work() as session:
        huddle = session.scalars(select(Huddle)).one()
        assert huddle.platform == "teams" and huddle.channel_ref == HUDDLES
        assert huddle.state == HuddleState.RESOLVED
        entry = session.scalar(select(KnowledgeEntry).where(KnowledgeEntry.huddle_id == huddle.id))
        assert entry.title == "Wrong-number top-ups"
        assert [a.key for a in entry.authors] == ["maria"]


def form_posts(connector: FakeConnector) -> list[Any]:
    """Messages to Alex's 1:1 chat (not replies to something he wrote) holding a form."""
    return [
        c
        for c in connector.sent("POST", "/v3/conversations/a:chat-29:alex/activities")
        if c.path.endswith("/activities") and "Input.Text" in json.dumps(c.body)
    ]


def _huddle_with_maria(teams: Teams) -> dict[str, Any]:
    """`huddle chargebacks @Maria Santos` typed in Alex's chat, with the mention entity."""
    text, entity = teams.mention("maria")
    return teams.activity("alex", f"huddle chargebacks {text}", entities=[entity])


@pytest.mark.reliability(25)
def test_a_throttled_channel_post_is_delivered_once_after_backoff(
    demo: Services, router: Router, teams_env
) -> None:
    async def scenario(teams: Teams) -> None:
        await installed(teams)
        teams.connector.fail("POST", "/v3/conversations", 429, retry_after=1)
        await teams.send(_huddle_with_maria(teams))
        await teams.connector.wait_for(lambda c: len(root_posts(c)) == 2, timeout=20)
        first, second = root_posts(teams.connector)
        assert second.at - first.at >= 1.0
        assert first.answer is None and second.answer is not None
        await asyncio.sleep(0.5)
        assert len(root_posts(teams.connector)) == 2  # no third try

    teams_env(demo, router, scenario)
    with demo.db.unit_of_work() as session:
        huddle = session.scalars(select(Huddle)).one()
        assert huddle.channel_ref == HUDDLES and huddle.thread_ref is not None
        root = session.scalars(select(Outbox).where(Outbox.is_root.is_(True))).one()
        assert root.state == DeliveryState.SENT and root.attempts == 1


@pytest.mark.reliability(25)
def test_a_blocked_expert_is_marked_inactive_and_the_asker_told(
    demo: Services, router: Router, teams_env
) -> None:
    async def scenario(teams: Teams) -> None:
        await installed(teams)
        teams.connector.fail("POST", "a:chat-29:maria/activities", 403)
        await teams.send(_huddle_with_maria(teams))

        def told(c: FakeConnector) -> bool:
            return any(
                "could not message Maria Santos" in json.dumps(call.body)
                for call in c.sent("POST", f"{HUDDLES};messageid=")
            )

        await teams.connector.wait_for(told)
        note = next(
            c
            for c in teams.connector.sent("POST", f"{HUDDLES};messageid=")
            if "could not message" in json.dumps(c.body)
        )
        entities = card_of(note.body)["msteams"]["entities"]
        assert [e["mentioned"]["id"] for e in entities] == [USERS["alex"].aad]
        await asyncio.sleep(0.3)
        # No more tries at a chat that refused.
        assert len(teams.connector.sent("POST", "a:chat-29:maria/activities")) == 1

    teams_env(demo, router, scenario)
    with demo.db.unit_of_work() as session:
        maria = session.scalar(select(TeamsUser).where(TeamsUser.user_id == "29:maria"))
        assert maria.active is False
        dm = session.scalars(
            select(Outbox).where(Outbox.kind == "dm", Outbox.person_id == maria_id(session))
        ).one()
        assert dm.state == DeliveryState.FAILED and "blocked" in (dm.error or "")


def maria_id(session: Any) -> int:
    return people.by_key(session, "maria").id


def test_members_added_and_removed_keep_the_roster_in_step(
    demo: Services, router: Router, teams_env
) -> None:
    kim = {
        "id": "29:kim",
        "name": "Kim Min",
        "aadObjectId": "eeeeeeee-0000-4000-8000-0000000000e1",
        "userPrincipalName": "kim.min@contoso.example",
    }

    async def scenario(teams: Teams) -> None:
        teams.connector.members.append(kim)
        update = teams.activity(
            "priya",
            kind="conversationUpdate",
            conversation=TEAM,
            conversation_type="channel",
            membersAdded=[{"id": "29:kim", "aadObjectId": kim["aadObjectId"]}],
            membersRemoved=[USERS["maria"].account()],
            text=None,
        )
        assert (await teams.send(update)).status == 200
        renamed = teams.activity(
            "priya",
            kind="conversationUpdate",
            conversation=TEAM,
            conversation_type="channel",
            text=None,
        )
        renamed["channelData"].update(
            {"eventType": "channelRenamed", "channel": {"id": HUDDLES, "name": "Billing Huddles"}}
        )
        assert (await teams.send(renamed)).status == 200
        await asyncio.sleep(0.8)

    teams_env(demo, router, scenario)
    with demo.db.unit_of_work() as session:
        new = people.by_identity(session, "teams", kim["aadObjectId"])
        assert (new.display_name, new.key) == ("Kim Min", "kim.min")
        maria = session.scalar(select(Person).where(Person.key == "maria"))
        assert maria.deleted_at is not None
        channel = session.scalar(
            select(TeamsChannel).where(TeamsChannel.conversation_id == HUDDLES)
        )
        assert channel.name == "Billing Huddles"


def test_an_uninstall_stops_posts_in_that_team(demo: Services, router: Router, teams_env) -> None:
    async def scenario(teams: Teams) -> None:
        await installed(teams)
        removed = teams.activity(
            "priya",
            kind="installationUpdate",
            action="remove",
            conversation=TEAM,
            conversation_type="channel",
            text=None,
        )
        await teams.send(removed)
        await asyncio.sleep(0.5)
        await teams.send(_huddle_with_maria(teams))
        await asyncio.sleep(1.0)
        assert root_posts(teams.connector) == []

    teams_env(demo, router, scenario)
    with demo.db.unit_of_work() as session:
        root = session.scalars(select(Outbox).where(Outbox.is_root.is_(True))).one()
        assert root.state == DeliveryState.FAILED and "standard channel" in (root.error or "")


def test_graph_presence_becomes_status_unless_set_in_the_bot(
    demo: Services, router: Router, teams_env
) -> None:
    with demo.db.unit_of_work() as session:
        alex = people.by_key(session, "alex")
        presence.set_status(session, alex, Status.BUSY, demo.clock())  # said in the bot

    async def scenario(teams: Teams) -> None:
        teams.connector.presences.update(
            {
                USERS["maria"].aad: ("Busy", "InACall"),
                USERS["omar"].aad: ("Away", "Away"),
                USERS["alex"].aad: ("Available", "Available"),
            }
        )
        await installed(teams)
        assert await teams.adapter.refresh_presence() == 2
        asked = teams.connector.sent("POST", "getPresencesByUserId")[-1]
        assert set(asked.body["ids"]) >= {u.aad for u in USERS.values()}
        assert asked.authorization == "Bearer token:https://graph.microsoft.com/.default"
        graph_grant = [g for g in teams.login.token_requests if g["tenant"] == TENANT]
        assert graph_grant and graph_grant[0]["grant_type"] == "client_credentials"

    teams_env(
        demo,
        router,
        scenario,
        env={"GRAPH_TENANT_ID": TENANT, "GRAPH_PRESENCE_INTERVAL": "3600"},
    )
    with demo.db.unit_of_work() as session:
        now = demo.clock()
        shown = {
            key: presence.current(people.by_key(session, key), now).status
            for key in ("maria", "omar", "alex")
        }
    assert shown == {"maria": "on_call", "omar": "away", "alex": "busy"}
