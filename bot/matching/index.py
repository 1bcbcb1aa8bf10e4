"""The in-memory matching index: tags, who holds them, who wrote what, and vectors.

Built from the database once per worker and rebuilt, part by part, when the
revision counters say another writer changed it. Safe to lose: it is a cache.
"""

from __future__ import annotations

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
    ExampleSource,
    KnowledgeAuthor,
    KnowledgeEntry,
    KnowledgeTag,
    LabelledExample,
    Person,
    Skill,
    Tag,
    TagAlias,
)
from bot.matching import tagmodel, vectors
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
    most_held: int = 1  # the most tags any one person holds


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


@dataclass
class ExampleIndex:
    """The labelled examples the tag models learn from (never shown as answers)."""

    revision: int
    ids: list[int]
    vectors: np.ndarray
    tags: list[int | None]  # the tag it is labelled with, if known
    people: list[int | None]  # else the person who helped: one of their tags
    lead: list[bool]  # a lead's description or example question


@dataclass
class ModelIndex:
    """A fitted tag model and the revisions of what it was fitted on."""

    key: tuple[int, int, int]  # people, knowledge, learning revisions
    model: tagmodel.TagModel
    examples: ExampleIndex | None
    support: np.ndarray = field(init=False)  # model.support(), once

    def __post_init__(self) -> None:
        self.support = self.model.support()


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
        most_held=max((len(h) for h in held.values()), default=1),
    )
    if encoder is not None and names:
        index.tag_ids, index.tag_vectors = vectors.tag_vectors(session, encoder, names)
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


def load_examples(session: Session, rev: int, encoder: Encoder) -> ExampleIndex:
    """The settled examples with their vectors (a Message click still in its window is
    not evidence yet)."""
    import numpy as np

    rows = session.execute(
        select(
            LabelledExample.id,
            LabelledExample.text,
            LabelledExample.tag_id,
            LabelledExample.person_id,
            LabelledExample.source,
        )
        .where(LabelledExample.pending_until.is_(None))
        .order_by(LabelledExample.id)
    ).all()
    texts = {row[0]: row[1] for row in rows}
    ids, matrix = vectors.example_vectors(session, encoder, texts)
    found = {example_id: i for i, example_id in enumerate(ids)}
    rows = [row for row in rows if row[0] in found]
    index = ExampleIndex(
        rev,
        [row[0] for row in rows],
        matrix[[found[row[0]] for row in rows]] if rows else np.zeros((0, matrix.shape[1])),
        [row[2] for row in rows],
        [row[3] for row in rows],
        [row[4] == ExampleSource.LEAD for row in rows],
    )
    return index


def build_model(
    people: PeopleIndex,
    knowledge: KnowledgeIndex,
    examples: ExampleIndex | None,
    settings: tagmodel.FitSettings,
    previous: tagmodel.TagModel | None = None,
) -> tagmodel.TagModel | None:
    """Each tag's model: its name, its knowledge, and what use taught (tagmodel.py)."""
    if people.tag_vectors is None or not people.tag_ids:
        return None
    held: dict[int, set[int]] = {}

    def tags_of(person_ids: tuple[int, ...] | list[int]) -> set[int]:
        found: set[int] = set()
        for person_id in person_ids:
            if person_id not in held:
                held[person_id] = {h.tag_id for h in people.held.get(person_id, ())}
            found |= held[person_id]
        return found

    builder = tagmodel.ItemsBuilder(people.tag_ids)
    builder.block(
        people.tag_vectors,
        ((row, (tag_id,), False) for row, tag_id in enumerate(people.tag_ids)),
        settings.name_weight,
    )
    if knowledge.vectors is not None and knowledge.entry_ids is not None:
        labels = []
        for row, entry_id in enumerate(knowledge.entry_ids.tolist()):
            tagged = knowledge.tags.get(entry_id)
            if tagged:
                labels.append((row, tagged, False))
            else:  # about one of the tags its authors hold: the model chooses which
                labels.append((row, tags_of(knowledge.authors.get(entry_id, ())), True))
        builder.block(knowledge.vectors, labels, 1.0)
    if examples is not None and examples.ids:
        for lead, weight in ((True, settings.lead_weight), (False, settings.example_weight)):
            builder.block(
                examples.vectors,
                (
                    (row, (tag_id,), False)
                    if tag_id is not None
                    else (row, tags_of([person_id] if person_id is not None else []), True)
                    for row, (tag_id, person_id, is_lead) in enumerate(
                        zip(examples.tags, examples.people, examples.lead, strict=True)
                    )
                    if is_lead == lead
                ),
                weight,
            )
    return tagmodel.fit(builder.build(), settings, previous)


