"""Imports at the command line: ids cleaned once (a NUL refused, with its line), and each
role changed and each verification given audited with the operator who gave it."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import pytest
from sqlalchemy import select

from adapters.cli import main
from bot.db import open_database
from bot.db.models import AuditEntry, Person, Role


@pytest.fixture
def url(demo_database_url: str) -> str:
    """The demo org, on SQLite and on PostgreSQL."""
    return demo_database_url


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_a_control_character_in_any_id_refuses_its_row_with_the_line(
    capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path
) -> None:
    people = tmp_path / "people.jsonl"
    rows = [
        {"id": "mar\x00ia", "name": "Maria (moved)", "team": "Devices & Network"},
        {"id": "ana", "name": "Ana", "team": "Bill\u200bing"},
        {"id": "bo", "name": "Bo", "slack": "U0\x1bBO"},
        {"id": "cy", "name": "Cy", "email": "cy\x00@example.com"},
        {"id": "dee", "name": "Dee", "team": "Billing"},
    ]
    people.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    code, out = run(capsys, "--db", url, "import", "people", str(people))
    assert code == 1
    assert out.splitlines() == [
        "1 created, 0 updated, 4 failed",
        "  line 1: 'id' holds a control or invisible character (U+0000, character 4): remove it",
        "  line 2: 'team' holds a control or invisible character (U+200B, character 5): remove it",
        "  line 3: 'slack' holds a control or invisible character (U+001B, character 3): remove it",
        "  line 4: 'email' holds a control or invisible character (U+0000, character 3): remove it",
    ]
    kb = tmp_path / "kb.jsonl"
    entry = {"title": "T", "body": "B", "authors": ["mar\x00ia"]}
    kb.write_text(json.dumps(entry) + "\n", encoding="utf-8")
    code, out = run(capsys, "--db", url, "import", "kb", str(kb), "--no-index")
    assert "line 1: 'authors' holds a control or invisible character (U+0000" in out
    database = open_database(url)
    try:
        with database.reading() as session:
            maria = session.scalar(select(Person).where(Person.key == "maria"))
            assert maria is not None and maria.display_name == "Maria Santos"
            assert maria.team is not None and maria.team.name == "Billing"
    finally:
        database.dispose()


def test_each_role_and_verification_the_operator_imports_is_audited_with_who(
    capsys: pytest.CaptureFixture[str], url: str, tmp_path: Path
) -> None:
    people = tmp_path / "people.csv"
    people.write_text(
        "id,name,team,skills,role,verified\n"
        "omar,Omar Haddad,Billing,refunds:2;fraud:3,lead,fraud\n"  # a lead, fraud verified
        "zed,Zed Ito,Billing,fraud:2,,\n",  # new, an agent, unverified: nothing to audit
        encoding="utf-8",
    )
    code, _ = run(capsys, "--db", url, "import", "people", str(people))
    assert code == 0
    operator = f"cli:{getpass.getuser() or 'operator'}"
    database = open_database(url)
    try:
        with database.reading() as session:
            rows = session.scalars(
                select(AuditEntry).where(AuditEntry.action != "import.people")
            ).all()
            changes = [(r.actor_label, r.action, r.target, json.loads(r.detail)) for r in rows]
            omar = session.scalar(select(Person).where(Person.key == "omar"))
            assert omar is not None and omar.role == Role.LEAD
            fraud = next(s for s in omar.skills if s.tag.name == "fraud")
            # Verified by the operator, who is nobody's colleague: no name on it.
            assert fraud.verified_at is not None and fraud.verified_by_id is None
            # Omar's refunds were unverified and the file says so again: unchanged.
            refunds = next(s for s in omar.skills if s.tag.name == "refunds")
            assert refunds.verified_at is None
    finally:
        database.dispose()
    assert changes == [
        (
            operator,
            "change_role",
            "person:omar",
            {"after": "lead", "before": "agent", "line": 2, "via": "import"},
        ),
        (operator, "skill.verify", "person:omar", {"line": 2, "tags": ["fraud"], "via": "import"}),
    ]
