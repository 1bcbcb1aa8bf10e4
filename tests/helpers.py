"""Small helpers shared by tests: commands as a person, and reading replies."""

from __future__ import annotations

import re

from sqlalchemy import select

from bot.db.models import AuditEntry
from bot.router import Router
from bot.services import Services, people
from bot.types import Command, Notice, PersonCard, Reply


def person_id(services: Services, key: str) -> int:
    with services.db.unit_of_work() as session:
        person = people.by_key(session, key)
        assert person is not None, f"no person {key!r}"
        return person.id


def say(services: Services, router: Router, key: str, name: str, text: str = "") -> Reply:
    """Dispatch a command typed by `key`, with its @mentions resolved as an adapter would."""
    mentions = {}
    with services.db.unit_of_work() as session:
        for token in re.findall(r"@[\w.-]+", text):
            found = people.by_key(session, token[1:])
            if found is not None:
                mentions[token] = found.id
    command = Command("test", person_id(services, key), name, text, mentions=mentions)
    return router.dispatch(command, services)


def notices(reply: Reply) -> list[Notice]:
    return [e for e in reply.elements if isinstance(e, Notice)]


def cards(reply: Reply) -> list[PersonCard]:
    return [e for e in reply.elements if isinstance(e, PersonCard)]


def audit_rows(services: Services) -> list[AuditEntry]:
    with services.db.unit_of_work() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))
