"""The in-memory matching index: tags, who holds them, who wrote what, and vectors.

Built from the database once per worker. When the revision counters say another
writer changed it, the people part is rebuilt; the knowledge part applies the
entries that changed (bot/db/revision.py records them), in place, and is
compacted on the side once enough changes have piled up. Safe to lose: it is
a cache.
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

from sqlalchemy import func, select
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
from bot.matching.vectors import EntryVectors
from bot.ops import heap

if TYPE_CHECKING:
    import numpy as np

    from bot.matching.embeddings import Encoder

log = logging.getLogger(__name__)

FRESHNESS_DAYS = 365
STREAM_ROWS = 5_000  # knowledge rows fetched at a time while building the index


@dataclass(frozen=True, slots=True)  # tens of thousands of them: no __dict__ each
class Holding:
    person_id: int
    tag_id: int
    level: int
    verified: bool
    # When the skill was last declared, changed or verified: where its freshness starts.
    since: datetime | None = None


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
    most_held: int = 1  # the most tags any one person holds


@dataclass
class KnowledgeIndex:
    revision: int
    authors: dict[int, tuple[int, ...]]
    tags: dict[int, tuple[int, ...]]
    # Entry id → 0.5..1: how much an answer still says about its authors today.
    freshness: dict[int, float]
    fulltext: FullTextIndex  # BM25 over titles and bodies
    # A self-declared skill (`pair(person id, tag id)`) → when they last answered on its
    # tag (a POSIX timestamp): the evidence that keeps the skill fresh (`Matcher`).
    credited: dict[int, float] = field(default_factory=dict)
    store: EntryVectors | None = None  # sentence vectors, when the model is installed

    @property
    def entry_ids(self) -> np.ndarray | None:
        """Every live entry's id, in the order of `vectors`' rows."""
        return None if self.store is None else self.store.live()[0]

    @property
    def vectors(self) -> np.ndarray | None:
        """Every live entry's vector (the loaded matrix itself until an entry changes)."""
        return None if self.store is None else self.store.live()[1]

    def nearest(self, vector: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k entries closest to a question's vector, and their cosines, closest
        first (found with the question's batch when it was prepared)."""
        assert self.store is not None
        return self.store.nearest(vector, k)

    @property
    def changes(self) -> int:
        """Changes applied in place since the last build or compaction."""
        return max(self.fulltext.changes, self.store.changes if self.store else 0)

    def apply(
        self, session: Session, entry_ids: set[int], encoder: Encoder | None, now: datetime
    ) -> None:
        """Bring these entries up to date with the database: added, changed or gone.

        What a question reads of an entry lands before its search can find it, and
        goes after the search no longer can.
        """
        ids = sorted(entry_ids)
        rows = session.execute(
            select(
                KnowledgeEntry.id,
                KnowledgeEntry.version,
                KnowledgeEntry.title,
                KnowledgeEntry.body,
                KnowledgeEntry.updated_at,
            ).where(KnowledgeEntry.id.in_(ids))
        ).all()
        present = {row[0] for row in rows}
        gone = [entry_id for entry_id in ids if entry_id not in present]
        authors, tags = _links(session, ids)
        found: dict[int, np.ndarray] = {}
        if self.store is not None and encoder is not None and rows:
            found = vectors.stored_knowledge_vectors(session, [row[0] for row in rows])
            missing = [tuple(row[:4]) for row in rows if row[0] not in found]
            if len(missing) > vectors.INLINE_LIMIT:
                log.warning("knowledge entries without vectors: run `whoknows index` to add them")
                missing = missing[: vectors.INLINE_LIMIT]
            found.update(vectors.encode_entries(session, encoder, missing))  # type: ignore[arg-type]
        # Every (author, tag) an entry gave or gives evidence for: recounted below.
        touched = {
            pair(person_id, tag_id)
            for entry_id in ids
            for links in ((self.authors, self.tags), (authors, tags))
            for person_id in links[0].get(entry_id, ())
            for tag_id in links[1].get(entry_id, ())
        }
        for entry_id, _, _, _, updated in rows:
            for held, found_now in ((self.authors, authors), (self.tags, tags)):
                if entry_id in found_now:
                    held[entry_id] = found_now[entry_id]
                else:  # as a load leaves it: no key
                    held.pop(entry_id, None)
            self.freshness[entry_id] = freshness(now - updated)
        self.fulltext.update([(row[0], row[2], row[3]) for row in rows], gone)
        if self.store is not None:
            unvectored = [row[0] for row in rows if row[0] not in found]
            self.store.update({e: found[e] for e in sorted(found)}, [*gone, *unvectored])
        for entry_id in gone:
            self.authors.pop(entry_id, None)
            self.tags.pop(entry_id, None)
            self.freshness.pop(entry_id, None)
        if touched:
            self._recount_credit(session, touched)

    def _recount_credit(self, session: Session, touched: set[int]) -> None:
        """Credit for these (person, tag) pairs, from the entries that give it now: an
        answer that lost a tag or an author, or was deleted, no longer keeps that
        skill fresh."""
        people = {key >> 32 for key in touched}
        topics = {key & 0xFFFFFFFF for key in touched}
        latest = session.execute(
            select(
                KnowledgeAuthor.person_id, KnowledgeTag.tag_id, func.max(KnowledgeEntry.updated_at)
            )
            .join(KnowledgeTag, KnowledgeTag.entry_id == KnowledgeAuthor.entry_id)
            .join(KnowledgeEntry, KnowledgeEntry.id == KnowledgeAuthor.entry_id)
            .where(KnowledgeAuthor.person_id.in_(people), KnowledgeTag.tag_id.in_(topics))
            .group_by(KnowledgeAuthor.person_id, KnowledgeTag.tag_id)
        ).all()
        for key in touched:
            self.credited.pop(key, None)
        for person_id, tag_id, updated in latest:
            key = pair(person_id, tag_id)
            if key in touched:
                self.credited[key] = updated.timestamp()

    def freeze(self) -> Callable[[], KnowledgeIndex]:
        """Take what a compaction folds in (while no change is applied); the returned
        function builds the compacted index, beside this one, which goes on answering."""
        revision_now = self.revision
        text = self.fulltext.snapshot()
        store = self.store
        matrix = store.snapshot() if store is not None else None

        def build() -> KnowledgeIndex:
            compacted = KnowledgeIndex(
                revision_now,
                self.authors,
                self.tags,
                self.freshness,
                self.fulltext.compacted(text),
                self.credited,
            )
            if store is not None and matrix is not None:
                compacted.store = store.compacted(matrix)
            return compacted

        return build


def pair(person_id: int, tag_id: int) -> int:
    """One int for a (person, tag): a dict of tens of thousands keeps less than of tuples."""
    return person_id << 32 | tag_id


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
        select(
            Skill.person_id,
            Skill.tag_id,
            Skill.level,
            Skill.verified_at.is_not(None),
            Skill.updated_at,
        )
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
    for person_id, tag_id, level, verified, since in skills:
        holding = Holding(person_id, tag_id, level, bool(verified), since)
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
        index.tag_ids, index.tag_vectors, index.tags_without_vectors = vectors.tag_vectors(
            session, encoder, names
        )
    return index


def _links(
    session: Session, ids: list[int] | None
) -> tuple[dict[int, tuple[int, ...]], dict[int, tuple[int, ...]]]:
    """Each entry's authors and tags (of these entries, or all), in id order: a load
    and a change applied in place hold them alike."""
    found: list[dict[int, tuple[int, ...]]] = []
    for table, column in (
        (KnowledgeAuthor, KnowledgeAuthor.person_id),
        (KnowledgeTag, KnowledgeTag.tag_id),
    ):
        query = select(table.entry_id, column).order_by(table.entry_id, column)
        if ids is not None:
            query = query.where(table.entry_id.in_(ids))
        links: dict[int, list[int]] = defaultdict(list)
        for entry_id, other in session.execute(query):
            links[entry_id].append(other)
        found.append({entry: tuple(others) for entry, others in links.items()})
    return found[0], found[1]


def _credit(
    credited: dict[int, float],
    authors: tuple[int, ...],
    tags: tuple[int, ...],
    updated: datetime,
    declared: set[int],
) -> None:
    """An answer written or changed at `updated` is evidence for its authors on its tags
    (of the self-declared skills `declared`)."""
    at = updated.timestamp()
    for person_id in authors:
        for tag_id in tags:
            key = pair(person_id, tag_id)
            if key in declared and credited.get(key, 0.0) < at:
                credited[key] = at


def freshness(age: timedelta) -> float:
    """1 for an answer written today, halfway to 0.5 after a year."""
    return 0.5 + 0.5 * math.exp(-max(age.days, 0) / FRESHNESS_DAYS)


def load_knowledge(
    session: Session, rev: int, encoder: Encoder | None, now: datetime
) -> KnowledgeIndex:
    authors, tags = _links(session, None)
    fresh: dict[int, float] = {}
    # Only self-declared skills age in the ranking; one declared after this load is
    # fresh anyway (its `since` is newer than any answer counted here).
    declared = {
        pair(person_id, tag_id)
        for person_id, tag_id in session.execute(
            select(Skill.person_id, Skill.tag_id).where(Skill.verified_at.is_(None))
        )
    }
    credited: dict[int, float] = {}

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
            if declared:
                _credit(
                    credited, authors.get(entry_id, ()), tags.get(entry_id, ()), updated, declared
                )
            yield entry_id, title, body

    fulltext = FullTextIndex(texts())
    heap.trim()  # the build's word counts, before the vectors take their place
    index = KnowledgeIndex(rev, authors, tags, fresh, fulltext, credited)
    if encoder is not None:
        index.store = EntryVectors(*vectors.knowledge_vectors(session, encoder))
        heap.trim()
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
    previous: tagmodel.TagModel | None,
    blocks: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> tagmodel.TagModel | None:
    """Each tag's model: its name, its knowledge (the live vectors' `blocks`, as
    `EntryVectors.blocks` gives them), and what use taught (tagmodel.py)."""
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
    for ids, matrix, rows in blocks:
        labels = []
        for row in rows.tolist():
            entry_id = int(ids[row])
            tagged = knowledge.tags.get(entry_id)
            if tagged:
                labels.append((row, tagged, False))
            else:  # about one of the tags its authors hold: the model chooses which
                labels.append((row, tags_of(knowledge.authors.get(entry_id, ())), True))
        builder.block(matrix, labels, 1.0)
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
# question asked meanwhile would wait. A rebuild is for when the changes cannot be
# applied one by one (a bulk import, a set-based write); other changes are applied.
REBUILD_BESIDE_FROM = 20_000
# More changed entries than this at once are a rebuild's job, not a question's.
APPLY_LIMIT = 1_000
# Changes applied in place before the index is compacted beside the one in use.
COMPACT_FROM = 2_000
COMPACT_SHARE = 0.02  # or this share of the entries, if more


# A large index's tag model is refitted at most this often (seconds): a refit there
# takes seconds of a core, and with a change every second it would never rest. A
# change is searchable at once; what it teaches the model counts from the next refit.
REFIT_EVERY_S = 30.0


class IndexCache:
    """One worker's index, brought up to date when the database's revisions move on.

    The first question loads the index. Later, a question that finds the knowledge
    revision moved on applies the entries changed since (a few milliseconds), and
    once changes have piled up the index is compacted on a thread of its own from
    what it holds in memory, while questions go on using it; the compacted one
    then catches up with the changes made meanwhile. When the changes cannot be
    named, a large knowledge index is rebuilt on that thread, with its own
    read-only snapshot (`reading`): a question asked in those seconds misses only
    the newest change.
    Tags found without vectors, more than a question encodes (an import makes
    them, and imports load no model), are encoded on a thread of their own too,
    by the process that answers questions and holds the model already; the
    people index is reloaded with them once they are stored.
    The tag model (`model`) is refitted after the people, the knowledge or the
    labelled examples change: in place for a small index, on a thread of its own
    for a large one, at most every `refit_every` seconds (questions use the last
    fit meanwhile), each refit continuing from the last fit.
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
        self.compact_from = COMPACT_FROM
        self._rebuilding: threading.Thread | None = None
        self._compacting: threading.Thread | None = None
        self._compacted: tuple[KnowledgeIndex, KnowledgeIndex] | None = None  # (from, to)
        self._encoding: threading.Thread | None = None
        self._refitting: threading.Thread | None = None
        self.refit_every = REFIT_EVERY_S
        self._refit_due = 0.0  # monotonic time from which a large index refits again
        self._lock = threading.Lock()
        self._applying = threading.Lock()

    def get(self, session: Session, now: datetime) -> tuple[PeopleIndex, KnowledgeIndex]:
        revs = revision.current(session)
        people_rev, knowledge_rev = revs.get(revision.PEOPLE, 0), revs.get(revision.KNOWLEDGE, 0)
        people = self.people
        if people is None or people.revision != people_rev:
            with heap.paused():
                people = self.people = load_people(session, people_rev, self.encoder)
            if people.tags_without_vectors:
                self._encode_tags_beside()
        current = self._swap_compacted()
        if current is None or current.revision != knowledge_rev:
            current = self._catch_up(session, current, knowledge_rev, now)
        if self.encoder is not None:
            key = (people_rev, current.revision, revs.get(revision.LEARNING, 0))
            if self.model is None or self.model.key != key:
                if len(current.fulltext) >= self.rebuild_beside_from and self.reading is not None:
                    if time.monotonic() >= self._refit_due:
                        self._refit_beside()  # this question: the model it found
                else:
                    self._refit(session, people, current, key)
        return people, current

    def _swap_compacted(self) -> KnowledgeIndex | None:
        done = self._compacted
        if done is not None:
            self._compacted = None
            source, compacted = done
            # Unless the index was replaced meanwhile (a rebuild): then it is stale.
            if self.knowledge is source:
                self.knowledge = compacted
        return self.knowledge

    def _catch_up(
        self, session: Session, current: KnowledgeIndex | None, rev: int, now: datetime
    ) -> KnowledgeIndex:
        if current is None:
            current = self.knowledge = self._load_knowledge(session, rev, now)
            return current
        with self._applying:  # one thread applies; one waiting finds it done
            current = self.knowledge
            assert current is not None
            if current.revision == rev:
                return current
            changed = revision.changes(session, current.revision, rev)
            if changed is not None and len(changed) <= APPLY_LIMIT:
                started = time.perf_counter()
                with self._lock:
                    current.apply(session, changed, self.encoder, now)
                    current.revision = rev
                log.debug(
                    "knowledge index: %d entries applied in %.1f ms",
                    len(changed),
                    (time.perf_counter() - started) * 1000,
                )
                self._compact_if_due(current)
                return current
        large = len(current.fulltext) >= self.rebuild_beside_from
        if large and self.reading is not None:
            self._rebuild_beside(now)
            return current  # this question: the index it found
        current = self.knowledge = self._load_knowledge(session, rev, now)
        return current

    def _compact_if_due(self, current: KnowledgeIndex) -> None:
        due = max(self.compact_from, int(COMPACT_SHARE * len(current.fulltext)))
        if current.changes < due:
            return
        if self._compacting is not None and self._compacting.is_alive():
            return
        with self._lock:
            build = current.freeze()
        self._compacting = threading.Thread(
            target=self._compact, args=(current, build), name="index-compact", daemon=True
        )
        self._compacting.start()

    def _compact(self, source: KnowledgeIndex, build: Callable[[], KnowledgeIndex]) -> None:
        started = time.perf_counter()
        try:
            compacted = build()
            heap.trim()
        except Exception:
            log.exception("could not compact the knowledge index; it goes on as it is")
            return
        # Swapped in by the next question, which then applies what changed meanwhile.
        self._compacted = (source, compacted)
        log.info(
            "knowledge index compacted: %d entries, %.2f s",
            len(compacted.fulltext),
            time.perf_counter() - started,
        )

    def wait(self) -> None:
        """Until a rebuild, compaction, encoding or refit under way is done (for tests and
        benches)."""
        for thread in (self._rebuilding, self._compacting, self._encoding, self._refitting):
            if thread is not None:
                thread.join()

    def _encode_tags_beside(self) -> None:
        if self.encoder is None or self.reading is None:
            return  # `whoknows index` stores them
        with self._lock:  # one at a time: it stores every tag without a vector, new ones too
            self._encoding = _beside(self._encoding, self._encode_tags, "tag-vectors")

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
        with self._lock:  # one at a time: the next question after it catches later changes
            self._rebuilding = _beside(self._rebuilding, self._rebuild, "index-rebuild", now)

    def _rebuild(self, now: datetime) -> None:
        assert self.reading is not None
        try:
            with self.reading() as session:
                rev = revision.current(session).get(revision.KNOWLEDGE, 0)
                knowledge = self.knowledge
                if knowledge is None or knowledge.revision != rev:
                    self.knowledge = self._load_knowledge(session, rev, now)
                self._refit_if_behind(session)
        except Exception:
            log.exception("could not rebuild the knowledge index; the next question tries again")

    def _refit_beside(self) -> None:
        with self._lock:  # one at a time: the next question after it refits for later changes
            self._refitting = _beside(self._refitting, self._refit_now, "tag-model")

    def _refit_now(self) -> None:
        assert self.reading is not None
        try:
            with self.reading() as session:
                self._refit_if_behind(session)
        except Exception:
            log.exception("could not refit the tag model; the next question tries again")
        finally:
            self._refit_due = time.monotonic() + self.refit_every

    def _refit_if_behind(self, session: Session) -> None:
        """Refit unless the model was fitted on the people, knowledge and examples held."""
        people, knowledge = self.people, self.knowledge
        if self.encoder is None or people is None or knowledge is None:
            return
        learning_rev = revision.current(session).get(revision.LEARNING, 0)
        key = (people.revision, knowledge.revision, learning_rev)
        if self.model is None or self.model.key != key:
            self._refit(session, people, knowledge, key)

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
            with self._lock:  # no change is applied while the live rows are taken
                blocks = knowledge.store.blocks() if knowledge.store is not None else []
            model = build_model(people, knowledge, examples, self.fit, previous, blocks)
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


def _beside(
    running: threading.Thread | None, target: Callable[..., None], name: str, *args: object
) -> threading.Thread:
    """`running` while it is still at work, else a new thread started on `target` (the
    caller holds the cache's lock, so that two questions start one)."""
    if running is not None and running.is_alive():
        return running
    thread = threading.Thread(target=target, args=args, name=name, daemon=True)
    thread.start()
    return thread
