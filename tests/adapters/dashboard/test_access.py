"""Who may see and change what on the dashboard: links, sessions, roles, CSRF, escaping."""

from __future__ import annotations

import re
import stat
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.db.models import AuditEntry, KnowledgeEntry, Person, Skill
from bot.router import Router
from bot.services import Services, people
from bot.signing import DashboardSettings, sign
from tests.adapters.dashboard.conftest import csrf_of, link, serve, sign_in, token_of
from tests.conftest import NOW
from tests.helpers import audit_rows, say

LEAD_PAGES = (
    "/dashboard/coverage",
    "/dashboard/gaps",
    "/dashboard/huddles",
    "/dashboard/kpis",
    "/dashboard/people",
)


def sqlite_only(test):  # type: ignore[no-untyped-def]
    """Permission logic is the same on both databases; run these once."""
    return pytest.mark.parametrize("demo_database_url", ["sqlite"], indirect=True)(test)


def skill_of(services: Services, key: str, tag: str) -> Skill | None:
    with services.db.unit_of_work() as session:
        person = people.by_key(session, key)
        assert person is not None
        return next((s for s in person.skills if s.tag.name == tag), None)


# --- the link ----------------------------------------------------------------------------


@sqlite_only
def test_dashboard_command_answers_privately_with_a_link(
    demo: Services, router: Router, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = link(demo, router, "priya")
    assert url.startswith("http://127.0.0.1:3000/dashboard/login?token=")
    secret = tmp_path / "dashboard.secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    # The secret is made once: a second link is signed with the same one.
    before = secret.read_bytes()
    demo.settings = replace(demo.settings, public_url="https://whoknows.example.com/")
    assert link(demo, router, "priya").startswith("https://whoknows.example.com/dashboard/login?")
    assert secret.read_bytes() == before


@sqlite_only
def test_an_unusable_secret_file_is_not_used(
    demo: Services, router: Router, tmp_path: Path
) -> None:
    (tmp_path / "dashboard.secret").write_text("\n")
    reply = say(demo, router, "priya", "dashboard")
    assert reply.elements[0].severity == "error"  # type: ignore[union-attr]
    assert "token=" not in str(reply)


@sqlite_only
def test_the_reply_is_private(demo: Services, router: Router) -> None:
    assert say(demo, router, "alex", "whoknows", "dashboard").private


def test_a_link_signs_in_once(demo: Services, router: Router) -> None:
    url = link(demo, router, "priya")

    async def scenario(client: TestClient) -> None:
        shown = await client.get(f"/dashboard/login?token={token_of(url)}")
        assert shown.status == 200
        assert "signs you in as <strong>Priya Sharma</strong>" in await shown.text()
        first = await client.post(
            "/dashboard/login", data={"token": token_of(url)}, allow_redirects=False
        )
        assert (first.status, first.headers["Location"]) == (303, "/dashboard/")
        cookie = first.headers["Set-Cookie"]
        for attribute in ("HttpOnly", "SameSite=Lax", "Path=/dashboard", "Max-Age=28800"):
            assert attribute in cookie
        assert "Secure" not in cookie  # plain http on this machine
        home = await client.get("/dashboard/")
        assert home.url.path == "/dashboard/coverage"
        again = await client.post("/dashboard/login", data={"token": token_of(url)})
        assert again.status == 403
        assert "This link was already used" in await again.text()
        reopened = await client.get(f"/dashboard/login?token={token_of(url)}")
        assert reopened.status == 403
        assert "already used" in await reopened.text()

    serve(demo, router, scenario)


@sqlite_only
def test_forged_and_expired_links_are_refused(demo: Services, router: Router) -> None:
    url = link(demo, router, "priya")
    body, _, mac = token_of(url).partition(".")
    other = sign(b"another server's secret", "login", {"p": 1, "exp": 2**40, "n": "x"})

    async def scenario(client: TestClient) -> None:
        for token in (f"{body}.{mac[:-2]}AA", other, "garbage", "", f"{body}.é"):
            response = await client.get(f"/dashboard/login?token={token}")
            assert response.status == 403
            assert "This link is not valid" in await response.text()
        demo.clock.advance(11 * 60)  # type: ignore[attr-defined]
        expired = await client.post("/dashboard/login", data={"token": token_of(url)})
        assert expired.status == 403
        assert "This link has expired" in await expired.text()

    serve(demo, router, scenario)


@sqlite_only
def test_a_session_is_needed_and_cannot_be_forged_or_outlive_a_shift(
    demo: Services, router: Router
) -> None:
    async def scenario(client: TestClient) -> None:
        response = await client.get("/dashboard/coverage")
        assert response.status == 401
        assert "Please sign in" in await response.text()
        settings = DashboardSettings.from_settings(demo.settings)
        daniel = people_id(demo, "daniel")
        forged = sign(b"not the secret", "session", {"p": daniel, "exp": 2**40, "c": "x"})
        client.session.cookie_jar.update_cookies({"whoknows_session": forged})
        assert (await client.get("/dashboard/audit")).status == 401
        # A sign-in link is no session cookie, even though the same secret signed it.
        as_link = sign(settings.secret, "login", {"p": daniel, "exp": 2**40, "n": "y"})
        client.session.cookie_jar.update_cookies({"whoknows_session": as_link})
        assert (await client.get("/dashboard/audit")).status == 401
        await sign_in(client, demo, router, "priya")
        assert (await client.get("/dashboard/coverage")).status == 200
        demo.clock.advance(8 * 3600 + 1)  # type: ignore[attr-defined]
        assert (await client.get("/dashboard/coverage")).status == 401

    serve(demo, router, scenario)


def people_id(services: Services, key: str) -> int:
    with services.db.unit_of_work() as session:
        person = people.by_key(session, key)
        assert person is not None
        return person.id


# --- roles -------------------------------------------------------------------------------


@sqlite_only
def test_an_agent_sees_their_profile_and_knowledge_only(demo: Services, router: Router) -> None:
    async def scenario(client: TestClient) -> None:
        await sign_in(client, demo, router, "alex")
        home = await client.get("/dashboard/")
        assert home.url.path == "/dashboard/people/alex"
        for path in (*LEAD_PAGES, "/dashboard/audit"):
            response = await client.get(path)
            assert response.status == 403, path
        assert "Leads and admins only" in await (await client.get("/dashboard/gaps")).text()
        assert (await client.get("/dashboard/people/maria")).status == 403
        assert (await client.get("/dashboard/knowledge")).status == 200
        assert (await client.get("/dashboard/knowledge/1")).status == 200
        page = await (await client.get("/dashboard/people/alex")).text()
        assert "Verify" not in page  # nobody verifies their own skills
        assert "Audit log" not in page and "Coverage" not in page

    serve(demo, router, scenario)


@sqlite_only
def test_a_lead_sees_their_team_and_an_admin_everything(demo: Services, router: Router) -> None:
    async def scenario(client: TestClient) -> None:
        await sign_in(client, demo, router, "priya")
        coverage = await (await client.get("/dashboard/coverage")).text()
        assert 'data-team="Billing"' in coverage
        assert 'data-team="Devices &amp; Network"' not in coverage
        assert (await client.get("/dashboard/people/zoe")).status == 403
        assert (await client.get("/dashboard/people/alex")).status == 200
        assert (await client.get("/dashboard/audit")).status == 403
        listed = await (await client.get("/dashboard/people")).text()
        assert 'data-person="alex"' in listed and 'data-person="zoe"' not in listed
        client.session.cookie_jar.clear()
        await sign_in(client, demo, router, "daniel")
        assert (await client.get("/dashboard/audit")).status == 200
        assert (await client.get("/dashboard/people/zoe")).status == 200
        everyone = await (await client.get("/dashboard/coverage")).text()
        assert 'data-team="Devices &amp; Network"' in everyone

    serve(demo, router, scenario)


# --- CSRF and changes ----------------------------------------------------------------------


@sqlite_only
def test_a_post_without_the_csrf_token_changes_nothing(demo: Services, router: Router) -> None:
    before = len(audit_rows(demo))
    form = {"person": "alex", "tag": "refunds", "level": "4"}

    async def scenario(client: TestClient) -> None:
        anonymous = await client.post("/dashboard/people/tag", data=form)
        assert anonymous.status == 403
        csrf = await sign_in(client, demo, router, "priya")
        tampered = csrf[:-1] + ("y" if csrf.endswith("x") else "x")
        for sent in ({}, {"csrf": ""}, {"csrf": tampered}, {"csrf": "é" + csrf}):
            response = await client.post("/dashboard/people/tag", data={**form, **sent})
            assert response.status == 403
            assert "Form refused" in await response.text()
        assert (await client.post("/dashboard/logout")).status == 403

    serve(demo, router, scenario)
    assert skill_of(demo, "alex", "refunds") is None
    assert len(audit_rows(demo)) == before


@sqlite_only
def test_tag_verify_level_and_untag_go_through_the_audited_services(
    demo: Services, router: Router
) -> None:
    async def scenario(client: TestClient) -> None:
        csrf = await sign_in(client, demo, router, "priya")
        tagged = await client.post(
            "/dashboard/people/tag",
            data={"csrf": csrf, "person": "alex", "tag": "Refunds", "level": "4"},
        )
        assert tagged.url.path == "/dashboard/people/alex"
        assert "Tagged Alex Turner: refunds (level 4)." in await tagged.text()
        verified = await client.post(
            "/dashboard/people/alex/verify", data={"csrf": csrf, "tag": "billing"}
        )
        assert "Verified Alex Turner&#39;s &#39;billing&#39; (level 1)." in await verified.text()
        levelled = await client.post(
            "/dashboard/people/alex/level", data={"csrf": csrf, "tag": "late fees", "level": "3"}
        )
        assert "Alex Turner: late fees (level 3)." in await levelled.text()
        unknown = await client.post(
            "/dashboard/people/tag",
            data={"csrf": csrf, "person": "alex", "tag": "refundz", "level": "2"},
        )
        assert "There is no topic &#39;refundz&#39;. Did you mean refunds" in await unknown.text()
        untagged = await client.post(
            "/dashboard/people/alex/untag", data={"csrf": csrf, "tag": "late fees"}
        )
        assert "Removed &#39;late fees&#39;" in await untagged.text()
        # The message is shown once.
        assert "Removed" not in await (await client.get("/dashboard/people/alex")).text()
        refused = await client.post(
            "/dashboard/people/tag",
            data={"csrf": csrf, "person": "zoe", "tag": "refunds", "level": "2"},
        )
        assert refused.status == 403
        assert "Only a lead of their team or an admin" in await refused.text()
        history = await (await client.get("/dashboard/people/alex")).text()
        assert history.count('class="audit-row"') == 4

    serve(demo, router, scenario)
    refunds = skill_of(demo, "alex", "refunds")
    assert refunds is not None and (refunds.level, refunds.verified) == (4, True)
    assert skill_of(demo, "alex", "late fees") is None
    rows = [(r.actor_label, r.action, r.target, r.allowed) for r in audit_rows(demo)]
    assert rows[-5:] == [
        ("priya", "skill.tag", "person:alex", True),
        ("priya", "skill.verify", "person:alex", True),
        ("priya", "skill.tag", "person:alex", True),
        ("priya", "skill.untag", "person:alex", True),
        ("priya", "skill.tag", "person:zoe", False),
    ]


@sqlite_only
def test_a_gap_return_address_stays_on_the_dashboard(demo: Services, router: Router) -> None:
    async def scenario(client: TestClient) -> None:
        csrf = await sign_in(client, demo, router, "priya")
        for back, landed in (
            ("/dashboard/gaps?days=7", "/dashboard/gaps"),
            ("https://evil.example/", "/dashboard/people/omar"),
            ("/dashboard//evil.example", "/dashboard/people/omar"),
        ):
            response = await client.post(
                "/dashboard/people/tag",
                data={
                    "csrf": csrf,
                    "person": "omar",
                    "tag": "late fees",
                    "level": "2",
                    "back": back,
                },
                allow_redirects=False,
            )
            assert response.headers["Location"].split("?")[0] == landed.split("?")[0]

    serve(demo, router, scenario)


# --- knowledge -----------------------------------------------------------------------------


def entry_by(services: Services, author: str) -> KnowledgeEntry:
    with services.db.unit_of_work() as session:
        person = people.by_key(session, author)
        entry = session.scalars(
            select(KnowledgeEntry).where(KnowledgeEntry.authors.contains(person))
        ).first()
        assert entry is not None
        return entry


@sqlite_only
def test_knowledge_edit_by_author_delete_by_lead(demo: Services, router: Router) -> None:
    entry = entry_by(demo, "maria")

    async def scenario(client: TestClient) -> None:
        csrf = await sign_in(client, demo, router, "maria")
        page = await (await client.get(f"/dashboard/knowledge/{entry.id}")).text()
        assert "Edit" in page and "Delete" not in page
        form = {
            "csrf": csrf,
            "version": str(entry.version),
            "title": "Refund a double top-up",
            "body": "Check the ledger, then refund the second one.",
            "tags": "refunds",
        }
        saved = await client.post(f"/dashboard/knowledge/{entry.id}/edit", data=form)
        assert f"Updated knowledge entry #{entry.id}." in await saved.text()
        stale = await client.post(f"/dashboard/knowledge/{entry.id}/edit", data=form)
        assert "Someone changed entry" in await stale.text()
        refused = await client.post(
            f"/dashboard/knowledge/{entry.id}/delete", data={"csrf": csrf, "confirm": "yes"}
        )
        assert refused.status == 403
        client.session.cookie_jar.clear()
        csrf = await sign_in(client, demo, router, "priya")
        unconfirmed = await client.post(
            f"/dashboard/knowledge/{entry.id}/delete", data={"csrf": csrf}
        )
        assert "Tick the box" in await unconfirmed.text()
        deleted = await client.post(
            f"/dashboard/knowledge/{entry.id}/delete", data={"csrf": csrf, "confirm": "yes"}
        )
        assert deleted.url.path == "/dashboard/knowledge"
        assert f"Deleted knowledge entry #{entry.id}" in await deleted.text()
        found = await client.get("/dashboard/knowledge?q=double+top-up")
        assert f'data-entry="{entry.id}"' not in await found.text()

    serve(demo, router, scenario)
    actions = [(r.actor_label, r.action, r.allowed) for r in audit_rows(demo)]
    assert actions[-3:] == [
        ("maria", "edit_knowledge", True),
        ("maria", "delete_knowledge", False),
        ("priya", "delete_knowledge", True),
    ]


@sqlite_only
def test_knowledge_search_browse_and_stale(demo: Services, router: Router) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    with demo.db.unit_of_work() as session:
        session.execute(update(KnowledgeEntry).values(updated_at=NOW - timedelta(days=1)))
        session.execute(
            update(KnowledgeEntry)
            .where(KnowledgeEntry.id == 2)
            .values(updated_at=NOW - timedelta(days=400))
        )

    async def scenario(client: TestClient) -> None:
        await sign_in(client, demo, router, "alex")
        first = await (await client.get("/dashboard/knowledge")).text()
        assert first.count("<tr data-entry=") == 25 and "Older →" in first
        second = await (await client.get("/dashboard/knowledge?page=2")).text()
        assert second.count("<tr data-entry=") == 25
        stale = await (await client.get("/dashboard/knowledge?stale=1")).text()
        assert stale.count("<tr data-entry=") == 1 and 'data-entry="2"' in stale
        found = await (await client.get("/dashboard/knowledge?q=refund")).text()
        assert "<tr data-entry=" in found

    serve(demo, router, scenario)


# --- CSV import ----------------------------------------------------------------------------


PEOPLE_CSV = (
    "id,name,team,timezone,skills,role\n"
    "ana,Ana Lima,Billing,Europe/London,refunds:4,\n"  # line 2: created
    "omar,Omar Haddad,,Europe/London,refunds:3,\n"  # line 3: updated (no team: the lead's)
    "zed,Zed Ito,Devices & Network,UTC,,\n"  # line 4: another team
    "bo,Bo Park,Billing,UTC,,admin\n"  # line 5: a role above agent
    "zoe,Zoë Martin,Billing,UTC,,\n"  # line 6: in another team
    "cy,Cy Moss,Billing,Mars/Olympus,,\n"  # line 7: the importer refuses the time zone
)


@sqlite_only
def test_a_lead_imports_their_own_team_with_a_result_per_row(
    demo: Services, router: Router
) -> None:
    async def scenario(client: TestClient) -> None:
        csrf = await sign_in(client, demo, router, "priya")
        form = FormData({"csrf": csrf})
        form.add_field("file", PEOPLE_CSV.encode(), filename="people.csv", content_type="text/csv")
        response = await client.post("/dashboard/people/import", data=form)
        assert response.status == 200
        page = await response.text()
        assert "1 created, 1 updated, 4 not imported." in page
        found = re.findall(r'data-line="(\d+)" data-outcome="(\w+)"', page)
        outcomes = {int(line): outcome for line, outcome in found}
        assert outcomes == {
            2: "created",
            3: "updated",
            4: "failed",
            5: "failed",
            6: "failed",
            7: "failed",
        }
        assert "team &#39;Devices &amp; Network&#39; is not yours" in page
        assert "only an admin makes someone a lead or an admin" in page
        assert "&#39;zoe&#39; is not in Billing" in page
        assert "unknown time zone &#39;Mars/Olympus&#39;" in page

    serve(demo, router, scenario)
    with demo.db.unit_of_work() as session:
        ana = people.by_key(session, "ana")
        assert ana is not None and ana.team is not None and ana.team.name == "Billing"
        assert people.by_key(session, "zed") is None
        zoe = people.by_key(session, "zoe")
        assert zoe is not None and zoe.display_name == "Zoë Martin"
        assert zoe.team is not None and zoe.team.name == "Devices & Network"
    actions = {r.action: r for r in audit_rows(demo)}
    assert actions["dashboard.import_people"].actor_label == "priya"
    assert '"created": 1' in actions["dashboard.import_people"].detail


def _upload(data: bytes, csrf: str) -> FormData:
    form = FormData({"csrf": csrf})
    form.add_field("file", data, filename="people.csv", content_type="text/csv")
    return form


@sqlite_only
def test_an_upload_in_utf16_or_latin1_is_read_and_a_mixed_one_refused_at_its_line(
    demo: Services, router: Router
) -> None:
    text = "id,name,team\njose,José Núñez,Billing\n"
    mixed = "id,name\nzoe2,Zoë Two\n".encode() + "jose3,José\n".encode("latin-1")

    async def scenario(client: TestClient) -> None:
        csrf = await sign_in(client, demo, router, "priya")
        for data in (text.encode("utf-16"), text.replace("jose", "jose2").encode("cp1252")):
            page = await (
                await client.post("/dashboard/people/import", data=_upload(data, csrf))
            ).text()
            assert "1 created, 0 updated, 0 not imported." in page
        response = await client.post("/dashboard/people/import", data=_upload(mixed, csrf))
        assert response.status == 200
        page = await response.text()
        assert "0 created, 0 updated, 1 not imported." in page
        assert 'data-line="3" data-outcome="failed"' in page
        assert "not UTF-8 (byte 0xE9), though other lines are" in page
        cut = b'id,name\nana,"Ana Li'
        page = await (await client.post("/dashboard/people/import", data=_upload(cut, csrf))).text()
        assert 'data-line="2" data-outcome="failed"' in page and "cut short" in page

    serve(demo, router, scenario)
    with demo.db.reading() as session:
        assert session.scalar(select(Person.display_name).where(Person.key == "jose")) == (
            "José Núñez"
        )
        assert people.by_key(session, "zoe2") is None and people.by_key(session, "ana") is None
    refused = [r for r in audit_rows(demo) if r.action == "dashboard.import_people"]
    assert ['"imported": false' in r.detail for r in refused] == [False, False, True, True]


@sqlite_only
def test_a_level_that_is_not_an_ascii_digit_is_refused_kindly(
    demo: Services, router: Router
) -> None:
    async def scenario(client: TestClient) -> None:
        csrf = await sign_in(client, demo, router, "priya")
        response = await client.post(
            "/dashboard/people/tag",
            data={"csrf": csrf, "person": "alex", "tag": "refunds", "level": "²"},
        )
        assert response.status == 200
        assert "&#39;²&#39; is not a level (use 1 to 5)" in await response.text()

    serve(demo, router, scenario)
    assert skill_of(demo, "alex", "refunds") is None


# --- escaping ----------------------------------------------------------------------------


@sqlite_only
def test_every_value_is_escaped(demo: Services, router: Router) -> None:
    hostile = '<img src=x onerror="alert(1)">'
    with demo.db.unit_of_work() as session:
        person = people.by_key(session, "alex")
        assert person is not None
        person.display_name = hostile
        entry = session.get(KnowledgeEntry, 1)
        assert entry is not None
        entry.title = hostile

    async def scenario(client: TestClient) -> None:
        await sign_in(client, demo, router, "priya")
        for path in (
            "/dashboard/people",
            "/dashboard/people/alex",
            "/dashboard/knowledge",
            "/dashboard/knowledge/1",
        ):
            page = await (await client.get(path)).text()
            assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page, path
            assert hostile not in page, path
        response = await client.get("/dashboard/coverage")
        policy = response.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "script-src" not in policy
        assert response.headers["Referrer-Policy"] == "same-origin"

    serve(demo, router, scenario)


@sqlite_only
def test_assets_are_local(demo: Services, router: Router) -> None:
    async def scenario(client: TestClient) -> None:
        css = await client.get("/dashboard/static/dashboard.css")
        assert css.status == 200 and "text/css" in css.headers["Content-Type"]
        await sign_in(client, demo, router, "daniel")
        for path in ("/dashboard/coverage", "/dashboard/huddles", "/dashboard/kpis"):
            page = await (await client.get(path)).text()
            assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
            assert "https://" not in page and "<script" not in page
        assert (await client.get("/dashboard", allow_redirects=False)).status == 301

    serve(demo, router, scenario)


@sqlite_only
def test_a_removed_person_is_signed_out(demo: Services, router: Router) -> None:
    async def scenario(client: TestClient) -> None:
        await sign_in(client, demo, router, "priya")
        with demo.db.unit_of_work() as session:
            person = session.scalar(select(Person).where(Person.key == "priya"))
            assert person is not None
            person.deleted_at = NOW
        assert (await client.get("/dashboard/coverage")).status == 401

    serve(demo, router, scenario)


@sqlite_only
def test_signing_out(demo: Services, router: Router) -> None:
    async def scenario(client: TestClient) -> None:
        csrf = await sign_in(client, demo, router, "alex")
        out = await client.post("/dashboard/logout", data={"csrf": csrf})
        assert "Signed out" in await out.text()
        assert (await client.get("/dashboard/knowledge")).status == 401

    serve(demo, router, scenario)


def test_audit_page_filters(demo: Services, router: Router) -> None:
    async def scenario(client: TestClient) -> None:
        csrf = await sign_in(client, demo, router, "daniel")
        await client.post(
            "/dashboard/people/tag",
            data={"csrf": csrf, "person": "zoe", "tag": "roaming", "level": "2"},
        )
        page = await (await client.get("/dashboard/audit?action=skill.tag&actor=DANIEL")).text()
        assert page.count('class="audit-row"') == 1
        assert 'data-target="person:zoe"' in page
        assert csrf_of(page) == csrf
        none = await (await client.get("/dashboard/audit?action=nothing")).text()
        assert "Nothing recorded." in none

    serve(demo, router, scenario)
    assert any(r.action == "skill.tag" and r.actor_label == "daniel" for r in audit_rows(demo))
    with demo.db.unit_of_work() as session:
        assert session.scalar(select(AuditEntry).where(AuditEntry.actor_label == "daniel"))


@sqlite_only
def test_a_lead_describes_a_topic_on_the_topics_page(demo: Services, router: Router) -> None:
    async def scenario(client: TestClient) -> None:
        agent = await sign_in(client, demo, router, "alex")
        assert (await client.get("/dashboard/tags")).status == 403  # leads' page
        refused = await client.post(
            "/dashboard/tags/describe",
            data={"csrf": agent, "tag": "refunds", "description": "Mine", "examples": ""},
        )
        assert refused.status == 403
        csrf = await sign_in(client, demo, router, "priya")
        listed = await (await client.get("/dashboard/tags")).text()
        assert 'data-tag="refunds"' in listed and 'action="/dashboard/tags/describe"' in listed
        saved = await client.post(
            "/dashboard/tags/describe",
            data={
                "csrf": csrf,
                "tag": "Refunds",
                "description": "Money back to the customer",
                "examples": "refund to a closed card\r\n\r\npartial refund\r\n",
            },
        )
        assert saved.url.path == "/dashboard/tags"
        shown = await saved.text()
        assert "Saved the description of refunds and 2 example questions." in shown
        assert 'value="Money back to the customer"' in shown
        assert "refund to a closed card\npartial refund</textarea>" in shown
        unknown = await client.post(
            "/dashboard/tags/describe", data={"csrf": csrf, "tag": "zebra", "description": "x"}
        )
        assert "There is no tag &#39;zebra&#39;." in await unknown.text()

    serve(demo, router, scenario)
    actions = [(a.action, a.actor_id is not None) for a in audit_rows(demo)]
    assert actions.count(("describe_tag", True)) == 2  # alex's refusal, priya's change
