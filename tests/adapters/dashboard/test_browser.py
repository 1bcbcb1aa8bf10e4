"""The dashboard in headless Chromium: sign in by a magic link, read the charts, change things.

The whole `whoknows serve` application runs on a free local port; Playwright
drives Debian's Chromium (`executable_path`), not a browser it downloads.
Charts are read back through their `data-*` attributes and checked against
numbers worked out independently of the analytics code.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import select

from adapters.server import build_app
from bot.data.demo import data
from bot.db.models import Person
from bot.router import Router
from bot.services import Services, accounts, presence
from bot.services.accounts import Account
from tests.activity import seed_huddles
from tests.adapters.dashboard.conftest import link
from tests.conftest import NOW
from tests.helpers import audit_rows

# The browser runs one database: permissions and numbers are checked on both elsewhere.
pytestmark = pytest.mark.parametrize("demo_database_url", ["sqlite"], indirect=True)

Browse = Callable[[Any, str], Awaitable[None]]


def browse(services: Services, router: Router, chromium: str, scenario: Browse) -> None:
    """Serve the app, open Chromium, run `scenario(browser, base_url)`, close both."""
    from playwright.async_api import async_playwright

    async def main() -> None:
        server = TestServer(build_app(services, router, {}, worker_interval=60), host="127.0.0.1")
        await server.start_server()
        try:
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=chromium)
                try:
                    await scenario(browser, str(server.make_url("")).rstrip("/"))
                finally:
                    await browser.close()
        finally:
            await server.close()

    asyncio.run(main())


async def signed_in(browser: Any, base: str, services: Services, router: Router, key: str) -> Any:
    """A new browser context (its own cookies) signed in as `key` through the chat link."""
    url = await asyncio.to_thread(link, services, router, key)
    context = await browser.new_context()
    page = await context.new_page()
    await page.goto(on(base, url))
    assert "signs you in as" in await page.inner_text("main")
    await submit(page, "main form button")
    return page


async def submit(page: Any, selector: str) -> None:
    """Click a link or a button and wait for the page it leads to (through any redirects)."""
    async with page.expect_navigation():
        await page.click(selector)


def on(base: str, url: str) -> str:
    """A link the bot gave (for the configured public address), on the test server."""
    parts = urlsplit(url)
    return f"{base}{parts.path}?{parts.query}"


async def data_of(page: Any, selector: str) -> list[dict[str, str]]:
    """The `data-*` attributes of every element the selector finds."""
    found: list[dict[str, str]] = await page.eval_on_selector_all(
        selector, "nodes => nodes.map(n => Object.assign({}, n.dataset))"
    )
    return found


def expected_coverage(
    services: Services,
) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]]]:
    """Experts and available experts per (tag, team), from the seed data and presence."""
    with services.db.unit_of_work() as session:
        reachable = {
            p.key for p in session.query(Person).all() if presence.current(p, NOW).reachable
        }
    experts: Counter[tuple[str, str]] = Counter()
    available: Counter[tuple[str, str]] = Counter()
    for person in data.PEOPLE:
        for tag, _, _ in person["skills"]:
            experts[tag, person["team"]] += 1
            available[tag, person["team"]] += person["handle"] in reachable
    return experts, available


def test_a_lead_signs_in_reads_the_heatmap_tags_and_verifies(
    demo: Services, router: Router, chromium: str
) -> None:
    experts, available = expected_coverage(demo)

    async def scenario(browser: Any, base: str) -> None:
        page = await signed_in(browser, base, demo, router, "priya")
        assert page.url == f"{base}/dashboard/coverage"
        cells = await data_of(page, "svg.heatmap g.cell")
        assert {c["team"] for c in cells} == {"Billing"}
        assert len(cells) == len(data.TAGS)
        drawn = {(c["tag"], c["team"]): int(c["experts"]) for c in cells}
        assert drawn == {(tag, "Billing"): experts[tag, "Billing"] for tag, _ in drawn}
        free = {(c["tag"], c["team"]): int(c["available"]) for c in cells}
        assert free == {(tag, "Billing"): available[tag, "Billing"] for tag, _ in free}
        refunds = page.locator('svg.heatmap g.cell[data-tag="refunds"]')
        n, m = experts["refunds", "Billing"], available["refunds", "Billing"]
        assert await refunds.locator("title").text_content() == (
            f"refunds · Billing: {n} experts, {m} available now"
        )
        risks = await data_of(page, "svg.heatmap text.row[data-risk]")
        held = Counter(s[0] for p in data.PEOPLE for s in p["skills"])
        assert {r["tag"] for r in risks} == {tag for tag, count in held.items() if count == 1}

        await submit(page, "nav >> text=People")
        await submit(page, "text=Alex Turner")
        await page.fill("form.add-skill input[name=tag]", "refunds")
        await page.select_option("form.add-skill select[name=level]", "4")
        await submit(page, "form.add-skill button")
        assert "Tagged Alex Turner: refunds (level 4)." in await page.inner_text(".flash")
        row = page.locator('table.skills tr[data-tag="refunds"]')
        assert await row.get_attribute("data-level") == "4"
        assert await row.get_attribute("data-verified") == "yes"
        await submit(page, 'table.skills tr[data-tag="billing"] >> text=Verify')
        assert "Verified Alex Turner's 'billing' (level 1)." in await page.inner_text(".flash")
        billing = page.locator('table.skills tr[data-tag="billing"]')
        assert await billing.get_attribute("data-verified") == "yes"
        history = await data_of(page, "table.audit tr.audit-row")
        assert [(r["actor"], r["action"]) for r in history] == [
            ("priya", "skill.verify"),
            ("priya", "skill.tag"),
        ]

        admin = await signed_in(browser, base, demo, router, "daniel")
        await submit(admin, "nav >> text=Audit log")
        rows = await data_of(admin, "table.audit tr.audit-row")
        assert rows[:2] == [
            {"action": "skill.verify", "target": "person:alex", "actor": "priya", "allowed": "yes"},
            {"action": "skill.tag", "target": "person:alex", "actor": "priya", "allowed": "yes"},
        ]

    browse(demo, router, chromium, scenario)


def test_an_agent_gets_403_on_lead_pages(demo: Services, router: Router, chromium: str) -> None:
    async def scenario(browser: Any, base: str) -> None:
        page = await signed_in(browser, base, demo, router, "alex")
        assert page.url == f"{base}/dashboard/people/alex"
        for path in ("coverage", "gaps", "huddles", "kpis", "people", "audit"):
            response = await page.goto(f"{base}/dashboard/{path}")
            assert response.status == 403, path
            assert "only" in (await page.inner_text("h1")).lower()
        response = await page.goto(f"{base}/dashboard/people/priya")
        assert response.status == 403

    browse(demo, router, chromium, scenario)


def test_expired_reused_and_forged_links_are_refused(
    demo: Services, router: Router, chromium: str
) -> None:
    async def scenario(browser: Any, base: str) -> None:
        page = await signed_in(browser, base, demo, router, "priya")
        used = page.url  # now signed in; the link itself is spent
        again = on(base, await asyncio.to_thread(link, demo, router, "priya"))
        await page.goto(again)
        await submit(page, "main form button")
        response = await page.goto(again)
        assert response.status == 403
        assert await page.inner_text("h1") == "This link was already used"
        assert used.endswith("/dashboard/coverage")

        stale = await asyncio.to_thread(link, demo, router, "priya")
        demo.clock.advance(11 * 60)  # type: ignore[attr-defined]
        response = await page.goto(on(base, stale))
        assert response.status == 403
        assert await page.inner_text("h1") == "This link has expired"

        response = await page.goto(again[:-3] + "xyz")
        assert response.status == 403
        assert await page.inner_text("h1") == "This link is not valid"

    browse(demo, router, chromium, scenario)


def test_a_post_without_a_csrf_token_is_refused(
    demo: Services, router: Router, chromium: str
) -> None:
    before = len(audit_rows(demo))

    async def scenario(browser: Any, base: str) -> None:
        page = await signed_in(browser, base, demo, router, "priya")
        # The browser sends the session cookie, but not the page's token.
        response = await page.request.post(
            f"{base}/dashboard/people/tag",
            form={"person": "alex", "tag": "refunds", "level": "4"},
        )
        assert response.status == 403
        assert "Form refused" in await response.text()

    browse(demo, router, chromium, scenario)
    assert len(audit_rows(demo)) == before


def test_huddle_and_kpi_charts_draw_the_numbers(
    demo: Services, router: Router, chromium: str
) -> None:
    seed_huddles(demo)

    async def scenario(browser: Any, base: str) -> None:
        page = await signed_in(browser, base, demo, router, "daniel")
        await page.goto(f"{base}/dashboard/huddles?weeks=4")
        buckets = await data_of(page, "svg.reply-times g.bar")
        # The huddles of tests/activity.py in the last four weeks: replies after 45 s,
        # 240 s, 100 s and 4000 s (the five-week-old one is outside).
        assert [(b["label"], b["value"]) for b in buckets] == [
            ("< 1 min", "1"),
            ("1–3 min", "1"),
            ("3–10 min", "1"),
            ("10–30 min", "0"),
            ("30–60 min", "0"),
            ("≥ 1 h", "1"),
        ]
        monday = NOW.date()
        label = {
            monday - timedelta(weeks=n): f"{monday - timedelta(weeks=n):%d %b}" for n in range(4)
        }
        trend = {p["label"]: p["value"] for p in await data_of(page, "svg.reply-trend g.point")}
        assert trend == {
            label[monday - timedelta(weeks=2)]: "66.7",  # 4000 s
            label[monday - timedelta(weeks=1)]: "1.7",  # 100 s
            label[monday]: "2.4",  # median of 45 s and 240 s
        }
        rates = {
            (b["group"], b["series"]): b["value"]
            for b in await data_of(page, "svg.resolution g.bar")
        }
        assert rates[label[monday], "Billing"] == "33.3"  # 1 resolved of 3
        assert rates[label[monday - timedelta(weeks=1)], "Billing"] == "100"
        assert rates[label[monday - timedelta(weeks=1)], "Devices & Network"] == "0"
        assert rates[label[monday], "Accounts & Retention"] == ""  # no huddles: no rate
        escalations = {
            (b["group"], b["series"]): b["value"]
            for b in await data_of(page, "svg.escalations g.bar")
        }
        assert escalations[label[monday], "Billing"] == "1"
        assert escalations[label[monday - timedelta(weeks=1)], "Devices & Network"] == "1"
        assert await page.locator("table.huddles").first.locator("tr[data-huddle]").count() == 2

        await page.goto(f"{base}/dashboard/kpis?period=week")
        resolved = {b["label"]: b["value"] for b in await data_of(page, "svg.resolved g.bar")}
        assert resolved == {"Accounts & Retention": "0", "Billing": "2", "Devices & Network": "1"}
        board = await data_of(page, "ol.board li")
        assert [b["person"] for b in board] == ["maria", "tomasz"]

    browse(demo, router, chromium, scenario)


def test_an_admin_links_an_account_and_merges_a_conflict_with_the_pages_forms(
    demo: Services, router: Router, chromium: str
) -> None:
    email = "maria.santos@northwind-mobile.example"
    with demo.db.unit_of_work() as session:
        maria = session.scalar(select(Person).where(Person.key == "maria"))
        assert maria is not None
        accounts.link_by_hand(session, maria, "slack", "U0MARIA", actor_label="cli:test")
        # Maria's e-mail on a second Slack account: a record of its own, and a conflict.
        made = accounts.link_account(
            session, Account("slack", "U0MARIA2", "Maria S.", email), NOW, seen_in="slack"
        ).key

    async def scenario(browser: Any, base: str) -> None:
        page = await signed_in(browser, base, demo, router, "daniel")
        await submit(page, "nav >> text=People")
        await submit(page, "table.people >> text=Alex Turner")
        await page.select_option("form.link-account select[name=kind]", "teams")
        await page.fill("form.link-account input[name=account]", "29:alex")
        await submit(page, "form.link-account button")
        assert await page.inner_text(".flash") == (
            "Linked 29:alex on Microsoft Teams to Alex Turner (alex)."
        )
        shown = page.locator('table.accounts tr[data-platform="teams"]')
        assert await shown.get_attribute("data-accounts") == "29:alex"

        await submit(page, "nav >> text=People")
        conflict = page.locator(f'table.conflicts tr[data-claimant="{made}"]')
        await conflict.locator("input[name=confirm]").check()
        await submit(page, f'table.conflicts tr[data-claimant="{made}"] button')
        assert await page.inner_text(".flash") == (
            f"Merged {made} into Maria Santos (maria): skills, accounts and history moved."
        )
        assert await page.locator("table.conflicts tr[data-conflict]").count() == 0

    browse(demo, router, chromium, scenario)
    rows = [(r.actor_label, r.action, r.target) for r in audit_rows(demo)[-2:]]
    assert rows == [
        ("daniel", "link_account", "person:alex"),
        ("daniel", "merge_people", "person:maria"),
    ]
