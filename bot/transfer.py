"""Import and export of people and knowledge (CSV and JSONL), idempotent and atomic.

A file lands whole or not at all: its rows are written a batch at a time (a few
statements each, so a large file shows progress) in one transaction, committed
with the import's audit row at the end, so a crash or a kill part-way leaves
nothing. A row that fails its checks (a bad time zone, an id the file already
named, an e-mail someone else has) is reported with its line number and left
out; the others land. A file that cannot be read (not in an encoding it could
be, a quote left open, a value over the CSV module's limit, no id or name
column) imports nothing, says at which line, and is audited too.

Exports write what imports read, so import → export → import is lossless. A CSV
cell that a spreadsheet would run as a formula (starting with =, +, -, @, a tab
or a carriage return: OWASP's CSV-injection rule) is written with a ' before it,
and the importer takes that ' off again.
"""

from __future__ import annotations

import codecs
import csv
import gc
import io
import itertools
import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, TextIO

import numpy as np
from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, selectinload

from bot import messages
from bot.db import Database, revision
from bot.db.models import (
    Identity,
    KnowledgeAuthor,
    KnowledgeEntry,
    KnowledgeTag,
    Person,
    Role,
    Skill,
    SkillSource,
    Tag,
    TagAlias,
    Team,
)
from bot.services import accounts, knowledge, presence
from bot.services.audit import record
from bot.services.expertise import MAX_SKILLS, normalise_tag, parse_skill_spec, valid_tag_name
from bot.text import clean_key, clean_name, clean_text

BATCH = 500
KNOWLEDGE_BATCH = 2_000
PEOPLE_COLUMNS = (
    "id",
    "name",
    "team",
    "timezone",
    "skills",
    "role",
    "hours",
    "verified",
    "email",
    "slack",
    "teams",
)
# Platform account columns: ids as the platform gives them, several split by ";".
ACCOUNT_COLUMNS = ("slack", "teams")
Progress = Callable[[int, int], None]
log = logging.getLogger(__name__)


class RowError(ValueError):
    pass