# From this many entries a knowledge index is rebuilt beside the one in use, which
# goes on answering meanwhile: a rebuild in its place takes seconds at this size, every
# question asked meanwhile would wait, and every resolved huddle adds an entry.
REBUILD_BESIDE_FROM = 20_000


class IndexCache:
    """One worker's index, refreshed when the database's revisions move on.

    A large knowledge index is rebuilt on a thread of its own, with its own
    read-only snapshot (`reading`), while questions go on using the one it
    replaces: a question asked in those seconds misses only the newest change.
    The tag model (`model`) is refitted after the people, the knowledge or the
    labelled examples change, the same way: in place for a small index, beside
    it for a large one, each refit continuing from the last fit.
    """

    def __init__(
        self,
        encoder: Encoder | None,
        reading: Callable[[], AbstractContextManager[Session]] | None = None,
        rebuild_beside_from: int = REBUILD_BESIDE_FROM,
        fit: tagmodel.FitSettings | None = None,
    ) -> None:
        self.encoder = encoder
        self.people: PeopleIndex | None = None
        self.knowledge: KnowledgeIndex | None = None
        self.model: ModelIndex | None = None
        self.fit = fit or tagmodel.FitSettings()
        self.reading = reading
        self.rebuild_beside_from = rebuild_beside_from
        self._rebuilding: threading.Thread | None = None
        self._lock = threading.Lock()

    def get(self, session: Session, now: datetime) -> tuple[PeopleIndex, KnowledgeIndex]:
        revs = revision.current(session)
        people_rev, knowledge_rev = revs.get(revision.PEOPLE, 0), revs.get(revision.KNOWLEDGE, 0)
        learning_rev = revs.get(revision.LEARNING, 0)
        if self.people is None or self.people.revision != people_rev:
            with heap.paused():
                self.people = load_people(session, people_rev, self.encoder)
        current = self.knowledge
        large = current is not None and len(current.fulltext) >= self.rebuild_beside_from
        if current is None or current.revision != knowledge_rev:
            if large and self.reading is not None:
                self._rebuild_beside(now)
                assert current is not None
                return self.people, current  # this question: the index it found
            current = self.knowledge = self._load_knowledge(session, knowledge_rev, now)
        if self.encoder is not None:
            key = (people_rev, knowledge_rev, learning_rev)
            if self.model is None or self.model.key != key:
                if large and self.reading is not None:
                    self._rebuild_beside(now)  # this question: the model it found
                else:
                    self._refit(session, self.people, current, key)
        return self.people, current

    def wait(self) -> None:
        """Until a rebuild under way is done (for tests and benches)."""
        rebuilding = self._rebuilding
        if rebuilding is not None:
            rebuilding.join()

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
                revs = revision.current(session)
                rev = revs.get(revision.KNOWLEDGE, 0)
                knowledge = self.knowledge
                if knowledge is None or knowledge.revision != rev:
                    knowledge = self.knowledge = self._load_knowledge(session, rev, now)
                people = self.people
                if self.encoder is not None and people is not None:
                    key = (people.revision, rev, revs.get(revision.LEARNING, 0))
                    if self.model is None or self.model.key != key:
                        self._refit(session, people, knowledge, key)
        except Exception:
            log.exception("could not rebuild the knowledge index; the next question tries again")

    def _refit(
        self,
        session: Session,
        people: PeopleIndex,
        knowledge: KnowledgeIndex,
        key: tuple[int, int, int],
    ) -> None:
        assert self.encoder is not None
        started = time.perf_counter()
        last = self.model
        with heap.paused():
            examples = load_examples(session, key[2], self.encoder)
            # An entry added, edited or deleted, a new example: the prototypes are summed
            # again (one pass over the vectors) and the regression continues from the last
            # fit for `refit_steps`, not from the start (a new tag starts from its prototype).
            previous = last.model if last is not None else None
            model = build_model(people, knowledge, examples, self.fit, previous)
        if model is None:
            self.model = None
            return
        self.model = ModelIndex(key, model, examples)
        log.info(
            "tag model %s: %d tags, %d items, %.2f s",
            "refitted" if previous is not None else "fitted",
            len(model.tag_ids),
            model.items,
            time.perf_counter() - started,
        )

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
