"""Growth on the dashboard, on the demo org with its growth seeded (what `make run`
seeds): goals and progress on a person's page, the growth timeline and its CSV, mentor
pairs made by a lead (audited), and each team's weekly digest."""

from __future__ import annotations

import csv
import io
import re

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.data.demo import seed_growth
from bot.db.models import Mentorship
from bot.router import Router
from bot.services import Services
from tests.adapters.dashboard.conftest import serve, sign_in
from tests.conftest import NOW
from tests.helpers import audit_rows


@pytest.fixture
def grown(demo: Services) -> Services:
    with demo.db.unit_of_work() as session:
        seed_growth(session, NOW)
    return demo


def goal_rows(page: str) -> dict[str, tuple[int, int, int]]:
    """The goals table: topic → (threads observed, answers written, skills earned)."""
    return {
        tag: (int(o), int(a), int(e))
        for tag, o, a, e in re.findall(
            r'<tr data-goal="([^"]+)" data-observed="(\d+)" data-answers="(\d+)" '
            r'data-earned="(\d+)">',
            page,
        )
    }


def test_a_learner_and_their_lead_see_the_goals_a_colleague_does_not(
    grown: Services, router: Router
) -> None:
    async def scenario(client: TestClient) -> None:
        await sign_in(client, grown, router, "omar")
        own = await (await client.get("/dashboard/people/omar")).text()
        # The demo's observed huddle thread counts for his goal; his mentor shows.
        assert goal_rows(own) == {"refunds": (1, 0, 0)}
        assert "Maria Santos" in own and "Growth timeline" in own
        assert 'action="/dashboard/mentors/pair"' not in own  # he cannot pair himself
        await sign_in(client, grown, router, "priya")
        lead = await (await client.get("/dashboard/people/omar")).text()
        assert goal_rows(lead) == {"refunds": (1, 0, 0)}
        assert 'data-event="observed"' in lead and 'data-event="goal_set"' in lead
        assert 'action="/dashboard/mentors/pair"' in lead
        await sign_in(client, grown, router, "maria")
        colleague = await client.get("/dashboard/people/omar")
        assert colleague.status == 403

    serve(grown, router, scenario)


def test_the_growth_page_lists_goals_and_pairs_and_exports_timelines(
    grown: Services, router: Router
) -> None:
    async def scenario(client: TestClient) -> None:
        await sign_in(client, grown, router, "priya")
        page = await (await client.get("/dashboard/growth")).text()
        goals = re.findall(r'<tr data-person="([^"]+)" data-goal="([^"]+)"', page)
        # Her team's learners only (Zoe learns roaming in Devices & Network).
        assert sorted(goals) == [("alex", "chargebacks"), ("omar", "refunds")]
        assert 'data-pair="omar:refunds:maria"' in page
        exported = await client.get("/dashboard/growth.csv")
        assert exported.status == 200 and exported.content_type == "text/csv"
        rows = list(csv.reader(io.StringIO(await exported.text())))
        assert rows[0] == ["person", "name", "team", "date", "event", "topic", "detail"]
        assert {row[2] for row in rows[1:]} == {"Billing"}
        observed = [row for row in rows if row[0] == "omar" and row[4] == "observed"]
        assert len(observed) == 1 and observed[0][5] == "refunds"
        one = await client.get("/dashboard/people/omar/growth.csv")
        assert {row[0] for row in list(csv.reader(io.StringIO(await one.text())))[1:]} == {"omar"}
        await sign_in(client, grown, router, "maria")
        assert (await client.get("/dashboard/growth")).status == 403
        assert (await client.get("/dashboard/people/omar/growth.csv")).status == 403
        own = await client.get("/dashboard/people/maria/growth.csv")
        assert own.status == 200

    serve(grown, router, scenario)


def test_a_lead_pairs_a_mentor_in_a_form_and_it_is_audited(grown: Services, router: Router) -> None:
    async def scenario(client: TestClient) -> None:
        csrf = await sign_in(client, grown, router, "priya")
        form = {"csrf": csrf, "learner": "alex", "mentor": "sipho", "tag": "chargebacks"}
        done = await client.post("/dashboard/mentors/pair", data=form)
        page = await done.text()
        assert "Paired Alex Turner with Sipho Dlamini to learn “chargebacks”." in page
        assert 'data-pair="alex:chargebacks:sipho"' in page
        wrong = await client.post("/dashboard/mentors/pair", data={**form, "tag": "nonsense"})
        assert "There is no topic" in await wrong.text()
        ended = await client.post(
            "/dashboard/mentors/unpair",
            data={"csrf": csrf, "learner": "alex", "tag": "chargebacks"},
        )
        assert "no longer has a mentor" in await ended.text()
        # Another team's lead may not, and the refusal is kept.
        csrf = await sign_in(client, grown, router, "kwame")
        refused = await client.post(
            "/dashboard/mentors/pair",
            data={"csrf": csrf, "learner": "alex", "mentor": "sipho", "tag": "chargebacks"},
        )
        assert refused.status == 403

    serve(grown, router, scenario)
    with grown.db.unit_of_work() as session:
        pairs = session.scalars(select(Mentorship).order_by(Mentorship.id)).all()
        assert [(p.learner.key, p.mentor.key, p.ended_at is None) for p in pairs] == [
            ("omar", "maria", True),
            ("alex", "sipho", False),
        ]
    audited = [(r.actor_label, r.action, r.allowed) for r in audit_rows(grown)]
    assert [row for row in audited if row[1].startswith("mentor.")] == [
        ("priya", "mentor.pair", True),
        ("priya", "mentor.unpair", True),
        ("kwame", "mentor.pair", False),
    ]


def test_each_team_digest_is_on_the_dashboard_as_its_channel_reads_it(
    grown: Services, router: Router
) -> None:
    async def scenario(client: TestClient) -> None:
        await sign_in(client, grown, router, "priya")
        page = await (await client.get("/dashboard/digest")).text()
        (billing,) = re.findall(r'<section class="digest" data-team="Billing"([^>]*)>', page)
        # The demo's week: three resolved, one nobody answered, three unmatched questions.
        assert 'data-resolved="3"' in billing and 'data-answers="3"' in billing
        assert 'data-unanswered="1"' in billing and 'data-unmatched="3"' in billing
        assert "Together, Billing resolved 3 huddle threads and wrote 3 answers." in page
        assert "Hannah Brooks, Maria Santos and Priya Sharma" in page
        assert 'data-team="Devices &amp; Network"' not in page  # her team only
        await sign_in(client, grown, router, "daniel")  # an admin: every team
        everyone = await (await client.get("/dashboard/digest")).text()
        assert everyone.count('<section class="digest"') == 3

    serve(grown, router, scenario)
