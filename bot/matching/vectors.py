"""Sentence vectors for tags and knowledge: computed once, stored, loaded as one matrix.

`EntryVectors` holds the knowledge entries' vectors for nearest-neighbour search:
one matrix as loaded, rows appended beside it and tombstones over it as entries
change, compacted into one matrix again on the side (see `IndexCache`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import exists, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot.db.engine import READING, insert_for
from bot.db.models import Embedding, KnowledgeEntry
from bot.matching import knn
from bot.matching.knn import Int8Rows

if TYPE_CHECKING:
    import numpy as np

    from bot.db import Database
    from bot.matching.embeddings import Encoder

log = logging.getLogger(__name__)

TAG = "tag"
KNOWLEDGE = "knowledge"
EXAMPLE = "example"  # a labelled example's question (bot.services.learning)
# Entries without vectors that a reload encodes on the spot (a new answer or two);
# more than this is a bulk job for `whoknows index`, not for someone's question.
INLINE_LIMIT = 64
BATCH = 256
TAG_BLOCK = 256  # tags compared with every other tag at a time
# The k best of a row are found among the values at or above the k-th best of every
# SAMPLE_STRIDE-th value (a floor no higher than the row's own k-th best): a partial
# sort of a sixteenth of the row and one comparison of all of it, instead of a
# partial sort of all of it (argpartition over 100,000 cosines cost 0.4-1 ms).
SAMPLE_STRIDE = 16
SAMPLE_FROM = 4_096  # rows shorter than this are sorted whole
GATHER_ROWS = 8_192  # rows copied at a time when a matrix is compacted
INT8_FROM = 4_096  # entries from which a search starts with a first pass in int8


def entry_text(title: str, body: str) -> str:
    return title if body.strip() == title.strip() else f"{title}\n{body}"


def _model() -> str:
    from bot.matching.embeddings import MODEL_ID

    return MODEL_ID


def _store(session: Session, kind: str, ids: list[int], matrix: np.ndarray) -> bool:
    """Keep vectors for every later load, by every worker.

    A question ranks in a read-only snapshot (`Database.reading`), whose writes
    are rolled back and, on SQLite, would hold the write lock to its end: there
    the vectors go in a short transaction of their own. Another worker may store
    the same ones meanwhile; theirs stand.
    """
    if not ids:
        return True
    rows = [
        {"kind": kind, "item_id": item, "model": _model(), "vector": row.tobytes()}
        for item, row in zip(ids, matrix, strict=True)
    ]
    # Skips the vectors already stored.
    statement = insert_for(session.get_bind().dialect.name)(Embedding).on_conflict_do_nothing()
    if not session.connection().get_execution_options().get(READING, False):
        session.execute(statement, rows)
        return True
    try:
        with Session(session.get_bind()) as writer, writer.begin():
            writer.execute(statement, rows)
    except SQLAlchemyError as error:  # used from memory now; the next load tries again
        log.warning("could not store %d %s vectors: %s", len(rows), kind, type(error).__name__)
        return False
    return True


def _load(session: Session, kind: str) -> tuple[list[int], np.ndarray]:
    """Stored vectors, streamed into one preallocated matrix (no copy of every blob)."""
    import numpy as np
    from sqlalchemy import func

    from bot.matching.embeddings import DIMENSIONS

    where = (Embedding.kind == kind, Embedding.model == _model())
    count = session.scalar(select(func.count()).select_from(Embedding).where(*where)) or 0
    matrix = np.empty((count, DIMENSIONS), dtype=np.float32)
    ids: list[int] = []
    result = session.execute(
        select(Embedding.item_id, Embedding.vector).where(*where).order_by(Embedding.item_id),
        execution_options={"yield_per": 2000},
    )
    for item, blob in result:
        if len(ids) == count:
            break  # rows written since the count are picked up by the next load
        matrix[len(ids)] = np.frombuffer(blob, dtype=np.float32)
        ids.append(item)
    result.close()
    return ids, matrix[: len(ids)]


def tag_vectors(
    session: Session, encoder: Encoder, names: dict[int, str], limit: int | None = INLINE_LIMIT
) -> tuple[list[int], np.ndarray, int]:
    """The vectors of the tags named, in one matrix, and how many tags have none yet. Up
    to `limit` missing ones are encoded on the spot (a tag or two made since); more is a
    bulk job, not for someone's question (10,000 new tags took 19 s): the index encodes
    them beside (`encode_tags_beside`), and until then those tags are matched by name."""
    import numpy as np

    ids, matrix = _load(session, TAG)
    known = set(ids)
    missing = [tag_id for tag_id in names if tag_id not in known]
    if missing and (limit is None or len(missing) <= limit):
        fresh = encoder.encode([names[tag_id] for tag_id in missing])
        _store(session, TAG, missing, fresh)
        ids, matrix = ids + missing, np.vstack([matrix, fresh])
        missing = []
    keep = [i for i, tag_id in enumerate(ids) if tag_id in names]
    return [ids[i] for i in keep], matrix[keep], len(missing)


def _tags_without_vectors(session: Session, limit: int | None) -> list[tuple[int, str]]:
    from bot.db.models import Tag

    stored = select(Embedding.item_id).where(Embedding.kind == TAG, Embedding.model == _model())
    query = select(Tag.id, Tag.name).where(Tag.id.not_in(stored)).order_by(Tag.id)
    return [tuple(row) for row in session.execute(query.limit(limit)).all()]  # type: ignore[misc]


def encode_tags_beside(
    reading: Callable[[], AbstractContextManager[Session]], encoder: Encoder
) -> int:
    """Store the vectors of every tag without one, BATCH at a time, each in a short
    transaction of its own: what the index asks for on a thread of its own when an
    import made more tags than a question should encode. Returns how many."""
    done = 0
    while True:
        with reading() as session:
            batch = _tags_without_vectors(session, BATCH)
        if not batch:
            return done
        fresh = encoder.encode([name for _, name in batch])  # no transaction open meanwhile
        with reading() as session:
            if not _store(session, TAG, [tag_id for tag_id, _ in batch], fresh):
                return done  # the next index load tries again
        done += len(batch)


def index_tags(db: Database, encoder: Encoder) -> None:
    """Compute and store the vectors every tag lacks (`whoknows index`)."""
    from bot.db.models import Tag

    with db.unit_of_work() as session:
        names = dict(session.execute(select(Tag.id, Tag.name)).all())
        tag_vectors(session, encoder, names, limit=None)


def _entries_without_vectors(session: Session, limit: int | None) -> list[tuple[int, str, str]]:
    stored = select(Embedding.item_id).where(
        Embedding.kind == KNOWLEDGE, Embedding.model == _model()
    )
    query = (
        select(KnowledgeEntry.id, KnowledgeEntry.title, KnowledgeEntry.body)
        .where(KnowledgeEntry.id.not_in(stored))
        .order_by(KnowledgeEntry.id)
    )
    return [tuple(row) for row in session.execute(query.limit(limit)).all()]  # type: ignore[misc]


def knowledge_vectors(session: Session, encoder: Encoder) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    pending = _entries_without_vectors(session, INLINE_LIMIT + 1)
    ids, matrix = _load(session, KNOWLEDGE)  # before storing: a snapshot may not see those
    if 0 < len(pending) <= INLINE_LIMIT:
        fresh_ids = [entry_id for entry_id, _, _ in pending]
        fresh = encoder.encode([entry_text(t, b) for _, t, b in pending])
        _store(session, KNOWLEDGE, fresh_ids, fresh)
        ids, matrix = ids + fresh_ids, np.vstack([matrix, fresh])
    elif pending:
        log.warning("knowledge entries without vectors: run `whoknows index` to add them")
    return np.asarray(ids, dtype=np.int64), matrix


def index_knowledge(
    db: Database, encoder: Encoder, progress: Callable[[int, int], None] | None = None
) -> int:
    """Compute and store the vectors every knowledge entry lacks; returns how many."""
    with db.unit_of_work() as session:
        total = len(_entries_without_vectors(session, None))
    done = 0
    while True:
        with db.unit_of_work() as session:
            batch = _entries_without_vectors(session, BATCH)
            if not batch:
                return done
            ids = [entry_id for entry_id, _, _ in batch]
            _store(session, KNOWLEDGE, ids, encoder.encode([entry_text(t, b) for _, t, b in batch]))
        done += len(batch)
        if progress is not None:
            progress(done, total)


def example_vectors(
    session: Session, encoder: Encoder, texts: dict[int, str]
) -> tuple[list[int], np.ndarray]:
    """The vectors of these labelled examples (id → question), encoding the missing ones."""
    import numpy as np

    from bot.matching.embeddings import DIMENSIONS

    ids, matrix = _load(session, EXAMPLE)
    known = set(ids)
    missing = [example_id for example_id in texts if example_id not in known]
    for start in range(0, len(missing), BATCH * 8):
        chunk = missing[start : start + BATCH * 8]
        fresh = encoder.encode([texts[example_id] for example_id in chunk])
        _store(session, EXAMPLE, chunk, fresh)
        ids, matrix = ids + chunk, np.vstack([matrix, fresh])
    keep = [i for i, example_id in enumerate(ids) if example_id in texts]
    return [ids[i] for i in keep], matrix[keep] if keep else np.zeros((0, DIMENSIONS), np.float32)


def forget_examples(session: Session, ids: list[int]) -> None:
    """Vectors of examples deleted or rewritten (a lead's new examples for a tag)."""
    from sqlalchemy import delete

    if ids:
        session.execute(
            delete(Embedding).where(Embedding.kind == EXAMPLE, Embedding.item_id.in_(ids))
        )


def index_all(
    db: Database, encoder: Encoder, progress: Callable[[int, int], None] | None = None
) -> int:
    """Vectors for every tag, labelled example and knowledge entry that lacks one."""
    from bot.db.models import LabelledExample

    index_tags(db, encoder)
    with db.unit_of_work() as session:
        texts = dict(session.execute(select(LabelledExample.id, LabelledExample.text)).all())
        example_vectors(session, encoder, texts)
    return index_knowledge(db, encoder, progress)


def distinct_tags(
    matrix: np.ndarray, neighbour_share: float, hub_neighbours: int
) -> tuple[np.ndarray, np.ndarray]:
    """Tag vectors made to tell near-duplicate tags apart, and how central each tag is.

    Each row loses `neighbour_share` of its nearest other tag (weighted by how
    close that tag is), so "calendar" and "calendar update" no longer share
    most of their vector. The second result is each tag's mean cosine to its
    `hub_neighbours` nearest tags, centred on the mean over all tags: a tag
    close to many others (a "hub") attracts questions meant for its
    neighbours, and the ranking discounts it by this much (CSLS-style local
    scaling, computed from the tag vocabulary alone).
    """
    import numpy as np

    count = len(matrix)
    if count < 2:
        return matrix, np.zeros(count, dtype=np.float32)
    k = min(hub_neighbours, count - 1)
    nearest = np.empty(count, dtype=np.int64)
    closeness = np.empty(count, dtype=np.float32)
    hubness = np.empty(count, dtype=np.float32)
    adjusted = np.empty_like(matrix, dtype=np.float32)
    # Row blocks: thousands of tags never need a whole tag-by-tag matrix in memory.
    for start in range(0, count, TAG_BLOCK):
        cosines = matrix[start : start + TAG_BLOCK] @ matrix.T
        rows = np.arange(len(cosines))
        cosines[rows, rows + start] = -np.inf
        nearest[start : start + len(cosines)] = cosines.argmax(axis=1)
        closeness[start : start + len(cosines)] = cosines.max(axis=1)
    adjusted[:] = matrix - neighbour_share * closeness[:, None] * matrix[nearest]
    adjusted /= np.clip(np.linalg.norm(adjusted, axis=1, keepdims=True), 1e-12, None)
    for start in range(0, count, TAG_BLOCK):
        cosines = adjusted[start : start + TAG_BLOCK] @ adjusted.T
        rows = np.arange(len(cosines))
        cosines[rows, rows + start] = -np.inf
        top = np.partition(cosines, count - k, axis=1)[:, count - k :]
        hubness[start : start + len(cosines)] = top.mean(axis=1)
    return adjusted, hubness - hubness.mean()


_Prepared = tuple[int, int, tuple["np.ndarray", "np.ndarray"], "np.ndarray"]


@dataclass(frozen=True)
class _Appended:
    """Rows appended since the matrix was built: replaced whole, never changed."""

    ids: np.ndarray  # entry id of each row
    matrix: np.ndarray
    alive: np.ndarray  # False: the entry changed again or went


def _top(values: np.ndarray, k: int, positions: np.ndarray | None = None) -> np.ndarray:
    """Indexes of the k largest values, largest first; ties to the lower position
    (`positions`: each value's, if not its index)."""
    import numpy as np

    if len(values) > SAMPLE_FROM and k * SAMPLE_STRIDE < len(values):
        sample = values[::SAMPLE_STRIDE]
        floor = -np.partition(-sample, k - 1)[k - 1]
        candidates = np.flatnonzero(values >= floor)
    else:
        candidates = np.arange(len(values))
    where = candidates if positions is None else positions[candidates]
    order = np.lexsort((where, -values[candidates]))[:k]
    found = candidates[order]
    return found[np.isfinite(values[found])]


class EntryVectors:
    """Knowledge entry vectors, searched by cosine, changed in place.

    The matrix as loaded stays as it is: an entry that changes or goes is a tombstone
    over its row, and its new vector a row appended in a small matrix beside it. A
    search is one matrix product for a whole batch of questions over both. Readers
    on other threads see each change whole or not at all (the appended rows are
    replaced, never modified; a tombstone is one boolean).
    """

    def __init__(self, ids: np.ndarray, matrix: np.ndarray) -> None:
        import numpy as np

        from bot.matching.embeddings import DIMENSIONS

        self._ids = np.asarray(ids, dtype=np.int64)
        self._matrix = matrix
        self._sorter = np.argsort(self._ids, kind="stable")
        self._alive: np.ndarray | None = None  # made at the first tombstone
        self._dead = 0
        self._dead_rows = np.zeros(0, dtype=np.int64)
        self._appended = _Appended(
            np.zeros(0, np.int64), np.zeros((0, DIMENSIONS), np.float32), np.zeros(0, bool)
        )
        self.version = 0  # moves on with every change
        # A prepared question's vector → (version, k, its neighbours, the vector).
        self._prepared: dict[bytes, _Prepared] = {}
        self._prepared_before = self._prepared
        # A first pass over int8 copies of the rows (bot/matching/knn.py), for a matrix
        # large enough to be worth it and when onnxruntime is there (it comes with the
        # model); else every cosine is computed in float32.
        self._int8: Int8Rows | None = None
        if len(self._ids) >= INT8_FROM:
            with contextlib.suppress(ImportError):
                self._int8 = Int8Rows(self._matrix)

    def __len__(self) -> int:
        return len(self._ids) - self._dead + int(self._appended.alive.sum())

    @property
    def changes(self) -> int:
        """Tombstones and appended rows: what a compaction would fold in."""
        return self._dead + len(self._appended.ids)

    @property
    def nbytes(self) -> int:
        return self._matrix.nbytes + self._appended.matrix.nbytes

    def _base_row(self, entry_id: int) -> int | None:
        import numpy as np

        if not len(self._ids):
            return None
        at = int(np.searchsorted(self._ids, entry_id, sorter=self._sorter))
        if at == len(self._ids):
            return None
        row = int(self._sorter[at])
        return row if self._ids[row] == entry_id else None

    def update(self, vectors: dict[int, np.ndarray], removed: Sequence[int]) -> None:
        """Entries with a new vector (added or changed), and entries gone or without one."""
        import numpy as np

        if not vectors and not removed:
            return
        appended = self._appended
        alive = appended.alive.copy()
        for entry_id in [*vectors, *removed]:
            row = self._base_row(entry_id)
            if row is not None and (self._alive is None or self._alive[row]):
                if self._alive is None:
                    self._alive = np.ones(len(self._ids), dtype=bool)
                self._alive[row] = False
                self._dead += 1
            alive[appended.ids == entry_id] = False
        if self._alive is not None:
            self._dead_rows = np.flatnonzero(~self._alive)
        fresh_ids = np.fromiter(vectors, np.int64, len(vectors))
        fresh = np.zeros((0, self._matrix.shape[1]), np.float32)
        if vectors:
            fresh = np.stack(list(vectors.values())).astype(np.float32)
            appended = _Appended(
                np.concatenate([appended.ids, fresh_ids]),
                np.concatenate([appended.matrix, fresh]),
                np.concatenate([alive, np.ones(len(vectors), dtype=bool)]),
            )
        else:
            appended = _Appended(appended.ids, appended.matrix, alive)
        self._appended = appended
        version = self.version
        self.version += 1
        changed = np.fromiter([*vectors, *removed], np.int64)
        self._prepared, self._prepared_before = (
            self._carried(batch, version, changed, fresh_ids, fresh)
            for batch in (self._prepared, self._prepared_before)
        )

    def _carried(
        self,
        batch: dict[bytes, _Prepared],
        version: int,
        changed: np.ndarray,
        fresh_ids: np.ndarray,
        fresh: np.ndarray,
    ) -> dict[bytes, _Prepared]:
        """Prepared neighbours still right after a change: those that hold none of the
        entries it changed, with the new rows merged in (ranked behind an equal one
        already there, as a search ranks rows appended later)."""
        import numpy as np

        kept: dict[bytes, _Prepared] = {}
        for key, (stamp, k, (ids, sims), query) in batch.items():
            if stamp != version or np.isin(ids, changed).any():
                continue
            if len(fresh_ids):
                ids = np.concatenate([ids, fresh_ids])
                sims = np.concatenate([sims, fresh @ query])
                order = np.argsort(-sims, kind="stable")[:k]
                ids, sims = ids[order], sims[order]
            kept[key] = (self.version, k, (ids, sims), query)
        return kept

    def live(self) -> tuple[np.ndarray, np.ndarray]:
        """The entry ids and vectors of every live entry (the matrix itself while
        nothing changed; else a copy, in id order)."""
        if not self.changes:
            return self._ids, self._matrix
        return self._gathered(self.snapshot())

    def snapshot(self) -> tuple[np.ndarray | None, _Appended]:
        """What `compacted` folds in, taken while no update runs (the cache's lock)."""
        return (None if self._alive is None else self._alive.copy()), self._appended

    def blocks(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Every live vector without a copy: (ids, matrix, its live rows) of the loaded
        matrix and of the appended rows. Taken while no update runs (the cache's lock)."""
        import numpy as np

        alive, appended = self.snapshot()
        base = np.arange(len(self._ids)) if alive is None else np.flatnonzero(alive)
        return [
            (self._ids, self._matrix, base),
            (appended.ids, appended.matrix, np.flatnonzero(appended.alive)),
        ]

    def _gathered(
        self, snapshot: tuple[np.ndarray | None, _Appended]
    ) -> tuple[np.ndarray, np.ndarray]:
        import numpy as np

        alive, appended = snapshot
        count = len(self._ids)
        base_rows = np.arange(count) if alive is None else np.flatnonzero(alive)
        extra_rows = np.flatnonzero(appended.alive)
        ids = np.concatenate([self._ids[base_rows], appended.ids[extra_rows]])
        order = np.argsort(ids, kind="stable")
        matrix = np.empty((len(ids), self._matrix.shape[1]), dtype=np.float32)
        cut = len(base_rows)
        # Block by block: gathering every row at once made a second full copy first.
        for start in range(0, len(ids), GATHER_ROWS):
            rows = order[start : start + GATHER_ROWS]
            out = matrix[start : start + len(rows)]
            based = rows < cut
            if based.all():
                np.take(self._matrix, base_rows[rows], axis=0, out=out, mode="clip")
            else:
                out[based] = self._matrix[base_rows[rows[based]]]
                out[~based] = appended.matrix[extra_rows[rows[~based] - cut]]
        return ids[order], matrix

    def compacted(
        self, snapshot: tuple[np.ndarray | None, _Appended] | None = None
    ) -> EntryVectors:
        """A new store holding the live entries in one matrix, in id order, as a load
        makes it. The copy is made beside this store, which goes on answering."""
        return EntryVectors(*self._gathered(snapshot or self.snapshot()))

    def prepare(self, queries: np.ndarray, k: int) -> None:
        """Find the neighbours of a batch of questions at once, for `nearest` to hand
        out one by one (until the next change; the last two batches are kept, as the
        next may be prepared while this one is answered)."""
        version = self.version  # before: a change meanwhile makes these stale
        found = self.search(queries, k)
        batch = {
            query.tobytes(): (version, k, result, query)
            for query, result in zip(queries, found, strict=True)
        }
        self._prepared, self._prepared_before = batch, self._prepared

    def nearest(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest entries' ids and cosines, nearest first."""
        key = query.tobytes()
        prepared = self._prepared.get(key) or self._prepared_before.get(key)
        if prepared is not None and prepared[0] == self.version and prepared[1] == k:
            return prepared[2]
        return self.search(query[None, :], k)[0]

    def search(self, queries: np.ndarray, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """The k nearest entries of each question, nearest first, ties to the entry
        loaded or appended first: one matrix product for them all."""
        import numpy as np

        appended, dead, int8 = self._appended, self._dead_rows, self._int8
        count = len(self._ids)
        extra = None
        if len(appended.ids):
            extra = queries @ appended.matrix.T
            extra[:, ~appended.alive] = -np.inf
        if int8 is not None:
            first, bounds = int8.first_pass(queries)
            if len(dead):
                first[:, dead] = -np.inf
            results = []
            for row, query in enumerate(queries):
                rows = knn.candidates(first[row], float(bounds[row]), k)
                exact = self._matrix[rows] @ query
                positions, values = rows, exact
                if extra is not None:
                    positions = np.concatenate([rows, count + np.arange(len(appended.ids))])
                    values = np.concatenate([exact, extra[row]])
                top = _top(values, min(k, len(values)), positions)
                results.append(self._named(positions[top], values[top], count))
            return results
        if len(queries) == 1:
            # The same product as one question always had: a batch of one is not
            # worth a matrix-matrix call, and its cosines stay bit for bit the same.
            sims = (self._matrix @ queries[0])[None, :]
        else:
            sims = queries @ self._matrix.T
        if len(dead):
            sims[:, dead] = -np.inf
        results = []
        for row in range(len(queries)):
            values = sims[row] if extra is None else np.concatenate([sims[row], extra[row]])
            top = _top(values, min(k, len(values))) if len(values) else np.zeros(0, np.int64)
            results.append(self._named(top, values[top], count))
        return results

    def _named(
        self, positions: np.ndarray, values: np.ndarray, count: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """Entry ids for row positions (the loaded rows, then the appended ones)."""
        import numpy as np

        ids = np.empty(len(positions), dtype=np.int64)
        based = positions < count
        ids[based] = self._ids[positions[based]]
        ids[~based] = self._appended.ids[positions[~based] - count]
        return ids, values


def stored_knowledge_vectors(session: Session, entry_ids: Sequence[int]) -> dict[int, np.ndarray]:
    """The stored vectors of these entries (those that have one)."""
    import numpy as np

    if not entry_ids:
        return {}
    rows = session.execute(
        select(Embedding.item_id, Embedding.vector).where(
            Embedding.kind == KNOWLEDGE,
            Embedding.model == _model(),
            Embedding.item_id.in_(list(entry_ids)),
        )
    )
    return {item: np.frombuffer(blob, dtype=np.float32) for item, blob in rows}


def encode_entries(
    session: Session, encoder: Encoder, rows: Sequence[tuple[int, int, str, str]]
) -> dict[int, np.ndarray]:
    """Vectors for entries that have none, as (id, version, title, body): encoded in one
    run and stored for every other worker (as `_store` does), each only while the
    entry is still at the version it was read at: an edit meanwhile dropped the
    vector its old text had, and must not get it back."""
    if not rows:
        return {}
    fresh = encoder.encode([entry_text(title, body) for _, _, title, body in rows])
    insert = insert_for(session.get_bind().dialect.name)
    statements = []
    for (entry_id, version, _, _), vector in zip(rows, fresh, strict=True):
        current = exists().where(KnowledgeEntry.id == entry_id, KnowledgeEntry.version == version)
        values = select(
            *(_literal(value) for value in (KNOWLEDGE, entry_id, _model(), vector.tobytes()))
        ).where(current)
        statements.append(
            insert(Embedding)
            .from_select(["kind", "item_id", "model", "vector"], values)
            .on_conflict_do_nothing()
        )
    if not session.connection().get_execution_options().get(READING, False):
        for statement in statements:
            session.execute(statement)
    else:
        try:
            with Session(session.get_bind()) as writer, writer.begin():
                for statement in statements:
                    writer.execute(statement)
        except SQLAlchemyError as error:  # used from memory now; the next load tries again
            log.warning("could not store %d knowledge vectors: %s", len(rows), type(error).__name__)
    return {entry_id: fresh[i] for i, (entry_id, *_) in enumerate(rows)}


def _literal(value: object) -> object:
    from sqlalchemy import LargeBinary, literal

    if isinstance(value, bytes):
        return literal(value, LargeBinary)
    return literal(value)