class FileError(ValueError):
    """The file cannot be read as a whole, from `line` on: nothing of it is imported."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line, self.message = line, message


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    # False when the file was refused whole (`FileError`) or the database refused it:
    # then nothing of it was written.
    landed: bool = True
    encoding: str = "UTF-8"

    @property
    def ok(self) -> bool:
        return self.landed and not self.errors

    def summary(self) -> str:
        if self.landed:
            head = f"{self.created} created, {self.updated} updated, {len(self.errors)} failed"
            if self.encoding != "UTF-8":
                head += " " + messages.IMPORT_ENCODING_NOTE.format(encoding=self.encoding)
        else:
            head = messages.IMPORT_NOTHING
        lines = [head] + [f"  line {line}: {message}" for line, message in self.errors]
        return "\n".join(lines)


@dataclass(frozen=True)
class PersonRow:
    line: int
    key: str
    given_id: str | None  # the id as written, when not the key itself
    name: str
    team: str | None
    timezone: str | None
    role: Role | None
    hours: tuple[int, int] | None
    skills: list[tuple[str, int, bool | None]]
    email: str | None = None
    # platform → account ids, as written
    accounts: dict[str, tuple[str, ...]] = field(default_factory=dict)


# ---------------------------------------------------------------- reading files

# What a spreadsheet runs as a formula when a cell starts with it (OWASP).
FORMULA_STARTS = frozenset("=+-@\t\r")
UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


def guard_cell(value: str) -> str:
    """A CSV cell a spreadsheet shows as text: a ' before one that starts like a formula
    (and before one that already starts with ' then a formula, so `unguard_cell` gives
    every value back exactly)."""
    first = value.lstrip("'")[:1]
    return "'" + value if first and first in FORMULA_STARTS else value


def unguard_cell(value: str) -> str:
    """The value `guard_cell` was given."""
    if value.startswith("'"):
        first = value[1:].lstrip("'")[:1]
        if first and first in FORMULA_STARTS:
            return value[1:]
    return value


def spreadsheet_row(values: Iterable[object]) -> list[object]:
    """A row for csv.writer with every text cell guarded (numbers are ours, not formulas)."""
    return [guard_cell(v) if isinstance(v, str) else v for v in values]


@dataclass(frozen=True)
class Encoding:
    codec: str  # Python's name for it
    label: str  # as said to people
    lines: int  # physical lines, for progress


def _encoding(handle: IO[bytes]) -> Encoding:
    """How the file is encoded: UTF-8 (with or without a BOM), UTF-16 with a BOM, or a
    file wholly in one single-byte encoding (Windows-1252, else Latin-1: what Excel
    writes as "CSV" on Windows). A file partly UTF-8 and partly not is refused, at the
    first line that is not."""
    start = handle.read(4)
    handle.seek(0)
    if start.startswith(UTF16_BOMS):
        return _utf16(handle)
    lines = 0
    utf8 = False  # a line with UTF-8's multi-byte characters
    bad: tuple[int, int] | None = None  # the first line that is not UTF-8, and its byte
    cp1252 = True
    for lines, raw in enumerate(handle, start=1):
        if lines == 1 and b"\x00" in raw:
            raise FileError(1, messages.IMPORT_BAD_UTF16)
        if raw.isascii():
            continue
        try:
            raw.decode("utf-8")
            utf8 = True
        except UnicodeDecodeError as error:
            if bad is None:
                bad = (lines, raw[error.start])
            if cp1252:
                try:
                    raw.decode("cp1252")
                except UnicodeDecodeError:
                    cp1252 = False
    if bad is None:
        return Encoding("utf-8-sig", "UTF-8", lines)
    if utf8:
        raise FileError(bad[0], messages.IMPORT_MIXED_ENCODING.format(byte=bad[1]))
    if cp1252:
        return Encoding("cp1252", "Windows-1252 (Latin-1)", lines)
    return Encoding("latin-1", "Latin-1", lines)


def _utf16(handle: IO[bytes]) -> Encoding:
    data = handle.read()  # a rare encoding for these files: read whole to check it
    handle.seek(0)
    try:
        text = data.decode("utf-16")
    except UnicodeDecodeError as error:
        line = data[: error.start].decode("utf-16", "replace").count("\n") + 1
        raise FileError(line, messages.IMPORT_BAD_UTF16) from None
    return Encoding("utf-16", "UTF-16", text.count("\n") + (not text.endswith("\n")))


def file_encoding(path: Path) -> Encoding:
    with path.open("rb") as handle:
        return _encoding(handle)


def decode_upload(raw: bytes) -> tuple[str, Encoding]:
    """An uploaded file's text, by the rules files are read by; FileError if it has none."""
    encoding = _encoding(io.BytesIO(raw))
    return raw.decode(encoding.codec), encoding


def _jsonl_rows(handle: TextIO) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            yield number, RowError(f"not valid JSON ({error.msg})")
            continue
        yield number, row if isinstance(row, dict) else RowError("expected a JSON object")


def csv_error(error: csv.Error) -> str:
    """What the CSV module's error means, said for the person who made the file."""
    reason = str(error)
    if "unexpected end of data" in reason:
        return messages.IMPORT_OPEN_QUOTE
    if "field larger than field limit" in reason:
        return messages.IMPORT_FIELD_TOO_LONG.format(limit=csv.field_size_limit())
    if "expected after" in reason:
        return messages.IMPORT_STRAY_QUOTE
    return messages.IMPORT_CSV_ERROR.format(reason=reason)


def csv_records(handle: Iterable[str]) -> Iterator[tuple[int, list[str]]]:
    """Each CSV record with the line it ends on; FileError, with the line the record
    starts on, where the file stops being CSV (strictly: a quote left open at the end
    of a cut-short file is an error, not the rest of the file in one value). Values
    are separated by commas, or by tabs when the header has tabs and no comma (Excel's
    "Unicode text", which is UTF-16)."""
    lines = iter(handle)
    first = next(lines, "")
    delimiter = "\t" if "\t" in first and "," not in first else ","
    reader = csv.reader(itertools.chain([first], lines), delimiter=delimiter, strict=True)
    ended = 0
    try:
        for record in reader:
            yield reader.line_num, record
            ended = reader.line_num
    except csv.Error as error:
        raise FileError(ended + 1, csv_error(error)) from None


