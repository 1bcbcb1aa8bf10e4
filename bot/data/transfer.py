"""Import and export of people, knowledge and tag descriptions (CSV and JSONL), idempotent
and atomic.

A file lands whole or not at all: its rows are written a batch at a time (a few
statements each, so a large file shows progress) in one transaction, committed
with the import's audit row at the end, so a crash or a kill part-way leaves
nothing. A row that fails its checks (a bad time zone, an id the file already
named, an e-mail someone else has, a change its importer may not make) is
reported with its line number and left out; the others land. A file that cannot
be read (not in an encoding it could be, a quote left open, a value over the CSV
module's limit, no id or name column) imports nothing, says at which line, and
is audited too.

People are imported by someone: the operator at the command line (who may do
what an admin may), or a lead or an admin on the dashboard. Each row is checked
against the person it would change, by the rules every other path asks
(`bot.services.permissions`), in the transaction that writes it, on the id as it
will be written: ids are cleaned once, when the row is read, and one with a
control character is refused rather than cleaned. Each changed role and each
verification given or taken away is an audit row of its own, naming who did it.

Exports write what imports read, so import → export → import is lossless. A CSV
cell that a spreadsheet would run as a formula (starting with =, +, -, @, a tab
or a carriage return: OWASP's CSV-injection rule) is written with a ' before it,
and the importer takes that ' off again.

Importing computes no sentence vectors (the model would triple its memory): new
tags get theirs where the matching index is built (`bot.matching.index`).
"""

from __future__ import annotations

import codecs
import csv
import dataclasses
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
from bot.services import accounts, audit, knowledge, learning, permissions, presence
from bot.services.audit import Denied, record, record_many
from bot.services.expertise import MAX_SKILLS, normalise_tag, parse_skill_spec, valid_tag_name
from bot.services.people import clean_id
from bot.services.permissions import Operator
from bot.text import clean_name, clean_text

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
# Who imports at the command line (the audit log's name for them).
OPERATOR = Operator("import")
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
    written: bool = True
    encoding: str = "UTF-8"
    # Whether to keep `landed` and `ids`: a result on every row, for a form's few
    # thousand rows (a file of 100,000 held 20 MB more for them).
    per_line: bool = False
    # Line → (the id as written, created or updated), for a result on every row.
    landed: dict[int, tuple[str, str]] = field(default_factory=dict)
    # Line → the id as written, for each row that was read (failed ones too).
    ids: dict[int, str] = field(default_factory=dict)
    # The audit rows of refused rows: kept again when the file as a whole is refused.
    refusals: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.written and not self.errors

    def read(self, line: int, given: str) -> None:
        if self.per_line:
            self.ids[line] = given

    def wrote(self, line: int, given: str, outcome: str) -> None:
        if self.per_line:
            self.landed[line] = (given, outcome)

    def summary(self) -> str:
        if self.written:
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


def _csv_rows(
    handle: TextIO, required: frozenset[str] = frozenset({"id", "name"})
) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    records = csv_records(handle)
    first = next(records, None)
    header = [name.strip().lower() for name in (first[1] if first else [])]
    missing = required - set(header)
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
    try:
        value = clean(value).strip()
    except ValueError as error:
        raise RowError(str(error)) from None
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


def _id(row: dict[str, Any], name: str, *, required: bool = False, limit: int = 120) -> str:
    """An id (a person's, a team's, an e-mail), cleaned once here (`people.clean_id`): a
    control character refuses the row instead of vanishing after the checks."""
    return _text(
        row, name, required=required, limit=limit, clean=lambda value: clean_id(value, name)
    )


def _person_row(line: int, row: dict[str, Any], jsonl: bool, seen: FirstLines) -> PersonRow:
    given = _id(row, "id", required=True, limit=120)
    key = given.lower()
    # One row a person: a second row for the same id is an error, not a merge.
    first = seen.first(key, line)
    if first != line:
        raise RowError(messages.IMPORT_DUPLICATE.format(id=given, line=first))
    name = _text(row, "name", required=True, clean=clean_name)
    email = _id(row, "email", limit=accounts.MAX_EMAIL_CHARS) or None
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
        _id(row, "team", limit=120) or None,
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
    try:
        ids = [clean_id(i, platform) for part in parts for i in part.split(";") if i.strip()]
    except ValueError as error:
        raise RowError(str(error)) from None
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


