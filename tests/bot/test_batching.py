"""Questions in batches: one run of the model and one matrix product for several, the
same vectors, neighbours and rankings as one at a time; recent questions' vectors kept."""

from __future__ import annotations

import random

import numpy as np
import pytest
from sqlalchemy import select

from bot.db.models import KnowledgeEntry
from bot.matching import Matcher
from bot.matching.embeddings import QueryVectors, load_encoder
from bot.matching.vectors import EntryVectors, entry_text
from bot.services import Services
from bot.types import Command
from tests.conftest import NOW

pytestmark = pytest.mark.skipif(load_encoder() is None, reason="semantic extra not installed")

WORDS = (
    "refund prepaid top-up roaming abroad charges sim swap fraud porting number contract "
    "upgrade broadband outage router invoice late fee payment card chargeback direct debit "
    "voucher balance unlock handset repair warranty delivery address email password"
).split()


def _questions(count: int, seed: int = 3) -> list[str]:
    """Questions of one to twenty words, so that a batch pads most of them."""
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(1, 20))) for _ in range(count)]


def test_a_batch_is_encoded_as_each_question_alone() -> None:
    encoder = load_encoder()
    assert encoder is not None
    questions = [*_questions(96), "a", "Ünïcödé wörds — and a long tail " * 20]
    alone = np.stack([encoder.encode([q])[0] for q in questions])
    for size in (4, 16, 32, len(questions)):
        batched = np.concatenate(
            [encoder.encode(questions[i : i + size]) for i in range(0, len(questions), size)]
        )
        assert np.abs(batched - alone).max() <= 1e-5
    assert np.allclose(np.linalg.norm(alone, axis=1), 1.0, atol=1e-5)


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_recent_questions_keep_their_vectors_for_minutes() -> None:
    encoder = load_encoder()
    assert encoder is not None
    clock = _Clock()
    cache = QueryVectors(encoder, size=3, ttl=300.0, clock=clock)
    first = cache.vectors(["refund", "roaming", "refund"])
    assert (cache.hits, cache.misses) == (0, 2)  # asked twice in one batch: encoded once
    assert np.array_equal(first[0], first[2])
    assert np.abs(first[0] - encoder.encode(["refund"])[0]).max() <= 1e-5
    clock.now = 299.0
    assert np.array_equal(cache.vector("refund"), first[0])
    assert (cache.hits, cache.misses) == (1, 2)
    # The least recently used goes first when the cache is full.
    cache.vectors(["sim swap", "porting"])
    assert (cache.hits, cache.misses) == (1, 4)
    cache.vector("refund")
    cache.vector("roaming")
    assert (cache.hits, cache.misses) == (2, 5)  # roaming had gone
    # And none is older than the time to live.
    clock.now = 299.0 + 301.0
    cache.vector("refund")
    assert (cache.hits, cache.misses) == (2, 6)
    assert cache.vectors([]).shape == (0, 384)


