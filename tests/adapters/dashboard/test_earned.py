"""Suggested skills and skills to re-verify on the dashboard: the person and coverage pages
list them with their evidence, and each form decides one through the audited services."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient

from bot.router import Router
from bot.services import Services, permissions
from tests.adapters.dashboard.conftest import serve, sign_in
from tests.adapters.dashboard.test_access import sqlite_only
from tests.earned import age_skill, resolve_huddles, skill_of
from tests.helpers import audit_rows


def row(html: str, person: str, tag: str) -> str | None:
    """The table row of a suggestion or a skill to re-verify, by person and tag."""
    found = re.search(
        rf'<tr data-person="{re.escape(person)}" data-tag="{re.escape(tag)}".*?</tr>', html, re.S
    )
    return found.group(0) if found else None


@sqlite_only
def test_the_person_page_lists_the_evidence_and_each_form_decides_in_one_post(
    demo: Services, router: Router
) -> None:
    huddles = resolve_huddles(demo)
    resolve_huddles(demo, helper="omar", tag="late fees", first=3)
    age_skill(demo, "grace.o", "itemised bills", 400, verified=True)

    async def scenario(client: TestClient) -> None:
        csrf = await sign_in(client, demo, router, "priya")
        page = await (await client.get("/dashboard/people/omar")).text()
        suggestion = row(page, "omar", "chargebacks")
        assert suggestion is not None and "Accept (level 2)" in suggestion
        assert "3 resolved huddle threads" in suggestion
        assert all(f"huddle thread #{number}" in suggestion for number in huddles)
        quiet = await (await client.get("/dashboard/people/grace.o")).text()
        assert row(quiet, "grace.o", "itemised bills") is not None  # verified 400 days ago
        form = {"csrf": csrf, "tag": "chargebacks", "suggested": "2", "level": "2"}
        accepted = await client.post(
            "/dashboard/people/omar/suggestion", data={**form, "decision": "accept"}
        )
        assert accepted.url.path == "/dashboard/people/omar"
        html = await accepted.text()
        assert "Omar Haddad&#39;s chargebacks is now verified at level 2" in html
        assert row(html, "omar", "chargebacks") is None
        changed = await client.post(
            "/dashboard/people/omar/suggestion",
            data={
                **form,
                "tag": "late fees",
                "level": "4",
                "decision": "level",
                "back": "/dashboard/coverage",
            },
        )
        assert changed.url.path == "/dashboard/coverage"
        assert "now verified at level 4 (suggested 2)" in await changed.text()
        lowered = await client.post(
            "/dashboard/people/grace.o/reverify",
            data={
                "csrf": csrf,
                "tag": "itemised bills",
                "current": "3",
                "level": "2",
                "decision": "lower",
            },
        )
        assert "Lowered Grace Okafor&#39;s itemised bills from level 3 to 2" in await lowered.text()
        bad = await client.post(
            "/dashboard/people/omar/suggestion", data={**form, "decision": "maybe"}
        )
        assert "expired" in await bad.text()

    serve(demo, router, scenario)
    assert (
        skill_of(demo, "omar", "chargebacks").level,
        skill_of(demo, "omar", "late fees").level,
    ) == (2, 4)
    assert skill_of(demo, "grace.o", "itemised bills").level == 2
    actions = [(r.actor_label, r.action, r.target) for r in audit_rows(demo)[-3:]]
    assert actions == [
        ("priya", "skill.suggestion.accept", "person:omar"),
        ("priya", "skill.suggestion.change", "person:omar"),
        ("priya", "skill.reverify.lower", "person:grace.o"),
    ]


@sqlite_only
def test_the_coverage_page_lists_the_teams_suggestions_and_dismissing_hides_one(
    demo: Services, router: Router
) -> None:
    resolve_huddles(demo)
    resolve_huddles(demo, helper="zoe", asker="marco", tag="wifi calling")

    async def scenario(client: TestClient) -> None:
        csrf = await sign_in(client, demo, router, "priya")
        page = await (await client.get("/dashboard/coverage")).text()
        assert row(page, "omar", "chargebacks") is not None
        assert row(page, "zoe", "wifi calling") is None  # another team's
        dismissed = await client.post(
            "/dashboard/people/omar/suggestion",
            data={
                "csrf": csrf,
                "tag": "chargebacks",
                "suggested": "2",
                "level": "2",
                "decision": "dismiss",
                "back": "/dashboard/coverage",
            },
        )
        html = await dismissed.text()
        assert "not suggested again for 90 days" in html
        assert row(html, "omar", "chargebacks") is None
        # Another team's lead may not decide it, and is told so.
        await client.post("/dashboard/logout", data={"csrf": csrf})
        csrf = await sign_in(client, demo, router, "kwame")
        assert row(await (await client.get("/dashboard/coverage")).text(), "zoe", "wifi calling")
        refused = await client.post(
            "/dashboard/people/omar/suggestion",
            data={"csrf": csrf, "tag": "chargebacks", "suggested": "2", "decision": "accept"},
        )
        assert refused.status == 403
        assert "Only a lead of their team or an admin may verify" in await refused.text()
        # Omar sees his own page without any of it.
        await client.post("/dashboard/logout", data={"csrf": csrf})
        await sign_in(client, demo, router, "omar")
        own = await (await client.get("/dashboard/people/omar")).text()
        assert "Suggested from evidence" not in own

    serve(demo, router, scenario)
    assert skill_of(demo, "omar", "chargebacks") is None
    refused = audit_rows(demo)[-1]
    assert (refused.actor_label, refused.action, refused.allowed) == (
        "kwame",
        permissions.ACCEPT_SUGGESTION,
        False,
    )
