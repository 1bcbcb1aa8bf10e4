"""Import and export of people and knowledge: round trips, idempotency, bad rows, progress."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select

from bot.data.transfer import (
    BATCH,
    export_knowledge,
    export_people,
    import_knowledge,
    import_people,
)
from bot.db import Database, open_database
from bot.db.models import AuditEntry, Identity, KnowledgeEntry, Person, Skill, Tag, TagAlias, Team
from bot.db.models import KnowledgeAuthor as Author
from bot.db.models import KnowledgeTag as EntryTag
from bot.services import Services
from tests.conftest import NOW

# The columns before e-mails and accounts: files written then still import.
HEADER = "id,name,team,timezone,skills,role,hours,verified\n"
ACCOUNTS_HEADER = HEADER.replace("\n", ",email,slack,teams\n")
# Ids, e-mails and account ids in the case they were given: exports give them back so.
PEOPLE_CSV = (
    ACCOUNTS_HEADER + "ana,Ana Souza,Billing,America/Sao_Paulo,refunds:5;Prepaid Top-up:3,lead,"
    "08:00-16:00,refunds,Ana.Souza@Example.com,U0012;W0034,\n"
    'ben,"Ben ""Benny"" Okafor",Tech,Africa/Lagos,roaming:2,agent,22:00-06:00,,'
    "ben@example.com,,3F2A9C1E-0B7D-4E44-9A51-6C2D8E0F1A2B\n"
    "Chen.W,Chen Wei,,Asia/Shanghai,,admin,09:00-17:00,,,,\n"
)
# What any database holding PEOPLE_CSV exports: by id, skills normalised and by tag name.
PEOPLE_EXPORT = PEOPLE_CSV.replace("refunds:5;Prepaid Top-up:3", "prepaid top-up:3;refunds:5")
# fmt: off
PEOPLE_JSONL = [
    {"id": "dana", "name": "Dana Levi", "team": "Retention", "timezone": "Asia/Jerusalem",
     "role": "lead", "hours": "07:30-15:30",
     "skills": [{"tag": "roaming", "level": 4, "verified": True},
                {"tag": "contract cancellation", "level": 2, "verified": False}]},
    {"id": "eli", "name": "Eli Moreau", "team": "", "timezone": "Europe/Paris",
     "role": "agent", "hours": "09:00-17:00", "skills": []},
]
# fmt: on
TRICKY = "Ping <!channel> 🚀 then write العربية and עברית\x00 as they are 👩🏽‍💻"
KNOWLEDGE = [
    {"title": "Roaming refunds", "body": "Refund unused days.", "tags": ["roaming"], "authors": []},
    {"title": f"Notes {TRICKY}", "body": f"Body\x00 {TRICKY}", "tags": [], "authors": ["ana"]},
]


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", newline="")
    return path


def jsonl(rows: list[Any]) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def export_to(db: Database, path: Path, kind: str, fmt: str = "csv") -> bytes:
    """Export as the CLI does (UTF-8, no newline translation) and return the file's bytes."""
    with path.open("w", encoding="utf-8", newline="") as out, db.unit_of_work() as session:
        if kind == "people":
            export_people(session, out, fmt)
        else:
            export_knowledge(session, out)
    return path.read_bytes()


def count(db: Database, model: type) -> int:
    with db.unit_of_work() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def keys(db: Database) -> list[str]:
    with db.unit_of_work() as session:
        return list(session.scalars(select(Person.key).order_by(Person.key)))


@pytest.fixture
def other_db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(f"sqlite:///{tmp_path / 'b.db'}")
    yield database
    database.dispose()


def test_people_csv_round_trip_exports_identical_bytes_with_every_field(
    services: Services, other_db: Database, tmp_path: Path
) -> None:
    assert import_people(services.db, write(tmp_path / "in.csv", PEOPLE_CSV), NOW).ok
    first = export_to(services.db, tmp_path / "first.csv", "people")
    assert import_people(other_db, tmp_path / "first.csv", NOW).ok
    second = export_to(other_db, tmp_path / "second.csv", "people")
    assert first == second
    assert first.decode() == PEOPLE_EXPORT


