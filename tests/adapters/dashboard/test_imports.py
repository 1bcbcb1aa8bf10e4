"""A lead's CSV import over HTTP: no demoted admins, no self-verification, no NUL tricks.

Each refused row is reported on its line and audited; each role changed and each
verification given is an audit row of its own, naming who did it and what.
"""

from __future__ import annotations

import json
import re

from aiohttp import FormData
from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.db.models import AuditEntry, Role
from bot.router import Router
from bot.services import Services, people
from tests.adapters.dashboard.conftest import serve, sign_in


async def upload(client: TestClient, csrf: str, text: str) -> str:
    form = FormData({"csrf": csrf})
    form.add_field("file", text.encode(), filename="people.csv", content_type="text/csv")
    response = await client.post("/dashboard/people/import", data=form)
    assert response.status == 200
    return await response.text()


def outcomes(page: str) -> dict[int, str]:
    found = re.findall(r'data-line="(\d+)" data-outcome="(\w+)"', page)
    return {int(line): outcome for line, outcome in found}


def audited(services: Services, action: str) -> list[tuple[str, str, bool, dict]]:
    with services.db.reading() as session:
        rows = session.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        )
        return [(r.actor_label, r.target, r.allowed, json.loads(r.detail or "{}")) for r in rows]


LEAD_CSV = (
    "id,name,team,skills,role,verified\n"
    "daniel,Daniel Murphy,,accounts:3,agent,accounts\n"  # line 2: an admin of her team, demoted
    "fatima,Fatima Ali,,fraud:5,,fraud\n"  # line 3: her own new skill, verified
    "lerato,Lerato Molefe,,fraud:4,,fraud\n"  # line 4: her team's agent, verified by her
)


def test_a_leads_import_neither_demotes_an_admin_nor_verifies_the_leads_own_skills(
    demo: Services, router: Router
) -> None:
    async def scenario(client: TestClient) -> None:
        page = await upload(client, await sign_in(client, demo, router, "fatima"), LEAD_CSV)
        assert outcomes(page) == {2: "failed", 3: "failed", 4: "updated"}
        assert "only an admin makes someone a lead or an admin, or unmakes one" in page
        assert "nobody verifies their own expertise (fraud)" in page
        # An admin may make someone a lead: audited with who, whom and what.
        csv = "id,name,team,role\nlerato,Lerato Molefe,Accounts & Retention,lead\n"
        page = await upload(client, await sign_in(client, demo, router, "daniel"), csv)
        assert outcomes(page) == {2: "updated"}

    serve(demo, router, scenario)
    with demo.db.reading() as session:
        daniel = people.by_key(session, "daniel")
        assert daniel is not None and daniel.role == Role.ADMIN
        fatima = people.by_key(session, "fatima")
        assert fatima is not None and "fraud" not in {s.tag.name for s in fatima.skills}
        lerato = people.by_key(session, "lerato")
        assert lerato is not None and lerato.role == Role.LEAD
        fraud = next(s for s in lerato.skills if s.tag.name == "fraud")
        assert fraud.level == 4 and fraud.verified_by is not None
        assert fraud.verified_by.key == "fatima"
    assert audited(demo, "change_role") == [
        (
            "fatima",
            "person:daniel",
            False,
            {
                "line": 2,
                "via": "import",
                "reason": "only an admin makes someone a lead or an admin, or unmakes one",
            },
        ),
        (
            "daniel",
            "person:lerato",
            True,
            {"after": "lead", "before": "agent", "line": 2, "via": "import"},
        ),
    ]
    verifications = audited(demo, "skill.verify")
    assert [row[:3] for row in verifications] == [
        ("fatima", "person:fatima", False),
        ("fatima", "person:lerato", True),
    ]
    assert verifications[1][3] == {"line": 4, "tags": ["fraud"], "via": "import"}


NUL_CSV = (
    "id,name,skills,verified\n"
    "mar\x00ia,Maria (moved by kwame),fraud:5;refunds:1,fraud\n"
    "pri\x00ya,Priya (moved by kwame),fraud:5,fraud\n"
    "maria,Maria (moved by kwame),fraud:5,fraud\n"
)


def test_a_nul_byte_in_an_id_is_refused_with_its_line_and_moves_nobody(
    demo: Services, router: Router
) -> None:
    async def scenario(client: TestClient) -> None:
        page = await upload(client, await sign_in(client, demo, router, "kwame"), NUL_CSV)
        assert outcomes(page) == {2: "failed", 3: "failed", 4: "failed"}
        assert page.count("a control or invisible character (U+0000, character 4)") == 2
        # Without the NUL, Maria is who she is: of another team than his.
        assert "&#39;maria&#39; is not in Devices &amp; Network" in page

    serve(demo, router, scenario)
    with demo.db.reading() as session:
        for key, name in (("maria", "Maria Santos"), ("priya", "Priya Sharma")):
            person = people.by_key(session, key)
            assert person is not None and person.display_name == name
            assert person.team is not None and person.team.name == "Billing"
            assert "fraud" not in {s.tag.name for s in person.skills}
        maria = people.by_key(session, "maria")
        assert maria is not None
        refunds = next(s for s in maria.skills if s.tag.name == "refunds")
        assert (refunds.level, refunds.verified) == (4, True)
        priya = people.by_key(session, "priya")
        assert priya is not None and priya.role == Role.LEAD
    assert [row[:3] for row in audited(demo, "import_person")] == [("kwame", "person:maria", False)]
