"""Dashboard sessions end when they should, and a sign-in is never sent by another site.

Over HTTP against the real `whoknows serve` application: signing out, a changed
role and a removal end every session of the person at once, a copied cookie's
too; a sign-in or a form posted from another site's page is refused.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestClient

from bot.data import transfer
from bot.router import Router
from bot.services import Services, accounts, people
from bot.services.accounts import Account
from tests.adapters.dashboard.conftest import link, serve, sign_in, token_of
from tests.helpers import audit_rows

pytestmark = pytest.mark.parametrize("demo_database_url", ["sqlite"], indirect=True)
SESSION = "whoknows_session"


def session_cookie(client: TestClient) -> str:
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/dashboard/"))[SESSION]
    return cookie.value


async def with_cookie(client: TestClient, cookie: str, path: str) -> tuple[int, str, str]:
    """GET `path` from another browser that holds a copy of the cookie."""
    url = client.make_url(path)
    async with (
        ClientSession(cookies={SESSION: cookie}) as other,
        other.get(url, allow_redirects=False) as response,
    ):
        return response.status, await response.text(), response.headers.get("Set-Cookie", "")


def refused(services: Services, action: str) -> list[dict[str, Any]]:
    return [
        {"actor": e.actor_label, "target": e.target, **json.loads(e.detail or "{}")}
        for e in audit_rows(services)
        if e.action == action and not e.allowed
    ]


def refused_sessions(services: Services) -> list[tuple[str, str]]:
    return [(row["actor"], row["reason"]) for row in refused(services, "dashboard.session")]


# --- signing out, role changes, removals -------------------------------------------------


def test_signing_out_ends_the_session_for_a_copied_cookie_too(
    demo: Services, router: Router
) -> None:
    async def scenario(client: TestClient) -> None:
        csrf = await sign_in(client, demo, router, "priya")
        copied = session_cookie(client)
        assert (await with_cookie(client, copied, "/dashboard/coverage"))[0] == 200
        out = await client.post("/dashboard/logout", data={"csrf": csrf})
        assert out.status == 200 and "Signed out" in await out.text()
        status, page, set_cookie = await with_cookie(client, copied, "/dashboard/coverage")
        assert status == 401 and "Your session has ended" in page
        assert f"{SESSION}=;" in set_cookie or f'{SESSION}="";' in set_cookie  # deleted
        # A form with the old cookie and its CSRF token does nothing either.
        async with ClientSession(cookies={SESSION: copied}) as other:
            url = client.make_url("/dashboard/people/tag")
            form = {"csrf": csrf, "person": "alex", "tag": "refunds", "level": "3"}
            posted = await other.post(url, data=form, allow_redirects=False)
            assert posted.status == 401
        # A new link starts a new session.
        await sign_in(client, demo, router, "priya")
        assert (await client.get("/dashboard/coverage")).status == 200

    serve(demo, router, scenario)
    assert refused_sessions(demo) == [("priya", "ended"), ("priya", "ended")]


def test_signing_out_ends_the_persons_sessions_in_every_browser(
    demo: Services, router: Router
) -> None:
    async def scenario(client: TestClient) -> None:
        await sign_in(client, demo, router, "priya")
        laptop = session_cookie(client)
        client.session.cookie_jar.clear()
        csrf = await sign_in(client, demo, router, "priya")
        assert (await client.post("/dashboard/logout", data={"csrf": csrf})).status == 200
        assert (await with_cookie(client, laptop, "/dashboard/coverage"))[0] == 401

    serve(demo, router, scenario)


def test_a_role_change_ends_the_session_whatever_path_made_it(
    demo: Services, router: Router, tmp_path: Path
) -> None:
    def import_csv(rows: str) -> None:
        path = tmp_path / "people.csv"
        path.write_text("id,name,team,role\n" + rows)
        report = transfer.import_people(demo.db, path, demo.clock())
        assert not report.errors, report.errors

    async def scenario(client: TestClient) -> None:
        await sign_in(client, demo, router, "priya")
        # The same role again is no change: the session stands.
        import_csv("priya,Priya Sharma,Billing,lead\n")
        assert (await client.get("/dashboard/coverage")).status == 200
        import_csv("priya,Priya Sharma,Billing,agent\n")
        response = await client.get("/dashboard/people/priya")
        assert response.status == 401 and "Your session has ended" in await response.text()

    serve(demo, router, scenario)
    assert refused_sessions(demo) == [("priya", "ended")]


def test_a_removed_person_stays_signed_out_when_their_account_comes_back(
    demo: Services, router: Router
) -> None:
    """Forgotten, merged or deactivated: the session ends, and stays ended."""
    with demo.db.unit_of_work() as session:
        people.link_identity(session, people.by_key(session, "maria"), "slack", "UMARIA")
    account = Account("slack", "UMARIA", "Maria Santos", None, "Europe/Lisbon", "maria")

    def seen(deleted: bool) -> None:
        with demo.db.unit_of_work() as session:
            changed = account if not deleted else Account(**{**account.__dict__, "deleted": True})
            accounts.link_account(session, changed, demo.clock(), seen_in="slack directory")

    async def scenario(client: TestClient) -> None:
        await sign_in(client, demo, router, "maria")
        assert (await client.get("/dashboard/people/maria")).status == 200
        seen(deleted=True)  # deactivated in Slack
        assert (await client.get("/dashboard/people/maria")).status == 401
        seen(deleted=False)  # and back
        assert (await client.get("/dashboard/people/maria")).status == 401

    serve(demo, router, scenario)


def test_forget_ends_the_session(demo: Services, router: Router) -> None:
    async def scenario(client: TestClient) -> None:
        await sign_in(client, demo, router, "alex")
        with demo.db.unit_of_work() as session:
            person = people.by_key(session, "alex")
            assert person is not None
            people.forget(session, person, demo.clock(), "cli:test")
        assert (await client.get("/dashboard/people/alex")).status == 401

    serve(demo, router, scenario)


# --- sent from another site ---------------------------------------------------------------

ELSEWHERE = {
    "another origin": {"Origin": "https://evil.example"},
    "an opaque origin": {"Origin": "null"},
    "a cross-site fetch": {"Sec-Fetch-Site": "cross-site"},
    "a sibling site": {"Sec-Fetch-Site": "same-site", "Origin": "https://evil.example.com"},
    "a referer elsewhere": {"Referer": "https://evil.example/sign-in-as-me.html"},
}


def test_a_sign_in_sent_from_another_site_is_refused_and_the_link_kept(
    demo: Services, router: Router
) -> None:
    """Login CSRF: someone's own link, posted by their page, would sign the visitor in
    as them (and what the visitor then types would be theirs to read)."""
    url = link(demo, router, "kwame")

    async def scenario(client: TestClient) -> None:
        for what, headers in ELSEWHERE.items():
            response = await client.post(
                "/dashboard/login", data={"token": token_of(url)}, headers=headers
            )
            assert response.status == 403, what
            assert "Sign-in refused" in await response.text()
            assert SESSION not in response.cookies
        # From the page it belongs to, the same link still signs in.
        own = str(client.make_url("")).rstrip("/")
        response = await client.post(
            "/dashboard/login",
            data={"token": token_of(url)},
            headers={"Origin": own, "Sec-Fetch-Site": "same-origin"},
            allow_redirects=False,
        )
        assert response.status == 303 and SESSION in response.cookies

    serve(demo, router, scenario)
    logins = refused(demo, "dashboard.login")
    assert [(r["actor"], r["target"]) for r in logins] == [("kwame", "person:kwame")] * len(
        ELSEWHERE
    )
    assert logins[0]["origin"] == "https://evil.example"


def test_a_form_sent_from_another_site_is_refused_even_with_the_token(
    demo: Services, router: Router
) -> None:
    async def scenario(client: TestClient) -> None:
        csrf = await sign_in(client, demo, router, "priya")
        for what, headers in ELSEWHERE.items():
            response = await client.post("/dashboard/logout", data={"csrf": csrf}, headers=headers)
            assert response.status == 403, what
            assert "sent from another site" in await response.text()
        assert (await client.get("/dashboard/coverage")).status == 200  # still signed in

    serve(demo, router, scenario)
