"""Small helpers shared by tests: commands as a person, and reading replies."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Executable, event, select

from bot.db.models import AuditEntry
from bot.router import Router
from bot.services import Services, people
from bot.types import Actions, Button, Command, Notice, PersonCard, Reply


@dataclass
class Clock:
    """The services' clock in tests: stands still until a test moves it on."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def buttons(reply: Reply) -> list[Button]:
    return [b for e in reply.elements if isinstance(e, Actions) for b in e.buttons]


def button(reply: Reply, label: str) -> Button:
    found = [b for b in buttons(reply) if b.label == label]
    assert found, f"no button {label!r} in {[b.label for b in buttons(reply)]}"
    return found[0]


def press(services: Services, router: Router, key: str, pressed: Button, **values: str) -> Reply:
    command = Command(
        "test",
        person_id(services, key),
        "",
        pressed.value,
        action_id=pressed.action_id,
        values=values,
    )
    return router.dispatch(command, services)


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


def query_plan(services: Services, statement: Executable, params: Any = None) -> list[str]:
    """SQLite's plan for a statement, a step a line, as SQLAlchemy would run it."""

    def explain(_conn: Any, _cursor: Any, text: str, parameters: Any, *_: Any) -> Any:
        return f"EXPLAIN QUERY PLAN {text}", parameters

    with services.db.engine.connect() as connection:
        event.listen(connection, "before_cursor_execute", explain, retval=True)
        return [str(row[-1]) for row in connection.execute(statement, params)]
