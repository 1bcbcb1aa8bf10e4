"""People from an uploaded CSV, with a result for every row.

The file goes to `bot.data.transfer.import_people`, the command line's importer (same
columns, same checks, audited), as the signed-in person: each row is checked there,
against the person it changes, by the rules every other path asks
(`bot.services.permissions`). An admin imports anyone; a lead imports the people of
their own team only, as agents, and verifies nobody's expertise but their team's
(never their own). A refused row is reported on its own line and audited.
"""

from __future__ import annotations

import csv
import io
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from bot.data.transfer import import_people
from bot.db.models import Person
from bot.services import Services
from bot.services.audit import record

MAX_ROWS = 5000


@dataclass(frozen=True)
class RowResult:
    line: int
    key: str
    outcome: str  # created, updated or failed
    message: str


@dataclass
class ImportResult:
    rows: list[RowResult] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for row in self.rows if row.outcome == outcome)

    @property
    def created(self) -> int:
        return self.count("created")

    @property
    def updated(self) -> int:
        return self.count("updated")

    @property
    def failed(self) -> int:
        return self.count("failed")


def _too_big(text: str) -> str | None:
    """Why the file is not imported at all, if it is not (more rows than a form takes)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    rows = sum(1 for _ in reader) - 1
    if rows > MAX_ROWS:
        return f"at most {MAX_ROWS:,} rows at a time: split the file"
    return None


def import_csv(services: Services, actor_id: int, text: str, now: datetime) -> ImportResult:
    result = ImportResult()
    try:
        refusal = _too_big(text)
    except csv.Error as error:
        refusal = f"not a CSV file ({error})"
    if refusal is not None:
        result.rows.append(RowResult(1, "", "failed", refusal))
        return result
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "people.csv"
        path.write_text(text, encoding="utf-8", newline="")
        report = import_people(services.db, path, now, by=actor_id)
    for line, (key, outcome) in report.landed.items():
        result.rows.append(RowResult(line, key, outcome, outcome))
    for line, message in report.errors:
        result.rows.append(RowResult(line, report.ids.get(line, ""), "failed", message))
    result.rows.sort(key=lambda row: row.line)
    with services.db.unit_of_work() as session:
        actor = session.scalar(select(Person).where(Person.id == actor_id))
        record(
            session,
            actor_id,
            "dashboard.import_people",
            "people",
            actor_label=actor.key if actor is not None else None,
            created=result.created,
            updated=result.updated,
            failed=result.failed,
        )
    return result