def test_people_jsonl_round_trip_exports_identical_bytes_with_every_field(
    services: Services, other_db: Database, tmp_path: Path
) -> None:
    source = write(tmp_path / "in.jsonl", jsonl(PEOPLE_JSONL))
    assert import_people(services.db, source, NOW).ok
    first = export_to(services.db, tmp_path / "first.jsonl", "people", "jsonl")
    assert import_people(other_db, tmp_path / "first.jsonl", NOW).ok
    assert export_to(other_db, tmp_path / "second.jsonl", "people", "jsonl") == first
    exported = [json.loads(line) for line in first.decode().splitlines()]
    expected = [
        dict(row, skills=sorted(row["skills"], key=lambda s: s["tag"])) for row in PEOPLE_JSONL
    ]
    assert exported == expected


def test_knowledge_round_trip_keeps_unicode_and_mentions_and_drops_nul(
    services: Services, other_db: Database, tmp_path: Path
) -> None:
    source = write(tmp_path / "people.csv", PEOPLE_CSV)
    assert import_people(services.db, source, NOW).ok
    assert import_people(other_db, source, NOW).ok
    kb = write(tmp_path / "kb.jsonl", jsonl(KNOWLEDGE))
    assert import_knowledge(services.db, kb).created == 2
    first = export_to(services.db, tmp_path / "first.jsonl", "kb")
    assert import_knowledge(other_db, tmp_path / "first.jsonl").created == 2
    assert export_to(other_db, tmp_path / "second.jsonl", "kb") == first
    exported = [json.loads(line) for line in first.decode().splitlines()]
    assert exported == json.loads(json.dumps(KNOWLEDGE).replace("\\u0000", ""))
    assert "<!channel> 🚀 then write العربية and עברית as they are 👩🏽‍💻" in exported[1]["body"]


def test_importing_the_same_files_twice_updates_without_duplicates(
    services: Services, tmp_path: Path
) -> None:
    people = write(tmp_path / "people.csv", PEOPLE_CSV)
    kb = write(tmp_path / "kb.jsonl", jsonl(KNOWLEDGE))
    first = (import_people(services.db, people, NOW), import_knowledge(services.db, kb))
    tables = (Person, Skill, Tag, Identity, KnowledgeEntry, EntryTag, Author)
    counts = [count(services.db, table) for table in tables]
    second = (import_people(services.db, people, NOW), import_knowledge(services.db, kb))
    assert [(r.created, r.updated) for r in first + second] == [(3, 0), (2, 0), (0, 3), (0, 2)]
    assert counts == [3, 3, 3, 6, 2, 1, 1]  # identities: 3 console, 3 Slack and Teams
    assert [count(services.db, table) for table in tables] == counts


def test_bad_csv_rows_are_reported_at_their_physical_line_and_good_rows_land(
    services: Services, tmp_path: Path
) -> None:
    text = (
        HEADER
        + "ana,Ana,,Europe/London,refunds:4,agent,,\n"  # line 2
        + "bob,Bob,,Mars/Olympus,,,,\n"  # 3
        + "cat,Cat,,UTC,refunds:9,,,\n"  # 4
        + ",Nobody,,UTC,,,,\n"  # 5
        + "dan,Dan,,UTC,refunds,agent,,,extra\n"  # 6
        + 'eve,"Eve\nMarie",,UTC,,,,\n'  # 7-8: the record ends on line 8
        + "fay,Fay,,UTC,,,,\n"  # 9
    )
    report = import_people(services.db, write(tmp_path / "bad.csv", text), NOW)
    assert report.errors == [
        (3, "unknown time zone 'Mars/Olympus' (use an IANA name like Europe/London)"),
        (4, "skill 'refunds:9': '9' is not a level (use 1 to 5)"),
        (5, "'id' is empty"),
        (6, "more values than columns (is a comma unquoted?)"),
    ]
    assert report.created == 3
    assert keys(services.db) == ["ana", "eve", "fay"]
    assert "line 4: skill 'refunds:9'" in report.summary()
    with services.db.unit_of_work() as session:
        assert (
            session.scalar(select(Person.display_name).where(Person.key == "eve")) == "Eve\nMarie"
        )


