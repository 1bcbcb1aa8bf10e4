"""People from an uploaded CSV, with a result for every row.

The rows go through `bot.data.transfer.import_people`, the command line's importer
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

from bot.data.transfer import import_people
from bot.db.models import Person, Role, Team
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


@dataclass(frozen=True)
class _Row:
    line: int
    key: str
    values: dict[str, str]


def _read(text: str) -> tuple[list[str], list[_Row]] | str:
    """The header and the rows with their line numbers, or why the file cannot be read."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip().lower() for name in reader.fieldnames or []]
    missing = {"id", "name"} - set(header)
    if missing:
        return f"the header needs the columns {', '.join(sorted(missing))}"
    reader.fieldnames = header
    rows = []
    for values in reader:
        if len(rows) == MAX_ROWS:
            return f"at most {MAX_ROWS:,} rows at a time: split the file"
        clean = {k: (v or "") for k, v in values.items() if isinstance(k, str)}
        rows.append(_Row(reader.line_num, clean.get("id", "").strip().lower(), clean))
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


def import_csv(services: Services, actor_id: int, text: str, now: datetime) -> ImportResult:
    result = ImportResult()
    read = _read(text)
    if isinstance(read, str):
        result.rows.append(RowResult(1, "", "failed", read))
        return result
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
    failures = _run_importer(services, header, accepted, now)
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
) -> dict[int, str]:
    """Import the rows; the importer's errors by the line they had in the uploaded file."""
    if not rows:
        return {}
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
    return {original.get(line, line): message for line, message in report.errors}