def _rows(
    path: Path, encoding: Encoding, required: frozenset[str] = frozenset({"id", "name"})
) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    with path.open(encoding=encoding.codec, newline="") as handle:
        if path.suffix.lower() in {".jsonl", ".ndjson", ".json"}:
            yield from _jsonl_rows(handle)
        else:
            yield from _csv_rows(handle, required)


def _audit(
    session: Session,
    action: str,
    path: Path,
    report: ImportReport,
    by: Operator | int,
    **more: Any,
) -> None:
    actor = session.get(Person, by) if isinstance(by, int) else None
    record(
        session,
        actor.id if actor is not None else None,
        action,
        f"file:{path.name}",
        actor_label=actor.key if actor is not None else getattr(by, "label", "import"),
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
    by: Operator | int = OPERATOR,
    per_line: bool = False,
    required: frozenset[str] = frozenset({"id", "name"}),
) -> ImportReport:
    """Rows parsed one by one (a bad one reported with its line), written a batch at a
    time, all in one transaction with the audit row: the file lands whole, or nothing
    of it does (a refused file is audited in a transaction of its own)."""
    report = ImportReport(per_line=per_line)
    try:
        encoding = file_encoding(path)
        report.encoding = encoding.label
        with db.unit_of_work() as session:
            for batch in _batches(
                _rows(path, encoding, required), parse, report, size, progress, encoding.lines
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
            _audit(session, action, path, report, by)
    except FileError as error:
        return _refused(db, path, action, report, by, error.line, error.message)
    except SQLAlchemyError as error:
        message = messages.IMPORT_DATABASE_ERROR.format(error=type(error).__name__)
        return _refused(db, path, action, report, by, 0, message)
    except OSError as error:  # not allowed to read it, or it went away
        reason = error.strerror or type(error).__name__
        message = messages.IMPORT_CANNOT_READ.format(reason=reason)
        return _refused(db, path, action, report, by, 0, message)
    return report


def _refused(
    db: Database,
    path: Path,
    action: str,
    report: ImportReport,
    by: Operator | int,
    line: int,
    message: str,
) -> ImportReport:
    """Nothing of the file was written: say why (and what else was wrong so far), and
    audit the attempt."""
    report.written, report.created, report.updated = False, 0, 0
    report.landed = {}
    report.errors = sorted([*report.errors, (line, message)])
    where = f"line {line}: {message}"
    try:
        with db.unit_of_work() as session:
            record_many(session, report.refusals)  # refused rows stay refused attempts
            _audit(session, action, path, report, by, imported=False, error=where)
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
    teams and tags read in a few queries and flushed once. Each row is first checked
    against the person it changes, as `by` (`_Rules`)."""

    def __init__(self, now: datetime, by: Operator | int) -> None:
        self.now, self.by = now, by

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
        tags = _tags_named(session, {name for row in rows for name, _, _ in row.skills})
        rules = _Rules.of(session, self.by, rows)
        audits: list[dict[str, Any]] = []
        accepted: list[PersonRow] = []
        for row in rows:
            report.read(row.line, row.given_id or row.key)
            row = rules.with_default_team(row)
            try:
                rules.check(row, persons.get(row.key), tags)
            except Denied as refused:
                report.errors.append((row.line, refused.message))
                audits.append(rules.refused(refused, row))
                report.refusals.append(audits[-1])
                continue
            accepted.append(row)
        consoles = {
            identity.external_id: identity
            for identity in session.scalars(
                select(Identity).where(
                    Identity.platform == "console",
                    Identity.external_id.in_([row.key for row in accepted]),
                )
            )
        }
        claims = _Claims(session, accepted, self.now)
        teams = self._teams(session, [row.team for row in accepted if row.team])
        for row in accepted:
            person = persons.get(row.key)
            too_many = self._too_many_skills(person, row, tags)
            refusal = too_many or claims.refusal(row, person)
            if refusal is not None:
                report.errors.append((row.line, refusal))
                continue
            before = person.role if person is not None else None
            if person is None:
                person = Person(key=row.key, display_name=row.name, role=Role.AGENT)
                person.origin = "import"
                session.add(person)
                persons[row.key] = person
                report.created += 1
                report.wrote(row.line, row.given_id or row.key, "created")
            else:
                report.updated += 1
                report.wrote(row.line, row.given_id or row.key, "updated")
            person.given_id = row.given_id
            person.display_name = row.name
            person.team = teams[row.team.lower()] if row.team else None
            person.timezone = row.timezone or person.timezone or "UTC"
            if row.role is not None:
                person.role = row.role
                if row.role != (before or Role.AGENT):
                    audits.append(
                        rules.done(
                            permissions.CHANGE_ROLE,
                            row,
                            before=(before or Role.AGENT).value,
                            after=row.role.value,
                        )
                    )
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
            verified, unverified = self._skills(person, row, tags, rules.verifier)
            if verified:
                audits.append(rules.done(permissions.VERIFY, row, tags=verified))
            if unverified:
                audits.append(rules.done(permissions.UNVERIFY, row, tags=unverified))
        session.flush()
        claims.record_refusals()
        record_many(session, audits)

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

    def _skills(
        self, person: Person, row: PersonRow, tags: dict[str, Tag], verifier: Person | None
    ) -> tuple[list[str], list[str]]:
        """Write the row's skills; the tags it verified and those it took verification from."""
        held = {_tag_of(skill): skill for skill in person.skills}
        verified: list[str] = []
        unverified: list[str] = []
        # A tag named twice in one row: the last one stands.
        for tag_name, (level, flag) in {n: (lv, v) for n, lv, v in row.skills}.items():
            tag = tags[tag_name]
            skill = held.get(tag.id if tag.id is not None else id(tag))
            if skill is None:
                skill = Skill(tag=tag, source=SkillSource.IMPORT)
                person.skills.append(skill)
                held[_tag_of(skill)] = skill
            if _raises_own(verifier, person, skill, level) and flag is None:
                flag = False  # raising your own verified level needs a lead's word again
            skill.level = level
            if flag is True and skill.verified_at is None:
                skill.verified_at, skill.verified_by = self.now, verifier
                verified.append(tag.name)
            elif flag is False and skill.verified_at is not None:
                skill.verified_at, skill.verified_by = None, None
                unverified.append(tag.name)
        return verified, unverified

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


def _raises_own(verifier: Person | None, person: Person, skill: Skill, level: int) -> bool:
    return (
        verifier is not None
        and verifier is person
        and skill.verified_at is not None
        and level > (skill.level or 0)
    )


@dataclass
class _Rules:
    """Who imports this batch, and what each row asks of `bot.services.permissions`."""

    by: permissions.Actor | None  # None: a dashboard user since removed
    teams: dict[str, Team]  # the existing teams the batch names, lower-cased

    @classmethod
    def of(cls, session: Session, by: Operator | int, rows: list[PersonRow]) -> _Rules:
        actor: permissions.Actor | None = by if isinstance(by, Operator) else None
        if isinstance(by, int):
            person = session.get(Person, by)
            actor = person if person is not None and person.deleted_at is None else None
        names = {row.team.lower() for row in rows if row.team}
        if isinstance(actor, Person) and actor.team is not None:
            names.add(actor.team.name.lower())
        teams = (
            {
                t.name.lower(): t
                for t in session.scalars(select(Team).where(func.lower(Team.name).in_(names)))
            }
            if names
            else {}
        )
        return cls(actor, teams)

    @property
    def verifier(self) -> Person | None:
        """Whom a verification given here is credited to (the operator is nobody)."""
        return self.by if isinstance(self.by, Person) else None

    @property
    def label(self) -> str:
        if self.by is None:
            return "someone signed out"
        return self.by.label if isinstance(self.by, Operator) else self.by.key

    @property
    def actor_id(self) -> int | None:
        return self.by.id if isinstance(self.by, Person) else None

    def with_default_team(self, row: PersonRow) -> PersonRow:
        """A lead's row without a team is for the lead's team (an admin's or the operator's
        leaves them without one, as the file says)."""
        actor = self.by
        if row.team or not isinstance(actor, Person) or actor.role != Role.LEAD:
            return row
        return dataclasses.replace(row, team=actor.team.name) if actor.team else row

    def _denied(self, action: str, row: PersonRow, message: str) -> Denied:
        actor = self.by
        if actor is None:
            return Denied(message, actor_id=None, action=action, target=f"person:{row.key}")
        return permissions.refusal(actor, action, f"person:{row.key}", message)

    def check(self, row: PersonRow, person: Person | None, tags: dict[str, Tag]) -> None:
        """Raise Denied for the first thing in the row this importer may not do."""
        actor = self.by
        if actor is None or (isinstance(actor, Person) and actor.role == Role.AGENT):
            raise self._denied(permissions.IMPORT_PERSON, row, messages.IMPORT_LEADS_ONLY)
        if isinstance(actor, Person) and actor.role == Role.LEAD and actor.team is None:
            raise self._denied(permissions.IMPORT_PERSON, row, messages.IMPORT_LEAD_NO_TEAM)
        team = self.teams.get(row.team.lower()) if row.team else None
        team_id = team.id if team is not None else None
        moved = person is None or person.team_id != team_id or (row.team and team is None)
        if moved and not permissions.may_place(actor, team_id):
            own = actor.team.name if isinstance(actor, Person) and actor.team else "?"
            raise self._denied(
                permissions.IMPORT_PERSON,
                row,
                messages.IMPORT_NOT_YOUR_TEAM.format(team=row.team or "no team", own=own),
            )
        if row.role is not None:
            before = person.role if person is not None else None
            if not permissions.may_change_role(actor, before, row.role):
                raise self._denied(permissions.CHANGE_ROLE, row, messages.ROLE_NOT_ALLOWED)
        if person is not None and not permissions.may_edit_profile(actor, person):
            own = actor.team.name if isinstance(actor, Person) and actor.team else "?"
            raise self._denied(
                permissions.IMPORT_PERSON,
                row,
                messages.IMPORT_NOT_IN_TEAM.format(person=row.given_id or row.key, team=own),
            )
        if person is not None and _relinks(row, person) and not permissions.may_link(actor):
            raise self._denied(permissions.LINK_ACCOUNT, row, messages.IMPORT_LINK_NOT_ALLOWED)
        changed = _verification_changes(row, person, tags, self.verifier)
        if changed and not permissions.may_verify(actor, person):
            own = isinstance(actor, Person) and person is not None and actor.id == person.id
            raise self._denied(
                permissions.VERIFY,
                row,
                messages.IMPORT_CANNOT_VERIFY_SELF.format(tags=", ".join(changed))
                if own
                else messages.IMPORT_CANNOT_VERIFY.format(tags=", ".join(changed)),
            )

    def refused(self, denial: Denied, row: PersonRow) -> dict[str, Any]:
        return audit.entry(
            denial.actor_id,
            denial.action,
            denial.target,
            actor_label=self.label,
            allowed=False,
            via="import",
            line=row.line,
            reason=denial.message,
        )

    def done(self, action: str, row: PersonRow, **detail: Any) -> dict[str, Any]:
        return audit.entry(
            self.actor_id,
            action,
            f"person:{row.key}",
            actor_label=self.label,
            via="import",
            line=row.line,
            **detail,
        )


def _relinks(row: PersonRow, person: Person) -> bool:
    """The row gives an existing person another e-mail or another platform account."""
    if row.email is not None and accounts.email_key(row.email) != (person.email_key or ""):
        return True
    held = {(i.platform, i.external_id.lower()) for i in person.identities}
    return any(
        (platform, account.lower()) not in held
        for platform, ids in row.accounts.items()
        for account in ids
    )


def _verification_changes(
    row: PersonRow, person: Person | None, tags: dict[str, Tag], verifier: Person | None
) -> list[str]:
    """The tags whose verification the row would give or take away."""
    held = {s.tag_id: s for s in person.skills} if person is not None else {}
    changed = []
    for tag_name, (level, flag) in {n: (lv, v) for n, lv, v in row.skills}.items():
        tag = tags[tag_name]
        skill = held.get(tag.id) if tag.id is not None else None
        is_verified = skill is not None and skill.verified_at is not None
        if flag and skill is not None and person and _raises_own(verifier, person, skill, level):
            is_verified = False  # a raised level of your own is yours to declare only
        if (flag is True and not is_verified) or (flag is False and is_verified):
            changed.append(tag.name)
    return changed


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
    db: Database,
    path: Path,
    now: datetime,
    progress: Progress | None = None,
    *,
    by: Operator | int = OPERATOR,
    per_line: bool = False,
) -> ImportReport:
    """`by`: the operator at the command line, or the id of the person importing (a lead
    or an admin on the dashboard), whose rights each row is checked against. `per_line`:
    the report says what became of every row (`landed`, `ids`), not only of failed ones."""
    jsonl = path.suffix.lower() in {".jsonl", ".ndjson", ".json"}
    writer = _PeopleWriter(now, by)
    seen = FirstLines()
    return _import_batches(
        db,
        path,
        lambda line, raw: _person_row(line, raw, jsonl, seen),
        writer.write,
        BATCH,
        "import.people",
        progress,
        by,
        per_line,
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
    try:
        authors = tuple(
            clean_id(key, "authors").lower() for key in _names(row, "authors", "person ids")
        )
    except ValueError as error:
        raise RowError(str(error)) from None
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


# ---------------------------------------------------------------- tags


@dataclass(frozen=True)
class TagRow:
    line: int
    name: str
    description: str | None  # None: leave as it is
    examples: tuple[str, ...] | None  # None: leave as they are


def _tag_row(line: int, row: dict[str, Any]) -> TagRow:
    try:
        name = valid_tag_name(_text(row, "name", required=True))
    except ValueError as error:
        raise RowError(str(error)) from None
    description = _text(row, "description", limit=learning.MAX_DESCRIPTION_CHARS) or None
    value = row.get("examples")
    examples: tuple[str, ...] | None = None
    if isinstance(value, list):
        if not all(isinstance(item, str) for item in value):
            raise RowError("'examples' must be a list of questions")
        examples = tuple(value)
    elif isinstance(value, str) and value.strip():
        examples = tuple(part for part in value.split(";") if part.strip())
    elif value is not None and not isinstance(value, str):
        raise RowError("'examples' must be questions separated by ';'")
    return TagRow(line, name, description, examples)


def import_tags(
    db: Database,
    path: Path,
    now: datetime,
    progress: Progress | None = None,
    *,
    by: Operator = OPERATOR,
) -> ImportReport:
    """Tags with a lead's one-line description and example questions (columns `name`,
    `description`, `examples` split by ";"): they teach each tag's model what its
    questions look like. A tag not yet known is made. `by`: the operator at the
    command line, asked as any describer is (`permissions.require_tag_describer`)."""

    def write(session: Session, rows: list[TagRow], report: ImportReport) -> None:
        tags = _tags_named(session, {row.name for row in rows})
        known = {tag.id for tag in tags.values() if tag.id is not None}
        session.flush()
        for row in rows:
            tag = tags[row.name]
            try:
                with session.begin_nested():
                    learning.describe_tag(session, by, tag, row.description, row.examples, now)
            except learning.LearningError as error:
                report.errors.append((row.line, str(error)))
                continue
            if tag.id in known:
                report.updated += 1
            else:
                report.created += 1
                known.add(tag.id)

    return _import_batches(
        db, path, _tag_row, write, BATCH, "import.tags", progress, by, required=frozenset({"name"})
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
