"""Sentence vectors for tags and knowledge: computed once, stored, loaded as one matrix."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bot.db.engine import READING, insert_for
from bot.db.models import Embedding, KnowledgeEntry

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


def entry_text(title: str, body: str) -> str:
    return title if body.strip() == title.strip() else f"{title}\n{body}"


def _model() -> str:
    from bot.matching.embeddings import MODEL_ID

    return MODEL_ID


def _store(session: Session, kind: str, ids: list[int], matrix: np.ndarray) -> None:
    """Keep vectors for every later load, by every worker.

    A question ranks in a read-only snapshot (`Database.reading`), whose writes
    are rolled back and, on SQLite, would hold the write lock to its end: there
    the vectors go in a short transaction of their own. Another worker may store
    the same ones meanwhile; theirs stand.
    """
    if not ids:
        return
    rows = [
        {"kind": kind, "item_id": item, "model": _model(), "vector": row.tobytes()}
        for item, row in zip(ids, matrix, strict=True)
    ]
    # Skips the vectors already stored.
    statement = insert_for(session.get_bind().dialect.name)(Embedding).on_conflict_do_nothing()
    if not session.connection().get_execution_options().get(READING, False):
        session.execute(statement, rows)
        return
    try:
        with Session(session.get_bind()) as writer, writer.begin():
            writer.execute(statement, rows)
    except SQLAlchemyError as error:  # used from memory now; the next load tries again
        log.warning("could not store %d %s vectors: %s", len(rows), kind, type(error).__name__)


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
    session: Session, encoder: Encoder, names: dict[int, str]
) -> tuple[list[int], np.ndarray]:
    import numpy as np

    ids, matrix = _load(session, TAG)
    known = set(ids)
    missing = [tag_id for tag_id in names if tag_id not in known]
    if missing:
        fresh = encoder.encode([names[tag_id] for tag_id in missing])
        _store(session, TAG, missing, fresh)
        ids, matrix = ids + missing, np.vstack([matrix, fresh])
    keep = [i for i, tag_id in enumerate(ids) if tag_id in names]
    return [ids[i] for i in keep], matrix[keep]


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
    from bot.db.models import LabelledExample, Tag

    with db.unit_of_work() as session:
        tag_vectors(session, encoder, dict(session.execute(select(Tag.id, Tag.name)).all()))
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
