"""One expert graph on Teams: the people in a team's roster are the people a lead imported.

Through the Bot Framework protocol: rosters read from the fake connector a page at a
time (on install, on start, daily), linked by e-mail to imported people, who then
get real mentions and proactive 1:1 chats; guests linked by id alone; doubts listed.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from adapters.teams import roster
from adapters.teams.app import TeamsAdapter
from adapters.teams.settings import TeamsConfigError, TeamsSettings
from bot.data import transfer
from bot.db.models import AuditEntry, KnowledgeAuthor, Person, Team
from bot.router import Router
from bot.services import Services, accounts, people
from tests.adapters.teams.conftest import Teams
from tests.adapters.teams.fake_teams import HUDDLES, TEAM, USERS, FakeConnector, demo_user
from tests.adapters.teams.test_app import card_of, text_of
from tests.adapters.teams.test_huddle import installed, root_posts, roster_read

DOMAIN = "northwind-mobile.example"
# Ids a lead's spreadsheet gives: nothing to do with Teams ids. One e-mail in other case.
PEOPLE_CSV = f"""id,name,team,email,skills,role,verified
E-1001,Alex Turner,Billing,alex.turner@{DOMAIN},,agent,
E-1002,Maria Santos,Billing,Maria.Santos@Northwind-Mobile.example,refunds:5,agent,refunds
E-1003,Omar Haddad,Billing,omar.haddad@{DOMAIN},refunds:4,agent,refunds
E-1004,Priya Sharma,Billing,priya.sharma@{DOMAIN},refunds:3,lead,
E-1005,Zoe Martin,Billing,zoe.martin@{DOMAIN},refunds:2,agent,
"""


def count_people(services: Services) -> int:
    with services.db.reading() as session:
        return session.scalar(select(func.count()).select_from(Person)) or 0


def teams_person(services: Services, aad: str) -> tuple[str, str | None] | None:
    """(key, e-mail) of the person a Teams account is linked to."""
    with services.db.reading() as session:
        identity = accounts.find_identities(session, "teams", [aad]).get(aad.lower())
        return (identity.person.key, identity.person.email) if identity else None


def teams_accounts(services: Services, key: str) -> set[str]:
    with services.db.reading() as session:
        person = session.scalar(select(Person).where(Person.key == key))
        return {i.external_id for i in person.identities if i.platform == "teams"}


async def answer_to(teams: Teams, user: str, text: str) -> dict[str, Any]:
    """Ask in the user's 1:1 chat with the bot; the answer's Adaptive Card."""
    ask = teams.activity(user, text)
    assert (await teams.send(ask)).status == 200
    await teams.connector.wait_for(lambda c: bool(c.sent("POST", f"/activities/{ask['id']}")))
    return card_of(teams.connector.sent("POST", f"/activities/{ask['id']}")[0].body)


def mentioned(card: dict[str, Any]) -> dict[str, str]:
    """The card's mention entities: mentioned id → name."""
    entities = card["msteams"].get("entities", [])
    assert all(e["type"] == "mention" and e["text"] in text_of(card) for e in entities)
    return {e["mentioned"]["id"]: e["mentioned"]["name"] for e in entities}


