"""People's accounts on the dashboard: shown on their page, linked and merged by admins
only, conflicts listed for admins, and the experts nobody can reach in chat."""

from __future__ import annotations

import json
import re

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.data.demo import data
from bot.db.models import AccountConflict, Identity, Person, Team
from bot.router import Router
from bot.services import Services, accounts, people
from bot.services.accounts import Account
from tests.adapters.dashboard.conftest import serve, sign_in
from tests.conftest import NOW
from tests.helpers import audit_rows

MARIA_EMAIL = "maria.santos@northwind-mobile.example"


def sqlite_only(test):  # type: ignore[no-untyped-def]
    """Permission logic is the same on both databases; run these once."""
    return pytest.mark.parametrize("demo_database_url", ["sqlite"], indirect=True)(test)


def accounts_shown(page: str) -> dict[str, str]:
    """The person page's accounts: platform (or "email") → the ids it lists."""
    return dict(re.findall(r'<tr data-platform="(\w+)" data-accounts="([^"]*)">', page))


def flash_of(page: str) -> str:
    found = re.search(r'<p class="flash (\w+)" role="status">([^<]*)</p>', page)
    assert found is not None, "no flash on the page"
    return f"{found.group(1)}: {found.group(2)}"


def identities(services: Services, key: str) -> set[tuple[str, str]]:
    with services.db.unit_of_work() as session:
        person = people.by_key(session, key)
        assert person is not None
        return {(i.platform, i.external_id) for i in person.identities}


def link_by_hand(services: Services, key: str, platform: str, external_id: str) -> None:
    with services.db.unit_of_work() as session:
        person = people.by_key(session, key)
        assert person is not None
        accounts.link_by_hand(session, person, platform, external_id, actor_label="cli:test")


def seen_in_directory(services: Services, *found: Account) -> list[str]:
    """Accounts as a platform's directory shows them: linked, made, or in conflict."""
    with services.db.unit_of_work() as session:
        made = accounts.link_accounts(session, found, NOW, seen_in="slack directory")
        return [p.key for p in made]


def refusals(services: Services, since: int) -> list[tuple[str, str, str]]:
    return [
        (r.actor_label, r.action, r.target) for r in audit_rows(services)[since:] if not r.allowed
    ]


# --- a person's accounts -------------------------------------------------------------------


@sqlite_only
def test_a_person_page_shows_their_accounts_and_not_linked_where_none(
    demo: Services, router: Router
) -> None:
    link_by_hand(demo, "maria", "slack", "U0MARIA")
    link_by_hand(demo, "maria", "teams", "29:maria-teams")
    link_by_hand(demo, "maria", "teams", "8f1c-aad-maria")

    async def scenario(client: TestClient) -> None:
        await sign_in(client, demo, router, "priya")
        maria = await (await client.get("/dashboard/people/maria")).text()
        assert accounts_shown(maria) == {
            "slack": "U0MARIA",
            "teams": "29:maria-teams 8f1c-aad-maria",
            "email": MARIA_EMAIL,
        }
        assert "<code>U0MARIA</code>" in maria
        # A lead sees the accounts, and no form to change them.
        assert 'class="link-account"' not in maria and 'class="merge"' not in maria
        client.session.cookie_jar.clear()
        await sign_in(client, demo, router, "alex")
        own = await (await client.get("/dashboard/people/alex")).text()
        assert accounts_shown(own) == {
            "slack": "",
            "teams": "",
            "email": "alex.turner@northwind-mobile.example",
        }
        assert own.count("not linked") == 2
        assert 'class="link-account"' not in own

    serve(demo, router, scenario)


