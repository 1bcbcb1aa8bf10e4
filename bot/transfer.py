"""Import and export of people, knowledge and tag descriptions (CSV and JSONL), idempotent
and row-safe.

Every row is checked before anything is written: one that fails is reported with
its line number and the others land. Rows are written in batches, a few
statements for each, so a large file shows progress and a crash loses at most
one batch.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from sqlalchemy import delete, func, insert, select
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
from bot.services import accounts, knowledge, learning, presence
from bot.services.audit import record
from bot.services.expertise import normalise_tag, parse_skill_spec, valid_tag_name
from bot.text import clean_text

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


class RowError(ValueError):
    pass


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        lines = [f"{self.created} created, {self.updated} updated, {len(self.errors)} failed"]
        lines += [f"  line {line}: {message}" for line, message in self.errors]
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


# ---------------------------------------------------------------- reading rows


def _count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(1 for _ in handle)


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


def _csv_rows(
    handle: TextIO, required: frozenset[str] = frozenset({"id", "name"})
) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    reader = csv.DictReader(handle)
    header = [name.strip().lower() for name in reader.fieldnames or []]
    missing = required - set(header)
    if missing:
        yield 1, RowError(f"the header needs the columns {', '.join(sorted(missing))}")
        return
    reader.fieldnames = header
    for row in reader:
        if None in row:
            yield reader.line_num, RowError("more values than columns (is a comma unquoted?)")
            continue
        yield reader.line_num, row


def _text(row: dict[str, Any], name: str, *, required: bool = False, limit: int = 200) -> str:
    value = row.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise RowError(f"'{name}' is empty")
        return ""
    if not isinstance(value, str):
        raise RowError(f"'{name}' must be text")
    value = clean_text(value).strip()
    if len(value) > limit:
        raise RowError(f"'{name}' is longer than {limit} characters")
    return value


def _person_row(line: int, row: dict[str, Any], jsonl: bool) -> PersonRow:
    given = _text(row, "id", required=True, limit=120)
    key = given.lower()
    name = _text(row, "name", required=True)
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
        _text(row, "team", limit=120) or None,
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
    skills = []
    for part in (row.get("skills") or "").split(";"):
        if not part.strip():
            continue
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
    path: Path, required: frozenset[str] = frozenset({"id", "name"})
) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        if path.suffix.lower() in {".jsonl", ".ndjson", ".json"}:
            yield from _jsonl_rows(handle)
        else:
            yield from _csv_rows(handle, required)


def _audit(session: Session, action: str, path: Path, report: ImportReport) -> None:
    record(
        session,
        None,
        action,
        f"file:{path.name}",
        actor_label="import",
        created=report.created,
        updated=report.updated,
        failed=len(report.errors),
    )


def _import_batches(
    db: Database,
    path: Path,
    parse: Callable[[int, dict[str, Any]], Any],
    write: Callable[[Session, list[Any], ImportReport], None],
    size: int,
    action: str,
    progress: Progress | None,
    required: frozenset[str] = frozenset({"id", "name"}),
) -> ImportReport:
    """Rows parsed one by one (a bad one reported with its line), written a batch to a
    transaction; a crash loses at most the batch under way."""
    report = ImportReport()
    total = _count_lines(path)
    rows = _rows(path, required)
    while True:
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
                break
        if batch:
            with db.unit_of_work() as session:
                write(session, batch, report)
        if len(batch) < size:
            break
    report.errors.sort()
    with db.unit_of_work() as session:
        _audit(session, action, path, report)
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
            refusal = claims.refusal(row, person)
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
    return _import_batches(
        db,
        path,
        lambda line, raw: _person_row(line, raw, jsonl),
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
    body = _text(row, "body", required=True, limit=100_000)
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
    db: Database, path: Path, now: datetime, progress: Progress | None = None
) -> ImportReport:
    """Tags with a lead's one-line description and example questions (columns `name`,
    `description`, `examples` split by ";"): they teach each tag's model what its
    questions look like. A tag not yet known is made."""

    def write(session: Session, rows: list[TagRow], report: ImportReport) -> None:
        tags = _tags_named(session, {row.name for row in rows})
        known = {tag.id for tag in tags.values() if tag.id is not None}
        session.flush()
        for row in rows:
            tag = tags[row.name]
            try:
                with session.begin_nested():
                    learning.describe_tag(
                        session,
                        None,
                        tag,
                        row.description,
                        row.examples,
                        now,
                        actor_label="import",
                    )
            except learning.LearningError as error:
                report.errors.append((row.line, str(error)))
                continue
            if tag.id in known:
                report.updated += 1
            else:
                report.created += 1
                known.add(tag.id)

    return _import_batches(
        db, path, _tag_row, write, BATCH, "import.tags", progress, frozenset({"name"})
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