def _csv_rows(handle: TextIO) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    records = csv_records(handle)
    first = next(records, None)
    header = [name.strip().lower() for name in (first[1] if first else [])]
    missing = {"id", "name"} - set(header)
    if missing:
        raise FileError(1, f"the header needs the columns {', '.join(sorted(missing))}")
    width = len(header)
    for line, cells in records:
        if not cells:
            continue  # a blank line
        if len(cells) > width:
            yield line, RowError("more values than columns (is a comma unquoted?)")
            continue
        values = [unguard_cell(value) for value in cells]
        yield line, dict(zip(header, values + [None] * (width - len(values)), strict=True))


def _text(
    row: dict[str, Any],
    name: str,
    *,
    required: bool = False,
    limit: int = 200,
    clean: Callable[[str], str] = clean_text,
) -> str:
    value = row.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise RowError(f"'{name}' is empty")
        return ""
    if not isinstance(value, str):
        raise RowError(f"'{name}' must be text")
    if len(value) > 2 * limit:  # before cleaning it: a long value costs nothing more
        raise RowError(f"'{name}' is longer than {limit} characters")
    value = clean(value).strip()
    if required and not value:
        raise RowError(f"'{name}' is empty")
    if len(value) > limit:
        raise RowError(f"'{name}' is longer than {limit} characters")
    return value


class FirstLines:
    """The line each id was first seen on, for the hundreds of thousands of a large file
    in a few megabytes (a dict of the ids took 13 MB for 100,000): their hashes, sorted,
    beside their lines in two arrays, and the latest few thousand in a dict. Two ids of
    one file sharing a 64-bit hash (about 1 in 10^9 for a million ids) would be taken
    for one."""

    FOLD = 4_096

    def __init__(self) -> None:
        self._hashes = np.empty(0, dtype=np.int64)
        self._lines = np.empty(0, dtype=np.int32)
        self._recent: dict[int, int] = {}

    def first(self, key: str, line: int) -> int:
        """The line `key` was first seen on: `line` when this is the first time."""
        digest = hash(key)
        found = self._recent.get(digest)
        if found is not None:
            return found
        at = int(np.searchsorted(self._hashes, digest))
        if at < len(self._hashes) and self._hashes[at] == digest:
            return int(self._lines[at])
        self._recent[digest] = line
        if len(self._recent) >= self.FOLD:
            self._fold()
        return line

    def _fold(self) -> None:
        """The latest into the sorted arrays: inserted in place of a sort of them all,
        so a fold needs little more memory than the arrays themselves."""
        hashes = np.fromiter(self._recent.keys(), dtype=np.int64, count=len(self._recent))
        lines = np.fromiter(self._recent.values(), dtype=np.int32, count=len(self._recent))
        order = np.argsort(hashes)
        hashes, lines = hashes[order], lines[order]
        at = np.searchsorted(self._hashes, hashes)
        self._hashes = np.insert(self._hashes, at, hashes)
        self._lines = np.insert(self._lines, at, lines)
        self._recent = {}


def _person_row(line: int, row: dict[str, Any], jsonl: bool, seen: FirstLines) -> PersonRow:
    given = _text(row, "id", required=True, limit=120, clean=clean_key)
    key = given.lower()
    # One row a person: a second row for the same id is an error, not a merge.
    first = seen.first(key, line)
    if first != line:
        raise RowError(messages.IMPORT_DUPLICATE.format(id=given, line=first))
    name = _text(row, "name", required=True, clean=clean_name)
    email = _text(row, "email", limit=accounts.MAX_EMAIL_CHARS) or None
    if email is not None:
        try:
            email = accounts.valid_email(email)
        except ValueError as error:
            raise RowError(str(error)) from None
    timezone = _text(row, "timezone", limit=64) or None
    if timezone and not presence.valid_timezone(timezone):
        raise RowError(f"unknown time zone '{timezone}' (use an IANA name like Europe/London)")
    role_text = _text(row, "role", limit=16).lower()
    if role_text and role_text not in {r.value for r in Role}:
        raise RowError(f"unknown role '{role_text}' (agent, lead or admin)")
    hours_text = _text(row, "hours", limit=16)
    hours = presence.parse_hours(hours_text) if hours_text else None
    if hours_text and hours is None:
        raise RowError(f"hours '{hours_text}' should look like 08:00-16:00")
    return PersonRow(
        line,
        key,
        given if given != key else None,
        name,
        _text(row, "team", limit=120, clean=clean_name) or None,
        timezone,
        Role(role_text) if role_text else None,
        hours,
        _jsonl_skills(row.get("skills")) if jsonl else _csv_skills(row),
        email,
        {
            platform: ids
            for platform in ACCOUNT_COLUMNS
            if (ids := _account_ids(row.get(platform), platform))
        },
    )