def test_a_batch_finds_the_neighbours_each_question_finds_alone() -> None:
    rng = np.random.default_rng(5)
    matrix = rng.standard_normal((20_000, 384)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    ids = np.arange(1, 20_001, dtype=np.int64) * 3
    store = EntryVectors(ids, matrix)
    # Changed in place too: a tombstone, an edited entry and a new one appended, each
    # near a question below.
    edited, new = matrix[7] + 0.2 * matrix[8], matrix[11] + 0.2 * matrix[13]
    edited, new = edited / np.linalg.norm(edited), new / np.linalg.norm(new)
    store.update({ids[5]: edited, 99_999: new}, [ids[9]])
    queries = matrix[[7, 11, 12, 500, 19_999]] + 0.01
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    together = store.search(queries.astype(np.float32), 40)
    for query, (found, sims) in zip(queries, together, strict=True):
        alone, alone_sims = store.search(query[None, :].astype(np.float32), 40)[0]
        live = np.delete(matrix, [5, 9], axis=0)  # the edited entry, and the tombstone
        exact = np.concatenate([live @ query, [edited @ query, new @ query]])
        assert list(found) == list(alone)
        assert np.abs(sims - alone_sims).max() <= 1e-5
        assert np.all(np.diff(sims) <= 0)
        assert ids[9] not in found
        assert sims[-1] >= np.sort(exact)[-40] - 1e-5  # none nearer was missed
    assert list(together[0][0][:2]) == [ids[7], ids[5]]
    assert list(together[1][0][:2]) == [ids[11], 99_999]


def test_prepared_questions_rank_as_unprepared_ones(demo: Services) -> None:
    with demo.db.reading() as session:
        entries = session.execute(select(KnowledgeEntry.title, KnowledgeEntry.body)).all()
    questions = _questions(40) + [entry_text(t, b)[:80] for t, b in entries[:20]]
    alone, batched = (Matcher(load_encoder(), reading=demo.db.reading) for _ in range(2))
    with demo.db.reading() as session:
        one_by_one = [alone.rank(session, q, NOW) for q in questions]
        rankings = []
        for start in range(0, len(questions), 16):
            batch = questions[start : start + 16]
            batched.prepare(session, batch, NOW)
            rankings += [batched.rank(session, q, NOW) for q in batch]
    store = batched.cache.knowledge.store  # type: ignore[union-attr]
    assert store is not None and store._prepared  # the last batch's, used by rank
    for one, other in zip(one_by_one, rankings, strict=True):
        assert [c.key for c in one.experts] == [c.key for c in other.experts]
        assert [c.score for c in one.experts] == pytest.approx(
            [c.score for c in other.experts], abs=1e-4
        )
        assert [a.entry_id for a in one.articles] == [a.entry_id for a in other.articles]
        assert one.confident == other.confident


def test_a_command_process_prepares_the_questions_waiting_together(
    demo: Services, router: object
) -> None:
    from bot.router import Router

    assert isinstance(router, Router)
    commands = [
        Command("test", 1, "whoknows", "refund for a prepaid top-up"),
        Command("test", 1, "whoknows", "kb show 3"),  # another skill: not a question
        Command("test", 1, "who", "roaming   charges abroad"),
        Command("test", 1, "whoknows", "huddle list"),
    ]
    router.prepare(commands, demo)
    queries = demo.matcher.queries
    assert queries is not None and (queries.hits, queries.misses) == (0, 2)
    store = demo.matcher.cache.knowledge.store  # type: ignore[union-attr]
    assert store is not None and len(store._prepared) == 2
    assert queries.vectors(["refund for a prepaid top-up", "roaming charges abroad"]).shape == (
        2,
        384,
    )
    assert queries.hits == 2


def test_the_int8_first_pass_misses_none_of_the_nearest() -> None:
    """Over int8 copies first, then exact: the same k nearest, in the same order, with the
    same cosines as comparing every float32 row, also among near-duplicates."""
    rng = np.random.default_rng(11)
    centres = rng.standard_normal((50, 384)).astype(np.float32)
    matrix = centres[rng.integers(0, 50, 30_000)] + 0.3 * rng.standard_normal((30_000, 384))
    matrix = (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)
    store = EntryVectors(np.arange(30_000, dtype=np.int64), matrix)
    assert store._int8 is not None  # large enough for the first pass
    queries = matrix[rng.integers(0, 30_000, 200)] + 0.2 * rng.standard_normal((200, 384))
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    for query, (ids, sims) in zip(queries, store.search(queries, 40), strict=True):
        exact = matrix @ query
        nearest = np.argsort(-exact, kind="stable")[:40]
        assert list(ids) == list(nearest)
        assert np.abs(sims - exact[nearest]).max() <= 1e-5


def test_prepared_neighbours_follow_a_change_made_before_they_are_used() -> None:
    """An entry added after a batch was prepared is among its questions' neighbours; a
    question whose neighbours lost one is searched again; the others keep theirs."""
    rng = np.random.default_rng(13)
    matrix = rng.standard_normal((20_000, 384)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    store = EntryVectors(np.arange(20_000, dtype=np.int64), matrix)
    queries = matrix[:8] + 0.05 * rng.standard_normal((8, 384)).astype(np.float32)
    queries = (queries / np.linalg.norm(queries, axis=1, keepdims=True)).astype(np.float32)
    store.prepare(queries, 40)
    gone = int(store.nearest(queries[1], 40)[0][3])  # one of the second question's
    near = queries[0] + 0.01 * matrix[100]
    store.update({50_000: (near / np.linalg.norm(near)).astype(np.float32)}, [gone])
    carried = store._prepared
    assert len(carried) == 7 and queries[1].tobytes() not in carried
    for query in queries:
        ids, sims = store.nearest(query, 40)
        fresh_ids, fresh_sims = store.search(query[None, :], 40)[0]
        assert list(ids) == list(fresh_ids)
        assert np.abs(sims - fresh_sims).max() <= 1e-5
        assert gone not in ids
    assert store.nearest(queries[0], 40)[0][0] == 50_000
