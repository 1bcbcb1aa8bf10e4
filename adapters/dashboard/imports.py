"""People from an uploaded CSV, with a result for every row.

The file goes to `bot.data.transfer.import_people`, the command line's importer (same
columns, same checks, audited), as the signed-in person: each row is checked there,
against the person it changes, by the rules every other path asks
(`bot.services.permissions`). An admin imports anyone; a lead imports the people of
their own team only, as agents, and verifies nobody's expertise but their team's
(never their own). A refused row is reported on its own line and audited.

An upload is read by the importer's rules (UTF-8, UTF-16 or a single-byte Windows
encoding; strict CSV), up to 1 MB: a file it cannot read is refused whole, at the
line where it stops being readable, and that attempt is audited too. Like every
import, the file lands whole or not at all.
"""

from __future__ import annotations

import io
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import select

from bot import messages
from bot.data import transfer
from bot.data.transfer import import_people
from bot.db.models import Person
from bot.services import Services
from bot.services.audit import record

MAX_ROWS = 5000
MAX_UPLOAD_BYTES = 1024**2


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
    """Why the file is not imported at all, if it is not (more rows than a form takes);
    `transfer.FileError` where it cannot be read as CSV (read as the importer reads it)."""
    rows = sum(1 for _ in transfer.csv_records(io.StringIO(text, newline=""))) - 1
    if rows > MAX_ROWS:
        return f"at most {MAX_ROWS:,} rows at a time: split the file"
    return None


def import_upload(services: Services, actor_id: int, raw: bytes, now: datetime) -> ImportResult:
    """An uploaded file, in any encoding the importer reads (`transfer.decode_upload`);
    read up to one byte past MAX_UPLOAD_BYTES, so a larger one is refused, not cut."""
    if len(raw) > MAX_UPLOAD_BYTES:
        return _unreadable(services, actor_id, 0, messages.IMPORT_UPLOAD_TOO_LARGE)
    try:
        text, _ = transfer.decode_upload(raw)
    except transfer.FileError as error:
        return _unreadable(services, actor_id, error.line, error.message)
    return import_csv(services, actor_id, text, now)


def _unreadable(services: Services, actor_id: int, line: int, message: str) -> ImportResult:
    """A file refused whole: the reason at its line, and the attempt audited."""
    result = ImportResult([RowResult(line, "", "failed", message)])
    _audit(services, actor_id, result, imported=False, error=f"line {line}: {message}")
    return result


def _audit(services: Services, actor_id: int, result: ImportResult, **more: object) -> None:
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
            **more,
        )


def import_csv(services: Services, actor_id: int, text: str, now: datetime) -> ImportResult:
    result = ImportResult()
    try:
        refusal = _too_big(text)
    except transfer.FileError as error:
        return _unreadable(services, actor_id, error.line, error.message)
    if refusal is not None:
        return _unreadable(services, actor_id, 1, refusal)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "people.csv"
        path.write_text(text, encoding="utf-8", newline="")
        report = import_people(services.db, path, now, by=actor_id, per_line=True)
    for line, (key, outcome) in report.landed.items():
        result.rows.append(RowResult(line, key, outcome, outcome))
    for line, message in report.errors:
        result.rows.append(RowResult(line, report.ids.get(line, ""), "failed", message))
    result.rows.sort(key=lambda row: row.line)
    if report.written:
        _audit(services, actor_id, result)
    else:  # nothing of it was written (the database refused it)
        _audit(services, actor_id, result, imported=False)
    return result