def test_imported_people_are_the_roster_s_people_with_mentions_and_1_1_chats(
    services: Services, router: Router, teams_env, tmp_path: Path
) -> None:
    csv = tmp_path / "people.csv"
    csv.write_text(PEOPLE_CSV)
    report = transfer.import_people(services.db, csv, services.clock())
    assert (report.created, report.errors) == (5, [])
    with services.db.unit_of_work() as session:
        session.scalar(
            select(Team).where(Team.name == "Billing")
        ).huddle_channel = "billing-huddles"
    assert count_people(services) == 5

    async def scenario(teams: Teams) -> None:
        connector = teams.connector
        await installed(teams)  # the roster read, page by page
        assert len(connector.sent("GET", f"/v3/conversations/{TEAM}/pagedmembers")) == 2

        card = await answer_to(teams, "alex", "whoknows refunds")
        text = text_of(card)
        # Real mentions of the imported experts, with their Teams (AAD) ids …
        assert mentioned(card) == {
            USERS["maria"].aad: "Maria Santos",
            USERS["omar"].aad: "Omar Haddad",
            USERS["priya"].aad: "Priya Sharma",
        }
        assert "<at>Maria Santos</at>" in text
        # … and the one who is not on Teams still shown, by name, never a mention.
        assert "**Zoe Martin**" in text and "not on Teams yet" in text
        assert text.count("not on Teams yet") == 1

        # A huddle thread with the two (named by their Teams mentions): they are
        # mentioned in the post and messaged 1:1.
        (maria, maria_entity), (omar, omar_entity) = map(teams.mention, ("maria", "omar"))
        huddle = teams.activity(
            "alex", f"huddle refunds {maria} {omar}", entities=[maria_entity, omar_entity]
        )
        await teams.send(huddle)
        await connector.wait_for(lambda c: len(c.sent("POST", "a:chat-29:omar/activities")) == 1)
        await connector.wait_for(lambda c: len(c.sent("POST", "a:chat-29:maria/activities")) == 1)
        (root,) = root_posts(connector)
        assert root.body["channelData"]["channel"]["id"] == HUDDLES
        assert {USERS["maria"].aad, USERS["omar"].aad} <= set(mentioned(card_of(root.body)))
        chats = sorted(
            c.body["members"][0]["id"]
            for c in connector.sent("POST", "/v3/conversations")
            if c.path == "/v3/conversations" and not c.body.get("isGroup")
        )
        assert chats == ["29:maria", "29:omar"]
        invite = connector.sent("POST", "a:chat-29:maria/activities")[0]
        assert "Alex Turner asked for your help" in text_of(card_of(invite.body))

    teams_env(services, router, scenario, link=False)
    # Nobody was made twice: each roster member is the person the lead imported.
    assert count_people(services) == 5
    for user, key in (("alex", "e-1001"), ("maria", "e-1002"), ("omar", "e-1003")):
        assert teams_person(services, USERS[user].aad)[0] == key
    assert teams_person(services, USERS["priya"].aad)[0] == "e-1004"
    assert teams_accounts(services, "e-1005") == set()


def test_a_roster_is_read_page_by_page_on_start_waiting_out_a_429(
    demo: Services, router: Router, teams_env, caplog: pytest.LogCaptureFixture
) -> None:
    extra = [
        demo_user(handle, 0x100 + n)
        for n, handle in enumerate(("zoe", "rafael", "aisha", "marco", "ben", "nina.p", "sam.k"))
    ]
    connector = FakeConnector(page_limit=3, members=[u.member() for u in [*USERS.values(), *extra]])
    # Teams throttles the second page once.
    connector.fail("GET", "/pagedmembers", 429, retry_after=1, after=1)
    before = count_people(demo)
    caplog.set_level(logging.INFO, logger="adapters.teams")

    async def scenario(teams: Teams) -> None:
        # Nothing sent: the server found the team it was installed in, and read its roster.
        await connector.wait_for(lambda c: roster_read(teams), timeout=20)

    teams_env(demo, router, scenario, link=False, connector=connector, known_team=True)
    pages = connector.sent("GET", f"/v3/conversations/{TEAM}/pagedmembers")
    assert len(pages) == 5  # four pages, the second asked twice
    assert [p.query.get("pageSize") for p in pages] == ["500"] * 5
    tokens = [p.query.get("continuationToken") for p in pages]
    assert tokens[0] is None and tokens[1] == tokens[2] and len(set(tokens[2:])) == 3
    assert pages[1].answer is None and pages[2].at - pages[1].at >= 1.0
    assert "page 4 read, 11 members so far" in caplog.text
    # Every member is the demo org's person of that e-mail; nobody new.
    assert count_people(demo) == before
    for member in [*USERS.values(), *extra]:
        assert teams_person(demo, member.aad)[0] == member.key


def test_one_worker_of_several_reads_a_roster_each_day(
    demo: Services, router: Router, teams_env
) -> None:
    async def scenario(teams: Teams) -> None:
        connector = teams.connector
        await connector.wait_for(lambda c: roster_read(teams))  # read on start
        other = TeamsAdapter(
            demo, router, teams.adapter.settings, commands=teams.adapter.commands
        )  # a second worker on the same database
        try:
            adapters = (teams.adapter, other)

            def read() -> int:
                return len(connector.sent("GET", "/pagedmembers"))

            assert read() == 2
            # Started together: the roster was read once, by whoever came first.
            assert await other.sync_rosters(at_start=True) == 0
            # Both check whether the day's read is due: it was done on start.
            assert await asyncio.gather(*(a.sync_rosters() for a in adapters)) == [0, 0]
            assert read() == 2
            demo.clock.advance(24 * 3600)  # type: ignore[attr-defined]
            done = await asyncio.gather(*(a.sync_rosters() for a in adapters))
            assert sorted(done) == [0, 1] and read() == 4
        finally:
            await other.messenger.close()

    teams_env(demo, router, scenario, link=False, known_team=True)