@sqlite_only
def test_an_admin_links_a_slack_id_a_teams_id_and_an_email_through_the_audited_services(
    demo: Services, router: Router
) -> None:
    async def scenario(client: TestClient) -> None:
        csrf = await sign_in(client, demo, router, "daniel")
        page = await (await client.get("/dashboard/people/alex")).text()
        assert 'action="/dashboard/people/alex/link"' in page
        assert 'action="/dashboard/people/alex/merge"' in page
        for kind, account, said in (
            ("slack", " U0ALEX ", "success: Linked U0ALEX on Slack to Alex Turner (alex)."),
            ("slack", "U0ALEX", "success: U0ALEX on Slack was already Alex Turner&#39;s."),
            (
                "teams",
                "29:alex",
                "success: Linked 29:alex on Microsoft Teams to Alex Turner (alex).",
            ),
            (
                "email",
                "Alex.T@Example.com",
                "success: Alex Turner&#39;s e-mail is now Alex.T@Example.com.",
            ),
        ):
            response = await client.post(
                "/dashboard/people/alex/link",
                data={"csrf": csrf, "kind": kind, "account": account},
            )
            assert response.url.path == "/dashboard/people/alex"
            page = await response.text()
            assert flash_of(page) == said
        assert accounts_shown(page) == {
            "slack": "U0ALEX",
            "teams": "29:alex",
            "email": "Alex.T@Example.com",
        }

    serve(demo, router, scenario)
    assert identities(demo, "alex") == {
        ("console", "alex"),
        ("slack", "U0ALEX"),
        ("teams", "29:alex"),
    }
    done = [(r.actor_label, r.action, r.target, r.allowed) for r in audit_rows(demo)[-3:]]
    assert done == [
        ("daniel", "link_account", "person:alex", True),
        ("daniel", "link_account", "person:alex", True),
        ("daniel", "set_email", "person:alex", True),
    ]


@sqlite_only
def test_a_link_the_accounts_refuse_is_said_on_the_page_and_audited(
    demo: Services, router: Router
) -> None:
    link_by_hand(demo, "maria", "slack", "U0MARIA")
    before = len(audit_rows(demo))

    async def scenario(client: TestClient) -> None:
        csrf = await sign_in(client, demo, router, "daniel")
        for kind, account, said in (
            (
                "slack",
                "u0maria",
                "The Slack account u0maria is already linked to maria. If maria and alex are "
                "one person, merge them: `whoknows people merge alex maria`.",
            ),
            ("email", MARIA_EMAIL.upper(), f"{MARIA_EMAIL.upper()} is already the e-mail of maria"),
            ("email", "not an address", "&#39;not an address&#39; is not an e-mail address."),
            ("teams", "two words", "That is not a Microsoft Teams account id."),
        ):
            response = await client.post(
                "/dashboard/people/alex/link",
                data={"csrf": csrf, "kind": kind, "account": account},
            )
            assert (response.status, response.url.path) == (200, "/dashboard/people/alex")
            assert flash_of(await response.text()).startswith(f"error: {said}"), account
        unknown = await client.post(
            "/dashboard/people/alex/link", data={"csrf": csrf, "kind": "fax", "account": "1"}
        )
        assert flash_of(await unknown.text()) == (
            "error: Choose what to link: a Slack id, a Teams id or an e-mail."
        )

    serve(demo, router, scenario)
    assert identities(demo, "alex") == {("console", "alex")}
    assert identities(demo, "maria") == {("console", "maria"), ("slack", "U0MARIA")}
    refused = [r for r in audit_rows(demo)[before:] if not r.allowed]
    assert [(r.actor_label, r.action, r.target) for r in refused] == [
        ("daniel", "link_account", "person:alex"),
        ("daniel", "set_email", "person:alex"),
        ("daniel", "set_email", "person:alex"),
        ("daniel", "link_account", "person:alex"),
    ]
    assert json.loads(refused[0].detail)["linked_to"] == "maria"


# --- an attacker's view --------------------------------------------------------------------


@sqlite_only
def test_only_an_admin_may_post_the_link_or_merge_forms_and_each_attempt_is_audited(
    demo: Services, router: Router
) -> None:
    before = len(audit_rows(demo))
    forms = (
        ("/dashboard/people/alex/link", {"kind": "slack", "account": "U0EVIL"}),
        ("/dashboard/people/alex/link", {"kind": "email", "account": "evil@example.com"}),
        ("/dashboard/people/alex/merge", {"drop": "maria", "confirm": "yes"}),
        ("/dashboard/people/nobody/link", {"kind": "slack", "account": "U0EVIL"}),
    )

    async def scenario(client: TestClient) -> None:
        for key in ("alex", "priya"):  # an agent on their own page; a lead of the team
            client.session.cookie_jar.clear()
            csrf = await sign_in(client, demo, router, key)
            for path, form in forms:
                response = await client.post(path, data={"csrf": csrf, **form})
                assert response.status == 403, (key, path)
                page = await response.text()
                assert "Only an admin may link accounts or merge people." in page
            # And without the session's token nothing is even tried.
            forged = await client.post("/dashboard/people/alex/link", data=forms[0][1])
            assert "Form refused" in await forged.text()

    serve(demo, router, scenario)
    assert identities(demo, "alex") == {("console", "alex")}
    with demo.db.unit_of_work() as session:
        alex = people.by_key(session, "alex")
        assert alex is not None and alex.email == "alex.turner@northwind-mobile.example"
        assert people.by_key(session, "maria") is not None
    expected = [
        (key, "link_account", target)
        for key in ("alex", "priya")
        for target in ("person:alex", "person:alex", "person:alex", "accounts")
    ]
    assert refusals(demo, before) == expected


