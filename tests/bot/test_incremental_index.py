"""The knowledge index changes in place: entries added, edited and deleted by any worker
are applied by the next question in every other one, and compacted beside the index
in use into what a fresh load would build."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from bot.db import open_database, revision
from bot.db.models import IndexChange, KnowledgeEntry
from bot.matching import Matcher, Ranking
from bot.matching.embeddings import load_encoder
from bot.matching.index import KnowledgeIndex, load_knowledge
from bot.services import Services, knowledge
from bot.services.people import by_key
from tests.conftest import NOW
from tests.helpers import Clock

needs_model = pytest.mark.skipif(load_encoder() is None, reason="semantic extra not installed")
QUERIES = (
    "refund for a prepaid top-up",
    "roaming charges abroad",
    "porting a number",
    "kangaroo courier",
    "wombat ledger",
    "sim swap fraud",
    "late payment fee",
)


def _ask(services: Services, matcher: Matcher, query: str) -> Ranking:
    with services.db.reading() as session:
        return matcher.rank(session, query, NOW, article_limit=10)


def _titles(ranking: Ranking) -> list[str]:
    return [article.title for article in ranking.articles]


def _add(services: Services, title: str, body: str, author: str = "maria") -> int:
    with services.db.unit_of_work() as session:
        entry, _ = knowledge.add_entry(session, title, body, [], [by_key(session, author)])
        session.flush()
        return entry.id


def _edit(services: Services, entry_id: int, body: str) -> None:
    with services.db.unit_of_work() as session:
        entry = session.get(KnowledgeEntry, entry_id)
        assert entry is not None
        knowledge.edit(
            session, entry, by_key(session, "priya"), title=entry.title, body=body, tags=None
        )


def _delete(services: Services, entry_id: int) -> None:
    with services.db.unit_of_work() as session:
        entry = session.get(KnowledgeEntry, entry_id)
        assert entry is not None
        knowledge.delete(session, entry, by_key(session, "priya"))


def _fresh(services: Services, matcher: Matcher) -> KnowledgeIndex:
    with services.db.reading() as session:
        rev = revision.current(session)[revision.KNOWLEDGE]
        return load_knowledge(session, rev, matcher.encoder, NOW)


@pytest.fixture(params=["lexical", "vectors"])
def matcher(request: pytest.FixtureRequest, demo: Services) -> Matcher:
    """A worker's matcher, its index loaded: without and with sentence vectors."""
    encoder = load_encoder() if request.param == "vectors" else None
    if request.param == "vectors" and encoder is None:
        pytest.skip("semantic extra not installed")
    found = Matcher(encoder, reading=demo.db.reading)
    _ask(demo, found, "refunds")
    return found


def test_an_added_entry_is_found_by_the_next_question_without_a_reload(
    demo: Services, matcher: Matcher
) -> None:
    loaded = matcher.cache.knowledge
    assert loaded is not None
    assert "Kangaroo courier returns" not in _titles(_ask(demo, matcher, "kangaroo courier"))
    entry_id = _add(demo, "Kangaroo courier returns", "Book the kangaroo courier for a return.")
    ranking = _ask(demo, matcher, "kangaroo courier")
    assert _titles(ranking)[0] == "Kangaroo courier returns"
    assert ranking.experts[0].key == "maria"  # its author's evidence counts at once
    # Applied in place: the same index, one change on it, nothing reloaded.
    assert matcher.cache.knowledge is loaded
    assert loaded.changes == 1 and loaded.authors[entry_id] == (by_key_id(demo, "maria"),)
    if matcher.encoder is not None:
        vector = matcher.encoder.encode(["a return by kangaroo courier"])[0]
        ids, _ = loaded.nearest(vector, 3)
        assert ids[0] == entry_id


def by_key_id(services: Services, key: str) -> int:
    with services.db.reading() as session:
        return by_key(session, key).id


def test_an_edited_entry_is_found_by_its_new_text_only(demo: Services, matcher: Matcher) -> None:
    entry_id = _add(demo, "Wombat ledger", "Check the wombat ledger before a refund.")
    assert _titles(_ask(demo, matcher, "wombat ledger"))[0] == "Wombat ledger"
    _edit(demo, entry_id, "Use the platypus register instead.")
    assert _titles(_ask(demo, matcher, "platypus register"))[0] == "Wombat ledger"
    index = matcher.cache.knowledge
    assert index is not None
    # The old body's words no longer find it; the title's still do, once.
    assert [entry for entry, _ in index.fulltext.search("refund wombat", 50)].count(entry_id) == 1
    assert entry_id not in dict(index.fulltext.search("refund", 100))
    assert index.fulltext.coverage(["platypus", "refund"], [entry_id]) == {entry_id: 1}
    if matcher.encoder is not None:
        # Its vector is the new text's: encoded once, stored for the other workers.
        vector = matcher.encoder.encode(["Wombat ledger\nUse the platypus register instead."])[0]
        ids, sims = index.nearest(vector, 1)
        assert ids[0] == entry_id and sims[0] == pytest.approx(1.0, abs=1e-5)
        live_ids, live_vectors = index.entry_ids, index.vectors
        assert live_ids is not None and live_vectors is not None
        assert list(live_ids).count(entry_id) == 1
        assert len(live_ids) == len(index.fulltext)