def test_a_guest_with_a_colleague_s_e_mail_is_not_linked_by_it(
    demo: Services, router: Router, teams_env
) -> None:
    guest = demo_user("zoe", 0x201, teams_id="29:zoe-guest", role="guest")
    invited = demo_user(
        "rafael",
        0x202,
        teams_id="29:rafael-ext",
        upn=f"rafael.costa_{DOMAIN}#EXT#@northwind.onmicrosoft.com",
    )
    connector = FakeConnector(members=[USERS["maria"].member(), guest.member(), invited.member()])

    async def scenario(teams: Teams) -> None:
        await installed(teams)

    teams_env(demo, router, scenario, link=False, connector=connector)
    # A full member is linked by e-mail; the guests by their ids alone, as new people.
    assert teams_person(demo, USERS["maria"].aad) == ("maria", f"maria.santos@{DOMAIN}")
    for outsider, demo_key in ((guest, "zoe"), (invited, "rafael")):
        key, email = teams_person(demo, outsider.aad)
        assert key != demo_key and email is None
        assert teams_accounts(demo, demo_key) == set()
    with demo.db.reading() as session:
        assert accounts.open_conflicts(session) == []  # a guest is not a doubt


def test_removed_members_are_no_longer_suggested_and_their_knowledge_stays(
    demo: Services, router: Router, teams_env
) -> None:
    with demo.db.reading() as session:
        maria = people.by_key(session, "maria")
        wrote = session.scalar(
            select(func.count())
            .select_from(KnowledgeAuthor)
            .where(KnowledgeAuthor.person_id == maria.id)
        )
    assert wrote

    def member_change(teams: Teams, **change: Any) -> dict[str, Any]:
        return teams.activity(
            "priya",
            kind="conversationUpdate",
            conversation=TEAM,
            conversation_type="channel",
            text=None,
            **change,
        )

    def maria_gone(gone: bool) -> Any:
        def check(_: FakeConnector) -> bool:
            with demo.db.reading() as session:
                person = session.scalar(select(Person).where(Person.key == "maria"))
                return (person.deleted_at is not None) == gone

        return check

    async def scenario(teams: Teams) -> None:
        await installed(teams)
        card = await answer_to(teams, "alex", "refund for a prepaid top-up")
        assert USERS["maria"].aad in mentioned(card)

        await teams.send(member_change(teams, membersRemoved=[USERS["maria"].account()]))
        await teams.connector.wait_for(maria_gone(True))
        card = await answer_to(teams, "alex", "refund for a prepaid top-up")
        assert "Maria Santos" not in text_of(card)
        assert USERS["maria"].aad not in mentioned(card)

        # Back in the team: suggested again.
        added = {"id": USERS["maria"].teams_id, "aadObjectId": USERS["maria"].aad}
        await teams.send(member_change(teams, membersAdded=[added]))
        await teams.connector.wait_for(maria_gone(False))

    teams_env(demo, router, scenario, link=False)
    with demo.db.reading() as session:
        kept = session.scalar(
            select(func.count())
            .select_from(KnowledgeAuthor)
            .where(KnowledgeAuthor.person_id == maria.id)
        )
    assert kept == wrote


OLD_ACCOUNT = "0000aaaa-1111-4222-8333-444455556666"