# --- conflicts and merging -----------------------------------------------------------------


@sqlite_only
def test_an_admin_sees_the_conflicts_and_merges_the_two_records(
    demo: Services, router: Router
) -> None:
    link_by_hand(demo, "maria", "slack", "U0MARIA")
    # A second Slack account with Maria's e-mail: made its own person, and listed.
    (made,) = seen_in_directory(demo, Account("slack", "U0MARIA2", "Maria S.", MARIA_EMAIL))
    assert made != "maria"

    async def scenario(client: TestClient) -> None:
        await sign_in(client, demo, router, "priya")
        lead = await (await client.get("/dashboard/people")).text()
        assert 'class="conflicts"' not in lead and "U0MARIA2" not in lead
        client.session.cookie_jar.clear()
        csrf = await sign_in(client, demo, router, "daniel")
        listed = await (await client.get("/dashboard/people")).text()
        assert re.search(r'Account conflicts <span class="count" data-count="1">', listed)
        row = re.search(
            r'<tr data-conflict="\d+" data-holder="(\w+)" data-claimant="([\w.]+)">', listed
        )
        assert row is not None and row.groups() == ("maria", made)
        assert (
            "Slack account U0MARIA2 has the e-mail maria.santos@northwind-mobile.example of "
            f"maria, who already has a Slack account; it was made {made} for now"
        ) in listed
        assert 'href="/dashboard/people/maria"' in listed
        assert f'href="/dashboard/people/{made}"' in listed
        assert f"Merge {made} into maria" in listed
        form = {"csrf": csrf, "drop": made, "back": "/dashboard/people"}
        unsure = await client.post("/dashboard/people/maria/merge", data=form)
        assert flash_of(await unsure.text()) == (
            f"error: Tick the box to confirm that {made} and maria are one person."
        )
        merged = await client.post("/dashboard/people/maria/merge", data={**form, "confirm": "yes"})
        assert merged.url.path == "/dashboard/people"
        page = await merged.text()
        assert flash_of(page) == (
            f"success: Merged {made} into Maria Santos (maria): skills, accounts and history moved."
        )
        assert re.search(r'Account conflicts <span class="count" data-count="0">', page)
        again = await client.post("/dashboard/people/maria/merge", data={**form, "confirm": "yes"})
        assert (
            flash_of(await again.text())
            == f"error: I don&#39;t know anyone called &#39;{made}&#39;."
        )
        same = await client.post(
            "/dashboard/people/maria/merge", data={**form, "drop": "@maria", "confirm": "yes"}
        )
        assert flash_of(await same.text()) == "error: maria is already one person."
        maria = await (await client.get("/dashboard/people/maria")).text()
        assert accounts_shown(maria)["slack"] == "U0MARIA U0MARIA2"

    serve(demo, router, scenario)
    assert identities(demo, "maria") == {
        ("console", "maria"),
        ("slack", "U0MARIA"),
        ("slack", "U0MARIA2"),
    }
    with demo.db.unit_of_work() as session:
        assert people.by_key(session, made) is None
        assert not session.scalars(select(AccountConflict)).all()
    merges = [r for r in audit_rows(demo) if r.action == "merge_people"]
    assert [(r.actor_label, r.target, r.allowed) for r in merges] == [
        ("daniel", "person:maria", True),
        ("daniel", "person:maria", False),  # the same person twice
    ]
    assert json.loads(merges[0].detail)["dropped"] == made