def _account_ids(value: Any, platform: str) -> tuple[str, ...]:
    """`U0012` or `U0012;W0034` (CSV), a string or a list of them (JSONL)."""
    if value is None:
        return ()
    parts = value if isinstance(value, list) else [value]
    if not all(isinstance(part, str) for part in parts):
        raise RowError(f"'{platform}' must be an account id or a list of them")
    ids = [i.strip() for part in parts for i in clean_text(part).split(";") if i.strip()]
    for account in ids:
        if len(account) > 200 or any(c.isspace() for c in account):
            raise RowError(f"'{platform}': '{account[:40]}' is not an account id")
    return tuple(dict.fromkeys(ids))


def _csv_skills(row: dict[str, Any]) -> list[tuple[str, int, bool | None]]:
    verified_column = row.get("verified")
    verified = {normalise_tag(part) for part in (verified_column or "").split(";") if part.strip()}
    parts = [part for part in (row.get("skills") or "").split(";") if part.strip()]
    if len(parts) > MAX_SKILLS:
        raise RowError(messages.IMPORT_TOO_MANY_SKILLS.format(count=len(parts), limit=MAX_SKILLS))
    skills = []
    for part in parts:
        try:
            spec = parse_skill_spec(part)
        except ValueError as error:
            raise RowError(f"skill '{part.strip()}': {error}") from None
        flag = (spec.tag in verified) if verified_column is not None else None
        skills.append((spec.tag, spec.level, flag))
    return skills


def _jsonl_skills(value: Any) -> list[tuple[str, int, bool | None]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RowError('\'skills\' must be a list of {"tag", "level", "verified"}')
    if len(value) > MAX_SKILLS:
        raise RowError(messages.IMPORT_TOO_MANY_SKILLS.format(count=len(value), limit=MAX_SKILLS))
    skills = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("tag"), str):
            raise RowError('each skill needs a "tag"')
        level = item.get("level", 3)
        if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= 5:
            raise RowError(f"skill '{item['tag']}': level must be a whole number from 1 to 5")
        verified = item.get("verified")
        if verified is not None and not isinstance(verified, bool):
            raise RowError(f"skill '{item['tag']}': verified must be true or false")
        try:
            spec = parse_skill_spec(item["tag"])
        except ValueError as error:
            raise RowError(str(error)) from None
        skills.append((spec.tag, level, verified))
    return skills


# ---------------------------------------------------------------- importing


def _rows(path: Path, encoding: Encoding) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    with path.open(encoding=encoding.codec, newline="") as handle:
        if path.suffix.lower() in {".jsonl", ".ndjson", ".json"}:
            yield from _jsonl_rows(handle)
        else:
            yield from _csv_rows(handle)


def _audit(session: Session, action: str, path: Path, report: ImportReport, **more: Any) -> None:
    record(
        session,
        None,
        action,
        f"file:{path.name}",
        actor_label="import",
        created=report.created,
        updated=report.updated,
        failed=len(report.errors),
        **more,
    )


def _batches(
    rows: Iterator[tuple[int, dict[str, Any] | RowError]],
    parse: Callable[[int, dict[str, Any]], Any],
    report: ImportReport,
    size: int,
    progress: Progress | None,
    total: int,
) -> Iterator[list[Any]]:
    """The rows that pass their checks, `size` at a time; the others in `report`."""
    batch: list[Any] = []
    for line, raw in rows:
        try:
            if isinstance(raw, RowError):
                raise raw
            batch.append(parse(line, raw))
        except RowError as error:
            report.errors.append((line, str(error)))
        if progress is not None:
            progress(line, total)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _import_batches(
    db: Database,
    path: Path,
    parse: Callable[[int, dict[str, Any]], Any],
    write: Callable[[Session, list[Any], ImportReport], None],
    size: int,
    action: str,
    progress: Progress | None,
) -> ImportReport:
    """Rows parsed one by one (a bad one reported with its line), written a batch at a
    time, all in one transaction with the audit row: the file lands whole, or nothing
    of it does (a refused file is audited in a transaction of its own)."""
    report = ImportReport()
    try:
        encoding = file_encoding(path)
        report.encoding = encoding.label
        with db.unit_of_work() as session:
            for batch in _batches(
                _rows(path, encoding), parse, report, size, progress, encoding.lines
            ):
                write(session, batch, report)
                session.flush()
                # Written, and no longer needed in memory: the transaction goes on. The
                # batch's objects are cycles (a person and their skills): collected now,
                # not after several batches more, they keep the import's peak as it was
                # with a transaction per batch (bench/imports.py).
                session.expunge_all()
                gc.collect()
            report.errors.sort()
            _audit(session, action, path, report)
    except FileError as error:
        return _refused(db, path, action, report, error.line, error.message)
    except SQLAlchemyError as error:
        message = messages.IMPORT_DATABASE_ERROR.format(error=type(error).__name__)
        return _refused(db, path, action, report, 0, message)
    except OSError as error:  # not allowed to read it, or it went away
        reason = error.strerror or type(error).__name__
        return _refused(
            db, path, action, report, 0, messages.IMPORT_CANNOT_READ.format(reason=reason)
        )
    return report