def test_an_account_with_the_e_mail_of_someone_on_teams_is_refused_and_listed(
    demo: Services, router: Router, teams_env
) -> None:
    with demo.db.unit_of_work() as session:
        # Maria already has a Teams account (linked by hand, say); the roster shows another.
        people.link_identity(session, people.by_key(session, "maria"), "teams", OLD_ACCOUNT)
    before = count_people(demo)

    async def scenario(teams: Teams) -> None:
        await installed(teams)
        demo.clock.advance(24 * 3600)  # type: ignore[attr-defined]
        assert await teams.adapter.sync_rosters() == 1  # seen again the next day

    teams_env(demo, router, scenario, link=False)
    assert teams_accounts(demo, "maria") == {OLD_ACCOUNT}  # not merged
    claimant, email = teams_person(demo, USERS["maria"].aad)
    assert claimant != "maria" and email is None  # its own person for now
    assert count_people(demo) == before + 1
    with demo.db.reading() as session:
        (conflict,) = accounts.open_conflicts(session)  # listed once, however often seen
        assert conflict.reason == accounts.HAS_OTHER_ACCOUNT
        assert (conflict.holder.key, conflict.claimant.key) == ("maria", claimant)
        assert conflict.external_id == USERS["maria"].aad and conflict.seen_in == "teams roster"
        assert "who already has a Microsoft Teams account" in accounts.describe(conflict)
        refused = session.scalars(
            select(AuditEntry).where(
                AuditEntry.action == "link_account", AuditEntry.allowed.is_(False)
            )
        ).all()
    assert [(a.target, a.actor_label) for a in refused] == [("person:maria", "teams roster")]


def test_a_sender_not_yet_in_a_roster_read_is_linked_by_their_e_mail(
    demo: Services, router: Router, teams_env
) -> None:
    before = count_people(demo)

    async def scenario(teams: Teams) -> None:
        card = await answer_to(teams, "omar", "whoknows refunds")
        assert card["body"]
        lookups = teams.connector.sent("GET", "/members/29:omar")
        assert [c.path for c in lookups] == ["/v3/conversations/a:chat-29:omar/members/29:omar"]

    teams_env(demo, router, scenario, link=False)
    assert teams_person(demo, USERS["omar"].aad) == ("omar", f"omar.haddad@{DOMAIN}")
    assert count_people(demo) == before


def test_roster_members_as_accounts() -> None:
    member = USERS["maria"].member()
    assert roster.account(member).email == f"maria.santos@{DOMAIN}"
    assert roster.account({**member, "email": None}).email == f"maria.santos@{DOMAIN}"  # the UPN
    assert roster.account({**member, "userRole": "guest"}).email is None
    assert roster.account({**member, "userRole": "anonymous"}).email is None
    external = {**member, "email": None, "userPrincipalName": "m_x.example#EXT#@t.example"}
    assert roster.account(external).email is None
    assert (
        roster.account({**member, "email": "not an e-mail", "userPrincipalName": ""}).email is None
    )
    removed = roster.account(member, deleted=True)
    assert removed.deleted and removed.email is None and removed.external_id == USERS["maria"].aad


def test_a_sender_linked_while_teams_could_not_say_who_is_listed_once_it_can(
    demo: Services, router: Router, teams_env
) -> None:
    async def scenario(teams: Teams) -> None:
        for _ in range(4):  # every try of the member lookup fails
            teams.connector.fail("GET", "/members/29:omar", 500)
        await answer_to(teams, "omar", "whoknows refunds")  # answered all the same
        await installed(teams)  # the roster says who Omar is

    teams_env(demo, router, scenario, link=False)
    made, email = teams_person(demo, USERS["omar"].aad)
    assert made != "omar" and email is None  # a record of its own: never merged by guess
    with demo.db.reading() as session:
        (conflict,) = accounts.open_conflicts(session)
        assert conflict.reason == accounts.EMAIL_TAKEN
        assert (conflict.holder.key, conflict.claimant.key) == ("omar", made)
        line = accounts.describe(conflict)
    assert line == f"{made} claims the e-mail omar.haddad@{DOMAIN} of omar"


def test_the_roster_interval_is_a_number_of_seconds() -> None:
    env = {"MICROSOFT_APP_ID": "x", "MICROSOFT_APP_PASSWORD": "y"}
    assert TeamsSettings.from_env(env).roster_interval_s == 86_400
    every = {**env, "WHOKNOWS_TEAMS_ROSTER_INTERVAL": "3600"}
    assert TeamsSettings.from_env(every).roster_interval_s == 3600
    for bad in ("0", "-5", "daily"):
        with pytest.raises(TeamsConfigError, match="WHOKNOWS_TEAMS_ROSTER_INTERVAL"):
            TeamsSettings.from_env({**env, "WHOKNOWS_TEAMS_ROSTER_INTERVAL": bad})
