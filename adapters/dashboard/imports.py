"""People from an uploaded CSV, with a result for every row.

The rows go through `bot.transfer.import_people`, the command line's importer
(same columns, same checks, audited). An admin imports anyone. A lead
imports the people of their own team only: a row naming another team, a
person of another team, or a role above agent is refused here, before the
importer sees it, and reported on its own line.
"""

from __future__ import annotations

import csv
import io
import tempfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import messages, transfer
from bot.db.models import Person, Role, Team
from bot.matching.vectors import index_tags
from bot.services import Services, people
from bot.services.audit import record
from bot.transfer import import_people

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


@dataclass(frozen=True)
class _Row:
    line: int
    key: str
    values: dict[str, str]


def _read(text: str) -> tuple[list[str], list[_Row]] | tuple[int, str]:
    """The header and the rows with their line numbers, or the line where the file
    cannot be read and why (read as the command line's importer reads files)."""
    records = transfer.csv_records(io.StringIO(text, newline=""))
    try:
        first = next(records, None)
        header = [name.strip().lower() for name in (first[1] if first else [])]
        missing = {"id", "name"} - set(header)
        if missing:
            return 1, f"the header needs the columns {', '.join(sorted(missing))}"
        rows = []
        for line, cells in records:
            if not cells:
                continue
            if len(rows) == MAX_ROWS:
                return line, f"at most {MAX_ROWS:,} rows at a time: split the file"
            # Cells as they are: the importer reads the copy, and undoes a guard itself.
            values = dict(zip(header, cells, strict=False))
            rows.append(_Row(line, people.normal_key(values.get("id", "")), values))
    except transfer.FileError as error:
        return error.line, error.message
    return header, rows


def _lead_refusal(session: Session, lead: Person, row: _Row) -> str | None:
    """Why a lead may not import this row, if they may not."""
    team = session.get(Team, lead.team_id) if lead.team_id is not None else None
    if team is None:
        return "a lead without a team imports nobody: ask an admin"
    named = row.values.get("team", "").strip()
    if named and named.lower() != team.name.lower():
        return f"team '{named}' is not yours: you import people of {team.name}"
    if row.values.get("role", "").strip().lower() not in {"", Role.AGENT.value}:
        return "only an admin makes someone a lead or an admin"
    existing = session.scalar(select(Person).where(Person.key == row.key))
    if existing is not None and existing.team_id != team.id:
        return f"'{row.key}' is not in {team.name}: ask their lead or an admin"
    if not named:
        row.values["team"] = team.name
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
    with services.db.unit_of_work() as session:
        record(
            session,
            actor_id,
            "dashboard.import_people",
            "people",
            created=0,
            updated=0,
            failed=1,
            imported=False,
            error=f"line {line}: {message}",
        )
    return result


def import_csv(services: Services, actor_id: int, text: str, now: datetime) -> ImportResult:
    result = ImportResult()
    read = _read(text)
    if isinstance(read[0], int):
        return _unreadable(services, actor_id, read[0], str(read[1]))
    header, rows = read
    if "team" not in header:
        header.append("team")
    accepted: list[_Row] = []
    with services.db.unit_of_work() as session:
        actor = session.get(Person, actor_id)
        assert actor is not None
        known = set(
            session.scalars(select(Person.key).where(Person.key.in_([r.key for r in rows])))
        )
        for row in rows:
            refusal = None if actor.role == Role.ADMIN else _lead_refusal(session, actor, row)
            if refusal is None:
                accepted.append(row)
            else:
                result.rows.append(RowResult(row.line, row.key, "failed", refusal))
        label = actor.key
    failures, landed = _run_importer(services, header, accepted, now)
    if not landed:  # the database refused the file: nothing of it was written
        accepted, known = [], set()
        result.rows += [RowResult(line, "", "failed", why) for line, why in failures.items()]
    for row in accepted:
        if row.line in failures:
            result.rows.append(RowResult(row.line, row.key, "failed", failures[row.line]))
        elif row.key in known:
            result.rows.append(RowResult(row.line, row.key, "updated", "updated"))
        else:
            result.rows.append(RowResult(row.line, row.key, "created", "created"))
            known.add(row.key)
    result.rows.sort(key=lambda row: row.line)
    with services.db.unit_of_work() as session:
        record(
            session,
            actor_id,
            "dashboard.import_people",
            "people",
            actor_label=label,
            created=result.created,
            updated=result.updated,
            failed=result.failed,
        )
    return result


def _run_importer(
    services: Services, header: list[str], rows: list[_Row], now: datetime
) -> tuple[dict[int, str], bool]:
    """Import the rows; the importer's errors by the line they had in the uploaded file,
    and whether the import landed (it lands whole or not at all)."""
    if not rows:
        return {}, True
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "people.csv"
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(row.values for row in rows)
        # The copy numbers its lines differently (quoted line breaks, dropped rows).
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            copy_lines = [reader.line_num for _ in reader]
        original = dict(zip(copy_lines, (row.line for row in rows), strict=True))
        report = import_people(services.db, path, now)
    if report.landed and services.matcher.encoder is not None:
        index_tags(services.db, services.matcher.encoder)  # not in the next question
    errors = {original.get(line, line): message for line, message in report.errors}
    return errors, report.landed