def _refused(
    db: Database, path: Path, action: str, report: ImportReport, line: int, message: str
) -> ImportReport:
    """Nothing of the file was written: say why (and what else was wrong so far), and
    audit the attempt."""
    report.landed, report.created, report.updated = False, 0, 0
    report.errors = sorted([*report.errors, (line, message)])
    try:
        with db.unit_of_work() as session:
            _audit(session, action, path, report, imported=False, error=f"line {line}: {message}")
    except SQLAlchemyError as error:  # the database that refused the import refuses this too
        log.warning("could not audit the refused import of %s: %s", path.name, error)
    return report


class _Claims:
    """The e-mails and accounts a batch of rows gives its people, checked against
    everyone else's before anything is written: one e-mail, one person; one account,
    one person. A row that claims what another person holds fails whole, is audited
    and listed for admins (bot.services.accounts)."""

    def __init__(self, session: Session, rows: list[PersonRow], now: datetime) -> None:
        self.session, self.now = session, now
        emails = {accounts.email_key(row.email) for row in rows if row.email}
        self.emails: dict[str, Person] = (
            {
                p.email_key: p
                for p in session.scalars(select(Person).where(Person.email_key.in_(emails)))
                if p.email_key
            }
            if emails
            else {}
        )
        self.identities: dict[tuple[str, str], Identity] = {}
        for platform in ACCOUNT_COLUMNS:
            ids = [i for row in rows for i in row.accounts.get(platform, ())]
            if ids:
                found = accounts.find_identities(session, platform, ids)
                self.identities |= {(platform, key): i for key, i in found.items()}
        # What rows earlier in the batch claimed: key of the person who claimed it.
        self.claimed: dict[tuple[str, str], str] = {}
        self.refused: list[tuple[str, dict[str, Any]]] = []

    def refusal(self, row: PersonRow, person: Person | None) -> str | None:
        if row.email:
            email = accounts.email_key(row.email)
            holder = self.emails.get(email)
            other = self.claimed.get(("email", email))
            if (holder is not None and holder.key != row.key) or other not in (None, row.key):
                holder_key = holder.key if holder is not None else other
                self._refuse(accounts.EMAIL_TAKEN, holder, person, row, email=row.email)
                return messages.EMAIL_TAKEN.format(email=row.email, other=holder_key)
        for platform, ids in row.accounts.items():
            for account in ids:
                identity = self.identities.get((platform, account.lower()))
                other = self.claimed.get((platform, account.lower()))
                taken = identity is not None and identity.person.key != row.key
                if taken or other not in (None, row.key):
                    holder = identity.person if identity is not None else None
                    self._refuse(
                        accounts.LINKED_ELSEWHERE,
                        holder,
                        person,
                        row,
                        platform=platform,
                        external_id=account,
                    )
                    return messages.ACCOUNT_LINKED_ELSEWHERE.format(
                        account=account,
                        platform=accounts.platform_name(platform),
                        other=holder.key if holder is not None else other,
                        person=row.key,
                    )
        if row.email:
            self.claimed[("email", accounts.email_key(row.email))] = row.key
        for platform, ids in row.accounts.items():
            for account in ids:
                self.claimed[(platform, account.lower())] = row.key
        return None

    def _refuse(
        self,
        reason: str,
        holder: Person | None,
        claimant: Person | None,
        row: PersonRow,
        **what: Any,
    ) -> None:
        label = f"line {row.line}: {row.given_id or row.key}"
        what |= {"holder": holder, "claimant": claimant, "claimed_by": label}
        self.refused.append((reason, what))

    def link(self, row: PersonRow, person: Person) -> None:
        for platform, ids in row.accounts.items():
            for account in ids:
                identity = self.identities.get((platform, account.lower()))
                if identity is None:
                    identity = Identity(platform=platform, external_id=account)
                    person.identities.append(identity)
                    self.identities[(platform, account.lower())] = identity
                else:
                    identity.external_id = account  # as the file spells it

    def record_refusals(self) -> None:
        for reason, what in self.refused:
            accounts.conflict(self.session, reason, seen_in="import", now=self.now, **what)