@sqlite_only
def test_a_lead_cannot_merge_a_conflict_and_the_attempt_is_audited(
    demo: Services, router: Router
) -> None:
    link_by_hand(demo, "maria", "slack", "U0MARIA")
    (made,) = seen_in_directory(demo, Account("slack", "U0MARIA2", "Maria S.", MARIA_EMAIL))
    before = len(audit_rows(demo))

    async def scenario(client: TestClient) -> None:
        csrf = await sign_in(client, demo, router, "priya")
        response = await client.post(
            "/dashboard/people/maria/merge",
            data={"csrf": csrf, "drop": made, "confirm": "yes", "back": "/dashboard/people"},
        )
        assert response.status == 403
        assert "Only an admin may link accounts or merge people." in await response.text()

    serve(demo, router, scenario)
    with demo.db.unit_of_work() as session:
        assert people.by_key(session, made) is not None
        assert len(session.scalars(select(AccountConflict)).all()) == 1
    assert refusals(demo, before) == [("priya", "link_account", "person:maria")]


# --- experts nobody can reach in chat ------------------------------------------------------


def experts_of(team: str | None) -> set[str]:
    return {p["handle"] for p in data.PEOPLE if p["skills"] and team in (None, p["team"])}


def unreachable_listed(page: str) -> tuple[int, set[str]]:
    section = page.split('<section class="unreachable" id="unreachable">', 1)[1].split(
        "</section>", 1
    )[0]
    count = re.search(r'data-count="(\d+)"', section)
    assert count is not None
    return int(count.group(1)), set(re.findall(r'<li data-person="([\w.-]+)">', section))


def test_the_people_page_lists_the_experts_nobody_can_reach_in_chat(
    demo: Services, router: Router
) -> None:
    link_by_hand(demo, "maria", "slack", "U0MARIA")
    link_by_hand(demo, "omar", "teams", "29:omar")
    with demo.db.unit_of_work() as session:
        billing = session.scalar(select(Team).where(Team.name == "Billing"))
        assert billing is not None
        # No skills: nobody would ask them anyway. The local chat is no way to reach anyone.
        session.add(Person(key="newbie", display_name="New Bie", team=billing))
        assert session.scalar(
            select(Identity).where(Identity.platform == "console", Identity.external_id == "alex")
        )
    # Made by Slack, with no skills: reachable, and no expert.
    seen_in_directory(demo, Account("slack", "U0SAM", "Sam"))
    reached = {"maria", "omar"}

    async def scenario(client: TestClient) -> None:
        await sign_in(client, demo, router, "priya")
        page = await (await client.get("/dashboard/people")).text()
        count, listed = unreachable_listed(page)
        assert listed == experts_of("Billing") - reached
        assert f'<a href="#unreachable">{count} experts nobody can ask in chat</a></p>' in page
        assert count == len(listed) and "alex" in listed and "zoe" not in listed
        client.session.cookie_jar.clear()
        await sign_in(client, demo, router, "daniel")
        count, listed = unreachable_listed(await (await client.get("/dashboard/people")).text())
        assert listed == experts_of(None) - reached
        assert count == len(data.PEOPLE) - 2

    serve(demo, router, scenario)


# --- escaping ------------------------------------------------------------------------------


@sqlite_only
def test_account_ids_are_escaped_wherever_they_are_shown(demo: Services, router: Router) -> None:
    hostile = '<img/src=x/onerror="alert(1)">'
    escaped = "&lt;img/src=x/onerror=&#34;alert(1)&#34;&gt;"
    link_by_hand(demo, "maria", "slack", "U0MARIA")
    seen_in_directory(demo, Account("slack", hostile, "Mallory", MARIA_EMAIL))

    async def scenario(client: TestClient) -> None:
        csrf = await sign_in(client, demo, router, "daniel")
        linked = await client.post(
            "/dashboard/people/alex/link", data={"csrf": csrf, "kind": "teams", "account": hostile}
        )
        page = await linked.text()
        assert f"success: Linked {escaped} on Microsoft Teams to Alex Turner (alex)." == flash_of(
            page
        )
        assert f"<code>{escaped}</code>" in page and f'data-accounts="{escaped}"' in page
        listed = await (await client.get("/dashboard/people")).text()
        assert f"Slack account {escaped} has the e-mail" in listed
        for shown in (page, listed):
            assert hostile not in shown

    serve(demo, router, scenario)