def test_bad_jsonl_lines_are_reported_and_good_lines_land(
    services: Services, tmp_path: Path
) -> None:
    lines = [
        json.dumps({"id": "ana", "name": "Ana"}),
        '{"id": "bob", "name": ',
        '["not", "an", "object"]',
        json.dumps({"id": "cat", "name": "Cat", "skills": [{"tag": "refunds", "level": "high"}]}),
        "",
        json.dumps({"id": "dan", "name": "Dan", "skills": [{"tag": "refunds", "level": 2}]}),
    ]
    report = import_people(services.db, write(tmp_path / "bad.jsonl", "\n".join(lines)), NOW)
    assert report.errors == [
        (2, "not valid JSON (Expecting value)"),
        (3, "expected a JSON object"),
        (4, "skill 'refunds': level must be a whole number from 1 to 5"),
    ]
    assert report.created == 2
    assert keys(services.db) == ["ana", "dan"]


def test_a_csv_header_without_id_is_reported_at_line_one_and_imports_nothing(
    services: Services, tmp_path: Path
) -> None:
    source = write(tmp_path / "noid.csv", "name,team\nAna,Billing\nBob,Tech\n")
    report = import_people(services.db, source, NOW)
    assert report.errors == [(1, "the header needs the columns id")]
    assert (report.created, report.updated) == (0, 0)
    assert count(services.db, Person) == 0


def test_an_import_is_audited_once_with_its_counts(services: Services, tmp_path: Path) -> None:
    source = write(tmp_path / "team.csv", PEOPLE_CSV + "zed,Zed,,Nowhere/City,,,,\n")
    import_people(services.db, source, NOW)
    with services.db.unit_of_work() as session:
        rows = session.scalars(select(AuditEntry).where(AuditEntry.action == "import.people"))
        audited = [(row.actor_label, row.target, json.loads(row.detail)) for row in rows]
    assert audited == [("import", "file:team.csv", {"created": 3, "updated": 0, "failed": 1})]


def test_knowledge_by_an_unknown_author_is_reported_for_that_row(
    services: Services, tmp_path: Path
) -> None:
    import_people(services.db, write(tmp_path / "people.csv", PEOPLE_CSV), NOW)
    rows = [*KNOWLEDGE, {"title": "Ghost", "body": "Boo", "tags": [], "authors": ["ana", "ghost"]}]
    report = import_knowledge(services.db, write(tmp_path / "kb.jsonl", jsonl(rows)))
    assert report.errors == [(3, "unknown author 'ghost' (import people first)")]
    assert report.created == 2
    assert count(services.db, KnowledgeEntry) == 2