class _PeopleWriter:
    """Writes people a batch at a time: the batch's people, their identities and skills,
    teams and tags read in a few queries and flushed once."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def write(self, session: Session, rows: list[PersonRow], report: ImportReport) -> None:
        keys = {row.key for row in rows}
        persons = {
            person.key: person
            for person in session.scalars(
                select(Person)
                .where(Person.key.in_(keys))
                .options(selectinload(Person.identities), selectinload(Person.skills))
            )
        }
        consoles = {
            identity.external_id: identity
            for identity in session.scalars(
                select(Identity).where(
                    Identity.platform == "console", Identity.external_id.in_(keys)
                )
            )
        }
        claims = _Claims(session, rows, self.now)
        teams = self._teams(session, [row.team for row in rows if row.team])
        tags = _tags_named(session, {name for row in rows for name, _, _ in row.skills})
        for row in rows:
            person = persons.get(row.key)
            too_many = self._too_many_skills(person, row, tags)
            refusal = too_many or claims.refusal(row, person)
            if refusal is not None:
                report.errors.append((row.line, refusal))
                continue
            if person is None:
                person = Person(key=row.key, display_name=row.name, role=Role.AGENT)
                person.origin = "import"
                session.add(person)
                persons[row.key] = person
                report.created += 1
            else:
                report.updated += 1
            person.given_id = row.given_id
            person.display_name = row.name
            person.team = teams[row.team.lower()] if row.team else None
            person.timezone = row.timezone or person.timezone or "UTC"
            if row.role is not None:
                person.role = row.role
            if row.hours is not None:
                person.work_start_min, person.work_end_min = row.hours
            if row.email is not None and person.email != row.email:
                accounts.set_email(person, row.email)
            if not any(i.platform == "console" for i in person.identities):
                console = consoles.get(person.key)
                if console is None:
                    console = Identity(platform="console", external_id=person.key)
                    consoles[person.key] = console
                person.identities.append(console)
            claims.link(row, person)
            self._skills(person, row, tags)
        session.flush()
        claims.record_refusals()

    @staticmethod
    def _too_many_skills(person: Person | None, row: PersonRow, tags: dict[str, Tag]) -> str | None:
        """Why the row would give its person more than MAX_SKILLS skills, if it would."""
        if person is None or len(person.skills) + len(row.skills) <= MAX_SKILLS:
            return None
        held = {_tag_of(skill) for skill in person.skills}
        for name, _, _ in row.skills:
            tag = tags[name]
            held.add(tag.id if tag.id is not None else id(tag))
        if len(held) <= MAX_SKILLS:
            return None
        return messages.IMPORT_WOULD_HOLD.format(id=row.key, count=len(held), limit=MAX_SKILLS)

    def _skills(self, person: Person, row: PersonRow, tags: dict[str, Tag]) -> None:
        held = {_tag_of(skill): skill for skill in person.skills}
        # A tag named twice in one row: the last one stands.
        for tag_name, (level, verified) in {n: (lv, v) for n, lv, v in row.skills}.items():
            tag = tags[tag_name]
            skill = held.get(tag.id if tag.id is not None else id(tag))
            if skill is None:
                skill = Skill(tag=tag, source=SkillSource.IMPORT)
                person.skills.append(skill)
                held[_tag_of(skill)] = skill
            skill.level = level
            if verified is True and skill.verified_at is None:
                skill.verified_at = self.now
            elif verified is False:
                skill.verified_at, skill.verified_by = None, None

    def _teams(self, session: Session, names: list[str]) -> dict[str, Team]:
        """Each name, lower-cased → its team (matched without case), made if new, as first
        written."""
        lower: dict[str, str] = {}
        for name in names:
            lower.setdefault(name.lower(), name)
        found = {
            team.name.lower(): team
            for team in session.scalars(select(Team).where(func.lower(Team.name).in_(lower)))
        }
        for key, name in lower.items():
            if key not in found:
                found[key] = Team(name=name)
                session.add(found[key])
        return found


def _tags_named(session: Session, names: set[str]) -> dict[str, Tag]:
    """Each tag name → the tag it names (directly or by an alias), made if new: what
    `ensure_tag` does for one name, for a whole batch in two queries."""
    found: dict[str, Tag] = {}
    wanted = {name: normalise_tag(name) for name in names}
    looked_up = set(wanted.values())
    by_name = {t.name: t for t in session.scalars(select(Tag).where(Tag.name.in_(looked_up)))}
    aliased = dict(
        session.execute(
            select(TagAlias.alias, Tag)
            .join(Tag)
            .where(TagAlias.alias.in_(looked_up - set(by_name)))
        ).all()
    )
    for name, normal in wanted.items():
        tag = by_name.get(normal) or aliased.get(normal)
        if tag is None:
            tag = by_name[normal] = Tag(name=normal)
            session.add(tag)
        found[name] = tag
    return found


def _tag_of(skill: Skill) -> int:
    """A skill's tag, as a key: its id, or for a tag not yet written, the identity of
    its object (the same object every row of the batch names it by)."""
    if skill.tag_id is not None:
        return skill.tag_id
    return skill.tag.id if skill.tag.id is not None else id(skill.tag)


def import_people(
    db: Database, path: Path, now: datetime, progress: Progress | None = None
) -> ImportReport:
    jsonl = path.suffix.lower() in {".jsonl", ".ndjson", ".json"}
    writer = _PeopleWriter(now)
    seen = FirstLines()
    return _import_batches(
        db,
        path,
        lambda line, raw: _person_row(line, raw, jsonl, seen),
        writer.write,
        BATCH,
        "import.people",
        progress,
    )


@dataclass(frozen=True)
class EntryRow:
    line: int
    title: str
    body: str
    tags: tuple[str, ...]
    authors: tuple[str, ...]


def _names(row: dict[str, Any], field_name: str, what: str) -> tuple[str, ...]:
    value = row.get(field_name) or []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RowError(f"'{field_name}' must be a list of {what}")
    return tuple(dict.fromkeys(item for item in value if item.strip()))


def _entry_row(line: int, row: dict[str, Any]) -> EntryRow:
    title = _text(row, "title", required=True, limit=500)
    body = _text(row, "body", required=True, limit=knowledge.MAX_BODY_CHARS)
    try:
        tags = tuple(valid_tag_name(t) for t in _names(row, "tags", "tag names"))
    except ValueError as error:
        raise RowError(str(error)) from None
    authors = tuple(key.strip().lower() for key in _names(row, "authors", "person ids"))
    return EntryRow(line, title, body, tags, authors)


class _KnowledgeWriter:
    """Writes entries a batch at a time: a few set-based statements, not a few per row."""

    def __init__(self) -> None:
        self.person_ids: dict[str, int | None] = {}

    def write(self, session: Session, rows: list[EntryRow], report: ImportReport) -> None:
        self._resolve_people(session, {key for row in rows for key in row.authors})
        good = []
        for row in rows:
            unknown = [key for key in row.authors if self.person_ids.get(key) is None]
            if unknown:
                report.errors.append(
                    (row.line, f"unknown author '{unknown[0]}' (import people first)")
                )
            else:
                good.append(row)
        # The last of several rows with the same text wins, as with one-by-one updates.
        by_key = {knowledge.content_key(row.title, row.body): row for row in good}
        existing = dict(
            session.execute(
                select(KnowledgeEntry.content_key, KnowledgeEntry.id).where(
                    KnowledgeEntry.content_key.in_(by_key)
                )
            ).all()
        )
        report.updated += sum(
            1 for row in good if knowledge.content_key(row.title, row.body) in existing
        )
        report.created += sum(
            1 for row in good if knowledge.content_key(row.title, row.body) not in existing
        )
        new = [key for key in by_key if key not in existing]
        if new:
            inserted = session.execute(
                insert(KnowledgeEntry).returning(KnowledgeEntry.content_key, KnowledgeEntry.id),
                [
                    {
                        "title": by_key[k].title,
                        "body": by_key[k].body,
                        "content_key": k,
                        "version": 1,
                    }
                    for k in new
                ],
            ).all()
            existing.update(dict(inserted))
        ids = [existing[key] for key in by_key]
        session.execute(delete(KnowledgeTag).where(KnowledgeTag.entry_id.in_(ids)))
        session.execute(delete(KnowledgeAuthor).where(KnowledgeAuthor.entry_id.in_(ids)))
        tags = _tags_named(session, {name for row in by_key.values() for name in row.tags})
        session.flush()  # the new tags' ids
        tag_links = [
            {"entry_id": existing[key], "tag_id": tags[name].id}
            for key, row in by_key.items()
            for name in row.tags
        ]
        author_links = [
            {"entry_id": existing[key], "person_id": self.person_ids[person]}
            for key, row in by_key.items()
            for person in row.authors
        ]
        if tag_links:
            session.execute(insert(KnowledgeTag), _unique(tag_links))
        if author_links:
            session.execute(insert(KnowledgeAuthor), _unique(author_links))
        revision.bump(session, revision.KNOWLEDGE)

    def _resolve_people(self, session: Session, keys: set[str]) -> None:
        missing = [key for key in keys if key not in self.person_ids]
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            found = dict(
                session.execute(
                    select(Person.key, Person.id).where(
                        Person.key.in_(chunk), Person.deleted_at.is_(None)
                    )
                ).all()
            )
            self.person_ids.update({key: found.get(key) for key in chunk})


def _unique(rows: list[dict[str, int]]) -> list[dict[str, int]]:
    return [dict(items) for items in dict.fromkeys(tuple(row.items()) for row in rows)]


def import_knowledge(db: Database, path: Path, progress: Progress | None = None) -> ImportReport:
    writer = _KnowledgeWriter()
    return _import_batches(
        db, path, _entry_row, writer.write, KNOWLEDGE_BATCH, "import.kb", progress
    )


# ---------------------------------------------------------------- exporting


def _hours(person: Person) -> str:
    return presence.format_hours(person).split(" ")[0].replace("–", "-")


def export_people(session: Session, out: TextIO, fmt: str) -> int:
    persons = session.scalars(
        select(Person)
        .where(Person.deleted_at.is_(None))
        .options(
            selectinload(Person.skills).selectinload(Skill.tag),
            selectinload(Person.team),
            selectinload(Person.identities),
        )
        .order_by(Person.key)
    ).all()
    writer = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writerow(PEOPLE_COLUMNS)
    for person in persons:
        skills = sorted(person.skills, key=lambda s: s.tag.name)
        team = person.team.name if person.team else ""
        ids = {
            platform: [
                i.external_id
                for i in sorted(person.identities, key=lambda i: i.id)
                if i.platform == platform
            ]
            for platform in ACCOUNT_COLUMNS
        }
        if writer is not None:
            writer.writerow(
                spreadsheet_row(
                    [
                        person.given_id or person.key,
                        person.display_name,
                        team,
                        person.timezone,
                        ";".join(f"{s.tag.name}:{s.level}" for s in skills),
                        person.role.value,
                        _hours(person),
                        ";".join(s.tag.name for s in skills if s.verified),
                        person.email or "",
                        *(";".join(ids[platform]) for platform in ACCOUNT_COLUMNS),
                    ]
                )
            )
            continue
        row: dict[str, Any] = {
            "id": person.given_id or person.key,
            "name": person.display_name,
            "team": team,
            "timezone": person.timezone,
            "role": person.role.value,
            "hours": _hours(person),
            "skills": [
                {"tag": s.tag.name, "level": s.level, "verified": s.verified} for s in skills
            ],
        }
        if person.email:
            row["email"] = person.email
        row |= {platform: found for platform, found in ids.items() if found}
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(persons)


def export_knowledge(session: Session, out: TextIO) -> int:
    entries = session.scalars(
        select(KnowledgeEntry)
        .options(selectinload(KnowledgeEntry.tags), selectinload(KnowledgeEntry.authors))
        .order_by(KnowledgeEntry.id)
    ).all()
    for entry in entries:
        row = {
            "title": entry.title,
            "body": entry.body,
            "tags": [tag.name for tag in entry.tags],
            "authors": [author.key for author in entry.authors],
        }
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return len(entries)
