"""The hot SELECTs give what `Session.execute` gives, on SQLite's driver and elsewhere."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import bindparam, column, exc, select, table

import bot.matching as matching
from bot.db import revision
from bot.db.hot import HotQuery
from bot.db.models import Identity, KnowledgeEntry, Person, Presence, Skill, Status
from bot.router import _LIVE_PERSON
from bot.services import Services
from bot.services.people import _HANDLES, handles
from tests.conftest import NOW
from tests.helpers import query_plan


def _plain(rows: object) -> list[tuple[object, ...]]:
    return [tuple(row) for row in rows]  # type: ignore[attr-defined]


def test_every_hot_query_reads_what_sqlalchemy_reads(demo: Services) -> None:
    with demo.db.unit_of_work() as session:
        people = session.scalars(select(Person.id).order_by(Person.id)).all()
        # Typed columns a driver gives as text on SQLite: a status and a time.
        session.merge(
            Presence(person_id=people[0], status=Status.BUSY, until=NOW + timedelta(hours=1))
        )
        session.merge(Presence(person_id=people[1], status=Status.ON_CALL, until=None))
    with demo.db.reading() as session:
        entries = session.scalars(select(KnowledgeEntry.id)).all()
        platform = session.scalar(select(Identity.platform))
        verified = session.scalars(select(Skill.person_id).where(Skill.verified_by_id.is_not(None)))
        cases = [
            (matching._SHORTLIST, {"ids": list(people), "since": NOW - matching.RECENT}),
            (matching._VERIFIERS, {"ids": list(verified)}),
            (matching._ENTRIES, {"ids": list(entries)}),
            (_HANDLES, {"platform": platform, "ids": list(people)}),
            (_LIVE_PERSON, {"person": people[2]}),
            (revision._CURRENT, {}),
        ]
        # On PostgreSQL both sides are Session.execute: that run checks the fallback.
        for query, params in cases:
            expected = _plain(session.execute(query.statement, params))
            assert expected, query.statement  # the demo org has rows for each
            assert _plain(query.rows(session, params)) == expected
        shortlist = {row[0]: row for row in matching._SHORTLIST.rows(session, cases[0][1])}
        assert shortlist[people[0]][8:10] == (Status.BUSY, NOW + timedelta(hours=1))
        assert shortlist[people[1]][8:10] == (Status.ON_CALL, None)
        assert _LIVE_PERSON.scalar(session, {"person": -1}) is None
        # An empty list is left to SQLAlchemy, which renders it as an empty set.
        assert _plain(matching._ENTRIES.rows(session, {"ids": []})) == []


def test_a_unit_of_work_reads_what_it_has_not_flushed_yet(demo: Services) -> None:
    """As `Session.execute` does: pending changes are flushed before the SELECT."""
    with demo.db.unit_of_work() as session:
        person = session.scalars(select(Person.id).order_by(Person.id)).first()
        assert person is not None
        session.add(Identity(person_id=person, platform="pending", external_id="U-NEW"))
        assert handles(session, "pending", [person]) == {person: "U-NEW"}


def test_the_drivers_errors_come_as_sqlalchemys(services: Services) -> None:
    """So that retries and "database unavailable" treat them as any statement's."""
    missing = HotQuery(
        select(column("id"))
        .select_from(table("no_such_table"))
        .where(column("id").in_(bindparam("ids", expanding=True))),
        listed="ids",
    )
    with services.db.reading() as session, pytest.raises(exc.DBAPIError) as raised:
        missing.rows(session, {"ids": [1, 2]})
    if services.db.backend == "sqlite":
        assert isinstance(raised.value, exc.OperationalError)


@pytest.mark.parametrize(
    ("query", "params", "access"),
    [
        (matching._SHORTLIST, {"ids": [1, 2], "since": NOW}, "person USING INTEGER PRIMARY KEY"),
        (
            matching._VERIFIERS,
            {"ids": [1, 2]},
            "skill USING INDEX sqlite_autoindex_skill_1 (person_id=?)",
        ),
        (matching._ENTRIES, {"ids": [1, 2]}, "knowledge_entry USING INTEGER PRIMARY KEY"),
        # Not (platform=?), which reads every identity the platform has.
        (
            _HANDLES,
            {"platform": "slack", "ids": [1, 2]},
            "identity USING INDEX identity_person_idx (person_id=? AND platform=?)",
        ),
        (_LIVE_PERSON, {"person": 1}, "person USING INTEGER PRIMARY KEY"),
    ],
    ids=["shortlist", "verifiers", "entries", "handles", "asker"],
)
def test_every_hot_query_goes_straight_to_its_rows(
    services: Services, query: HotQuery, params: dict[str, object], access: str
) -> None:
    """Each question runs these: none may read a table or an index range that grows
    with the org, whatever SQLite guesses without statistics."""
    if services.db.backend != "sqlite":
        pytest.skip("the query plan checked is SQLite's")
    steps = query_plan(services, query.statement, params)
    assert f"SEARCH {access}" in steps[0], steps
    assert not any(step.startswith("SCAN") for step in steps), steps