def test_a_deleted_entry_is_found_no_more(demo: Services, matcher: Matcher) -> None:
    entry_id = _add(demo, "Emu escalation", "Escalate emu complaints to the emu desk.")
    assert _titles(_ask(demo, matcher, "emu desk"))[0] == "Emu escalation"
    size = len(matcher.cache.knowledge.fulltext)  # type: ignore[union-attr]
    _delete(demo, entry_id)
    assert "Emu escalation" not in _titles(_ask(demo, matcher, "emu desk"))
    index = matcher.cache.knowledge
    assert index is not None
    assert index.fulltext.search("emu", 10) == []
    assert entry_id not in index.authors and len(index.fulltext) == size - 1
    if index.store is not None:
        assert len(index.store) == size - 1
        assert entry_id not in set(index.store.search(np.ones((1, 384), np.float32), 100)[0][0])


def _same_index(one: KnowledgeIndex, other: KnowledgeIndex) -> None:
    """The same answers from both: ids, postings' weights, vectors and dictionaries."""
    assert list(one.fulltext.entry_ids) == list(other.fulltext.entry_ids)
    assert len(one.fulltext) == len(other.fulltext)
    for query in QUERIES:
        assert one.fulltext.search(query, 40) == other.fulltext.search(query, 40)
    assert one.authors == other.authors and one.tags == other.tags
    assert set(one.freshness) == set(other.freshness)
    if one.store is not None or other.store is not None:
        assert one.store is not None and other.store is not None
        ids, matrix = one.store.live()
        other_ids, other_matrix = other.store.live()
        assert np.array_equal(ids, other_ids) and np.array_equal(matrix, other_matrix)


def test_compaction_folds_the_changes_into_what_a_fresh_load_builds(
    demo: Services, matcher: Matcher
) -> None:
    matcher.cache.compact_from = 4
    loaded = matcher.cache.knowledge
    first = _add(demo, "Kangaroo courier returns", "Book the kangaroo courier for a return.")
    second = _add(demo, "Wombat ledger", "Check the wombat ledger before a refund.")
    _edit(demo, second, "Use the platypus register for a late payment fee.")
    with demo.db.reading() as session:
        some = session.scalars(select(KnowledgeEntry.id).order_by(KnowledgeEntry.id)).all()
    _delete(demo, some[0])
    _edit(demo, some[1], "Roaming charges abroad are capped at fifty pounds a month.")
    assert matcher.cache.knowledge is loaded
    _ask(demo, matcher, "refunds")  # applies them all: five changes, more than four
    assert loaded is not None and loaded.changes >= 4
    matcher.cache.wait()  # compacted beside it, which answered meanwhile
    assert matcher.cache.knowledge is loaded
    # A change made while it was compacted: the compacted index catches up with it.
    third = _add(demo, "Emu escalation", "Escalate emu complaints to the emu desk.")
    assert _titles(_ask(demo, matcher, "emu desk"))[0] == "Emu escalation"
    compacted = matcher.cache.knowledge
    assert compacted is not loaded and compacted is not None
    assert compacted.changes == 1
    for entry_id in (first, second, third):
        assert entry_id in compacted.authors
    assert some[0] not in compacted.authors
    # Compacted again, it is the index a worker starting now would load.
    with matcher.cache._lock:
        build = compacted.freeze()
    _same_index(build(), _fresh(demo, matcher))
    # And before, compacted but with the one change applied: the same answers.
    fresh = _fresh(demo, matcher)
    for query in QUERIES:
        assert [e for e, _ in compacted.fulltext.search(query, 10)][:1] == [
            e for e, _ in fresh.fulltext.search(query, 10)
        ][:1]


