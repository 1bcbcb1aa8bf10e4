"""The in-memory matching index: tags, who holds them, who wrote what, and vectors.

Built from the database once per worker and rebuilt, part by part, when the
revision counters say another writer changed it. Safe to lose: it is a cache.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db import revision
from bot.db.models import (
    KnowledgeAuthor,
    KnowledgeEntry,
    KnowledgeTag,
    Person,
    Skill,
    Tag,
    TagAlias,
)
from bot.matching import vectors
from bot.matching.lexical import FullTextIndex, TermIndex
from bot.ops import heap

if TYPE_CHECKING:
    import numpy as np

    from bot.matching.embeddings import Encoder

log = logging.getLogger(__name__)

FRESHNESS_DAYS = 365
STREAM_ROWS = 5_000  # knowledge rows fetched at a time while building the index


@dataclass(frozen=True)
class Holding:
    person_id: int
    tag_id: int
    level: int
    verified: bool


@dataclass
class PeopleIndex:
    revision: int
    names: dict[int, str]
    parents: dict[int, int | None]
    children: dict[int, list[int]]
    terms: TermIndex
    holders: dict[int, tuple[int, ...]]  # tag id → the ids of the people who hold it
    held: dict[int, list[Holding]]
    tag_ids: list[int] = field(default_factory=list)
    tag_vectors: np.ndarray | None = None
    # Derived from tag_vectors on first use (see `Matcher`): for ranking, not confidence.
    distinct_vectors: np.ndarray | None = None
    hubness: np.ndarray | None = None
    # Tags without a stored vector, too many to encode in a question (an import's new
    # ones): matched by name until `IndexCache` has encoded them beside.
    tags_without_vectors: int = 0


@dataclass
class KnowledgeIndex:
    revision: int
    authors: dict[int, tuple[int, ...]]
    tags: dict[int, tuple[int, ...]]
    # Entry id → 0.5..1: how much an answer still says about its authors today.
    freshness: dict[int, float]
    fulltext: FullTextIndex  # BM25 over titles and bodies
    entry_ids: np.ndarray | None = None
    vectors: np.ndarray | None = None


def load_people(session: Session, rev: int, encoder: Encoder | None) -> PeopleIndex:
    tags = session.execute(select(Tag.id, Tag.name, Tag.parent_id)).all()
    aliases = session.execute(select(TagAlias.tag_id, TagAlias.alias)).all()
    skills = session.execute(
        select(Skill.person_id, Skill.tag_id, Skill.level, Skill.verified_at.is_not(None))
        .join(Person, Person.id == Skill.person_id)
        .where(Person.deleted_at.is_(None))
    ).all()
    names = {tag_id: name for tag_id, name, _ in tags}
    parents = {tag_id: parent for tag_id, _, parent in tags}
    children: dict[int, list[int]] = defaultdict(list)
    for tag_id, parent in parents.items():
        if parent is not None:
            children[parent].append(tag_id)
    holders: dict[int, list[int]] = defaultdict(list)
    held: dict[int, list[Holding]] = defaultdict(list)
    for person_id, tag_id, level, verified in skills:
        holding = Holding(person_id, tag_id, level, bool(verified))
        holders[tag_id].append(person_id)
        held[person_id].append(holding)
    terms = TermIndex(
        [(tag_id, name, False) for tag_id, name in names.items()]
        + [(tag_id, alias, True) for tag_id, alias in aliases]
    )
    index = PeopleIndex(
        rev,
        names,
        parents,
        dict(children),
        terms,
        {tag_id: tuple(people) for tag_id, people in holders.items()},
        dict(held),
    )
    if encoder is not None and names:
        index.tag_ids, index.tag_vectors, index.tags_without_vectors = vectors.tag_vectors(
            session, encoder, names
        )
    return index


def freshness(age: timedelta) -> float:
    """1 for an answer written today, halfway to 0.5 after a year."""
    return 0.5 + 0.5 * math.exp(-max(age.days, 0) / FRESHNESS_DAYS)


def load_knowledge(
    session: Session, rev: int, encoder: Encoder | None, now: datetime
) -> KnowledgeIndex:
    authors: dict[int, list[int]] = defaultdict(list)
    for entry_id, person_id in session.execute(
        select(KnowledgeAuthor.entry_id, KnowledgeAuthor.person_id)
    ):
        authors[entry_id].append(person_id)
    tags: dict[int, list[int]] = defaultdict(list)
    for entry_id, tag_id in session.execute(select(KnowledgeTag.entry_id, KnowledgeTag.tag_id)):
        tags[entry_id].append(tag_id)
    fresh: dict[int, float] = {}

    def texts() -> Iterator[tuple[int, str, str]]:
        # Streamed: the text of every entry is read once, and not kept.
        rows = session.execute(
            select(
                KnowledgeEntry.id,
                KnowledgeEntry.title,
                KnowledgeEntry.body,
                KnowledgeEntry.updated_at,
            )
            .order_by(KnowledgeEntry.id)
            .execution_options(yield_per=STREAM_ROWS)
        )
        for entry_id, title, body, updated in rows:
            fresh[entry_id] = freshness(now - updated)
            yield entry_id, title, body

    fulltext = FullTextIndex(texts())
    index = KnowledgeIndex(
        rev,
        {entry: tuple(people) for entry, people in authors.items()},
        {entry: tuple(ids) for entry, ids in tags.items()},
        fresh,
        fulltext,
    )
    if encoder is not None:
        index.entry_ids, index.vectors = vectors.knowledge_vectors(session, encoder)
    return index


# From this many entries a knowledge index is rebuilt beside the one in use, which
# goes on answering meanwhile: a rebuild in its place takes seconds at this size, every
# question asked meanwhile would wait, and every resolved huddle adds an entry.
REBUILD_BESIDE_FROM = 20_000


class IndexCache:
    """One worker's index, refreshed when the database's revisions move on.

    A large knowledge index is rebuilt on a thread of its own, with its own
    read-only snapshot (`reading`), while questions go on using the one it
    replaces: a question asked in those seconds misses only the newest change.
    Tags found without vectors, more than a question encodes (an import makes
    them, and imports load no model), are encoded on a thread of their own too,
    by the process that answers questions and holds the model already; the
    people index is reloaded with them once they are stored.
    """

    def __init__(
        self,
        encoder: Encoder | None,
        reading: Callable[[], AbstractContextManager[Session]] | None = None,
        rebuild_beside_from: int = REBUILD_BESIDE_FROM,
    ) -> None:
        self.encoder = encoder
        self.people: PeopleIndex | None = None
        self.knowledge: KnowledgeIndex | None = None
        self.reading = reading
        self.rebuild_beside_from = rebuild_beside_from
        self._rebuilding: threading.Thread | None = None
        self._encoding: threading.Thread | None = None
        self._lock = threading.Lock()

    def get(self, session: Session, now: datetime) -> tuple[PeopleIndex, KnowledgeIndex]:
        revs = revision.current(session)
        people_rev, knowledge_rev = revs.get(revision.PEOPLE, 0), revs.get(revision.KNOWLEDGE, 0)
        people = self.people
        if people is None or people.revision != people_rev:
            with heap.paused():
                people = self.people = load_people(session, people_rev, self.encoder)
            if people.tags_without_vectors:
                self._encode_tags_beside()
        current = self.knowledge
        if current is None or current.revision != knowledge_rev:
            large = current is not None and len(current.fulltext) >= self.rebuild_beside_from
            if large and self.reading is not None:
                self._rebuild_beside(now)
                assert current is not None
                return people, current  # this question: the index it found
            current = self.knowledge = self._load_knowledge(session, knowledge_rev, now)
        return people, current

    def wait(self) -> None:
        """Until a rebuild or an encoding under way is done (for tests and benches)."""
        for thread in (self._rebuilding, self._encoding):
            if thread is not None:
                thread.join()

    def _encode_tags_beside(self) -> None:
        if self.encoder is None or self.reading is None:
            return  # `whoknows index` stores them
        with self._lock:
            if self._encoding is not None and self._encoding.is_alive():
                return  # it stores every tag without a vector, new ones too
            self._encoding = threading.Thread(
                target=self._encode_tags, name="tag-vectors", daemon=True
            )
            self._encoding.start()

    def _encode_tags(self) -> None:
        assert self.encoder is not None and self.reading is not None
        started = time.perf_counter()
        try:
            added = vectors.encode_tags_beside(self.reading, self.encoder)
            current = self.people
            if current is None:
                return
            with self.reading() as session:  # stored now: loaded, none encoded here
                ids, matrix, left = vectors.tag_vectors(
                    session, self.encoder, current.names, limit=0
                )
        except Exception:
            log.exception("could not encode the tags without vectors; the next load tries again")
            return
        log.info("%d tag vectors stored, %.1f s", added, time.perf_counter() - started)
        with self._lock:
            if self.people is current:  # else a newer load has them already
                self.people = dataclasses.replace(
                    current,
                    tag_ids=ids,
                    tag_vectors=matrix,
                    distinct_vectors=None,
                    hubness=None,
                    tags_without_vectors=left,
                )

    def _rebuild_beside(self, now: datetime) -> None:
        with self._lock:
            if self._rebuilding is not None and self._rebuilding.is_alive():
                return  # one at a time: the next question after it catches any later change
            self._rebuilding = threading.Thread(
                target=self._rebuild, args=(now,), name="index-rebuild", daemon=True
            )
            self._rebuilding.start()

    def _rebuild(self, now: datetime) -> None:
        assert self.reading is not None
        try:
            with self.reading() as session:
                rev = revision.current(session).get(revision.KNOWLEDGE, 0)
                self.knowledge = self._load_knowledge(session, rev, now)
        except Exception:
            log.exception("could not rebuild the knowledge index; the next question tries again")

    def _load_knowledge(self, session: Session, rev: int, now: datetime) -> KnowledgeIndex:
        started = time.perf_counter()
        with heap.paused():
            knowledge = load_knowledge(session, rev, self.encoder, now)
        log.info(
            "knowledge index loaded: %d entries, %d words, %.1f s",
            len(knowledge.fulltext),
            len(knowledge.fulltext.vocabulary),
            time.perf_counter() - started,
        )
        return knowledge