def test_a_large_import_reports_progress_and_commits_in_batches(
    services: Services, tmp_path: Path
) -> None:
    people = 1_200
    assert 1 < BATCH < people, "the file must span several batches"
    rows = [f"p{n:04d},Person {n},Team {n % 7},UTC,refunds:{n % 5 + 1}\n" for n in range(people)]
    source = write(tmp_path / "big.csv", "id,name,team,timezone,skills\n" + "".join(rows))
    total_lines = people + 1
    # A plain engine of its own sees only what the import has committed so far.
    watcher = create_engine(services.db.url)
    checkpoints = {2: 0, BATCH + 2: BATCH, total_lines: people // BATCH * BATCH}
    calls: list[tuple[int, int]] = []
    committed: dict[int, int] = {}

    def progress(done: int, total: int) -> None:
        calls.append((done, total))
        if done in checkpoints:
            with watcher.connect() as connection:
                committed[done] = connection.scalar(select(func.count(Person.id))) or 0

    try:
        report = import_people(services.db, source, NOW, progress)
    finally:
        watcher.dispose()
    done = [d for d, _ in calls]
    assert done == sorted(set(done)) and done[-1] == total_lines
    assert {total for _, total in calls} == {total_lines}
    assert committed == checkpoints
    assert report.created == people and count(services.db, Person) == people


# ---------------------------------------------------------------- bad tag input


def test_a_skill_tag_too_long_for_the_tag_table_is_a_row_error(
    services: Services, tmp_path: Path
) -> None:
    text = HEADER + "ana,Ana,,,refunds,,,\n" + f"bob,Bob,,,{'x' * 130}:3,,,\n" + "cat,Cat,,,,,,\n"
    report = import_people(services.db, write(tmp_path / "long.csv", text), NOW)
    assert [line for line, _ in report.errors] == [3]
    assert keys(services.db) == ["ana", "cat"]


def test_nul_in_tag_names_is_dropped_like_in_all_other_text(
    services: Services, tmp_path: Path
) -> None:
    people = write(tmp_path / "p.csv", HEADER + "ana,Ana,,,ref\x00unds:2,,,\n")
    assert import_people(services.db, people, NOW).ok
    kb = [{"title": "T", "body": "B", "tags": ["roa\x00ming"], "authors": ["ana"]}]
    assert import_knowledge(services.db, write(tmp_path / "kb.jsonl", jsonl(kb))).ok
    with services.db.unit_of_work() as session:
        assert sorted(session.scalars(select(Tag.name))) == ["refunds", "roaming"]


def test_knowledge_tags_that_are_not_a_list_are_a_row_error(
    services: Services, tmp_path: Path
) -> None:
    rows = [{"title": "Bad", "body": "B", "tags": 5}, {"title": "Good", "body": "G"}]
    report = import_knowledge(services.db, write(tmp_path / "kb.jsonl", jsonl(rows)))
    assert report.errors == [(1, "'tags' must be a list of tag names")]
    assert count(services.db, KnowledgeEntry) == 1


def test_a_tag_named_twice_in_one_row_keeps_the_last_level(
    services: Services, tmp_path: Path
) -> None:
    text = HEADER + 'ana,Ana,,,"refunds:2;billing:3;refunds:4",,,\n'
    report = import_people(services.db, write(tmp_path / "twice.csv", text), NOW)
    assert report.ok and report.created == 1
    with services.db.reading() as session:
        levels = session.execute(select(Tag.name, Skill.level).join(Skill.tag)).all()
    assert sorted(levels) == [("billing", 3), ("refunds", 4)]


def test_rows_of_one_batch_share_people_teams_and_tags_as_if_written_one_by_one(
    services: Services, tmp_path: Path
) -> None:
    """Within a batch nothing is written until its end: a person named twice, a team
    written in two casings, a tag by its alias and a new tag named by two people all
    resolve as they would row by row."""
    with services.db.unit_of_work() as session:
        tag = Tag(name="refunds")
        session.add(tag)
        session.flush()
        session.add(TagAlias(alias="money back", tag_id=tag.id))
    text = (
        HEADER
        + "ana,Ana,Billing,,money back:2;esim:1,,,\n"
        + "ben,Ben,BILLING,,esim:4,,,\n"
        + "ana,Ana Souza,billing,,refunds:5;roaming:3,,,refunds\n"
    )
    report = import_people(services.db, write(tmp_path / "batch.csv", text), NOW)
    assert report.ok and (report.created, report.updated) == (2, 1)
    with services.db.reading() as session:
        held = session.execute(
            select(Person.key, Tag.name, Skill.level, Skill.verified_at.is_not(None))
            .join(Skill.person)
            .join(Skill.tag)
            .order_by(Person.key, Tag.name)
        ).all()
        teams = session.execute(
            select(Team.name, func.count(Person.id)).join(Person.team).group_by(Team.name)
        ).all()
        consoles = session.execute(
            select(Identity.external_id, Person.key)
            .join(Identity.person)
            .where(Identity.platform == "console")
        ).all()
        assert session.scalar(select(Person.display_name).where(Person.key == "ana")) == "Ana Souza"
    assert held == [
        ("ana", "esim", 1, False),
        ("ana", "refunds", 5, True),  # "money back" is refunds: one skill, the last level
        ("ana", "roaming", 3, False),
        ("ben", "esim", 4, False),
    ]
    assert teams == [("Billing", 2)]  # one team, as first written
    assert sorted(consoles) == [("ana", "ana"), ("ben", "ben")]
    assert count(services.db, Tag) == 3