def test_a_bulk_change_that_names_no_entries_reloads_the_index(
    demo: Services, matcher: Matcher
) -> None:
    loaded = matcher.cache.knowledge
    entry_id = _add(demo, "Kangaroo courier returns", "Book the kangaroo courier for a return.")
    with demo.db.unit_of_work() as session:
        revision.bump(session, revision.KNOWLEDGE)  # as an import's set-based writes do
    ranking = _ask(demo, matcher, "kangaroo courier")  # small: reloaded before it answers
    assert _titles(ranking)[0] == "Kangaroo courier returns"
    assert matcher.cache.knowledge is not loaded
    assert matcher.cache.knowledge.changes == 0  # type: ignore[union-attr]
    assert entry_id in matcher.cache.knowledge.authors  # type: ignore[union-attr]


def test_each_revision_records_the_entries_it_changed(demo: Services) -> None:
    def current() -> int:
        with demo.db.reading() as session:
            return revision.current(session)[revision.KNOWLEDGE]

    start = current()
    added = _add(demo, "Kangaroo courier returns", "Book the kangaroo courier for a return.")
    _edit(demo, added, "Book the kangaroo courier; it collects within two days.")
    # A savepoint rolled back takes its change with it.
    with demo.db.unit_of_work() as session, session.begin_nested() as nested:
        knowledge.add_entry(session, "Never kept", "Rolled back.", [], [])
        session.flush()
        nested.rollback()
    with demo.db.reading() as session:
        assert revision.changes(session, start, current()) == {added}
        assert revision.changes(session, start, start + 1) == {added}
        assert revision.changes(session, current(), current()) == set()
    with demo.db.unit_of_work() as session:
        revision.bump(session, revision.KNOWLEDGE, [added])
    with demo.db.reading() as session:
        assert revision.changes(session, start, current()) == {added}
    with demo.db.unit_of_work() as session:
        revision.bump(session, revision.KNOWLEDGE)
    with demo.db.reading() as session:
        assert revision.changes(session, start, current()) is None  # names none
        assert revision.changes(session, start - revision.KEEP_CHANGES - 1, current()) is None


def test_old_changes_are_pruned(demo: Services) -> None:
    def kept() -> set[int | None]:
        return set(session.scalars(select(IndexChange.entry_id)))

    with demo.db.unit_of_work() as session:
        session.execute(IndexChange.__table__.delete())
        rev = revision.current(session)[revision.KNOWLEDGE]
        # One change as old as may still be kept, and one older.
        session.execute(
            IndexChange.__table__.insert(),
            [
                {"revision": rev - revision.KEEP_CHANGES, "entry_id": -1},
                {
                    "revision": rev - revision.KEEP_CHANGES + revision.PRUNE_EVERY + 1,
                    "entry_id": -2,
                },
            ],
        )
        for _ in range(revision.PRUNE_EVERY):
            revision.bump(session, revision.KNOWLEDGE, [7])
        # Pruned once on the way: the older one went, the other and the new stay.
        assert kept() == {-2, 7}
        assert session.scalar(select(func.count()).select_from(IndexChange)) == (
            1 + revision.PRUNE_EVERY
        )


@pytest.fixture
def other_worker(demo: Services, demo_database_url: str, tmp_path: Path) -> Iterator[Services]:
    """A second worker on the same database: its own engine, services and matcher."""
    database = open_database(demo_database_url, upgrade=False)
    yield Services(database, replace(demo.settings), clock=Clock(NOW))
    database.dispose()


def test_two_workers_apply_each_others_changes(
    demo: Services, other_worker: Services, matcher: Matcher
) -> None:
    theirs = Matcher(matcher.encoder, reading=other_worker.db.reading)
    _ask(other_worker, theirs, "refunds")
    loaded = theirs.cache.knowledge
    # Written by this worker, found by the other's next question, in place.
    added = _add(demo, "Kangaroo courier returns", "Fill in the dispatch form for a return.")
    assert _titles(_ask(other_worker, theirs, "kangaroo courier"))[0] == "Kangaroo courier returns"
    # Edited by the other, found by this one's next question by its new words.
    _edit(other_worker, added, "Book the platypus van instead.")
    assert _titles(_ask(demo, matcher, "platypus van"))[0] == "Kangaroo courier returns"
    assert "Kangaroo courier returns" not in _titles(_ask(other_worker, theirs, "dispatch form"))
    # Deleted by this one: gone from both.
    _delete(demo, added)
    assert _ask(other_worker, theirs, "platypus van").articles == []
    assert _ask(demo, matcher, "platypus van").articles == []
    assert theirs.cache.knowledge is loaded  # never reloaded
    if matcher.encoder is not None:
        # One worker encoded the new texts and stored their vectors: both hold the same.
        mine, other = matcher.cache.knowledge, theirs.cache.knowledge
        assert mine is not None and other is not None
        assert np.array_equal(mine.store.live()[1], other.store.live()[1])  # type: ignore[union-attr]
