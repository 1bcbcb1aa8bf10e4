"""Lexical signals: tag names found in the question, and full-text search over knowledge.

The matcher's full-text evidence is `FullTextIndex`, BM25 held in memory beside
the rest of the matching index: the same scores on SQLite and PostgreSQL, and
no database query per question. Entries that change are tombstoned and their
new text appended beside the postings, compacted into them again on the side.
`search_entries` is the database's own full-text search, for the `kb` command.
"""

from __future__ import annotations

import math
from array import array
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from rapidfuzz import fuzz, process
from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from bot.text import STOPWORDS, WORD, clean_text, terms

FUZZY_CUTOFF = 85  # rapidfuzz ratio for a typo ("chargbak" → "chargeback")
TYPO_DISCOUNT = 0.95
MIN_FUZZY_LENGTH = 5
MAX_SEARCH_TERMS = 16
# BM25 with SQLite FTS5's k1 and b, an idf that is never negative, and title
# words counting twice, as the full-text query's bm25(2.0, 1.0) weighs them.
BM25_K1 = 1.2
BM25_B = 0.75
TITLE_WEIGHT = 2.0
BUILD_CHUNK = 4_096  # entries whose words are counted at a time while indexing
FLOOR_SAMPLE = 8  # a search finds its floor among every FLOOR_SAMPLE-th matched posting


def stem(word: str) -> str:
    """A light plural fold, enough for tag names ("refunds" ~ "refund")."""
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


@dataclass(frozen=True)
class Term:
    """A tag name or alias, as the stems of its words."""

    tag_id: int
    stems: tuple[str, ...]
    alias: bool


class TermIndex:
    """Finds the tag terms a question names, exactly or with typos, via an inverted index."""

    def __init__(self, entries: Iterable[tuple[int, str, bool]]) -> None:
        self.terms: list[Term] = []
        self._words: dict[str, None] = {}  # every stem of every term, in order
        # A term is named only when all its words are, so its first word alone finds it.
        self._by_first: dict[str, list[int]] = defaultdict(list)
        # The words of each name or alias, in any order → its tag (a name before an alias).
        self._whole: dict[frozenset[str], int] = {}
        for tag_id, phrase, alias in entries:
            stems = tuple(stem(word) for word in terms(phrase))
            if not stems:
                continue
            self._words.update(dict.fromkeys(stems))
            self._by_first[stems[0]].append(len(self.terms))
            self.terms.append(Term(tag_id, stems, alias))
            if not alias or frozenset(stems) not in self._whole:
                self._whole[frozenset(stems)] = tag_id
        self._vocabulary = list(self._words)

    def whole(self, query: str) -> int | None:
        """The tag whose name (or an alias) is the whole question, as `refunds` or
        `Refund?` is for the tag "refunds"; None when the question says more or less."""
        words = frozenset(stem(w) for w in terms(query))
        return self._whole.get(words) if words else None

    def match(self, query: str) -> dict[int, tuple[float, bool]]:
        """tag id → (strength 0..1, through an alias) for every tag the question names."""
        found: dict[str, float] = {}
        for word in {stem(w) for w in terms(query)}:
            if word in self._words:
                found[word] = 1.0
            elif len(word) >= MIN_FUZZY_LENGTH:
                for near, score, _ in process.extract(
                    word, self._vocabulary, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF, limit=3
                ):
                    if len(near) >= MIN_FUZZY_LENGTH:
                        found[near] = max(found.get(near, 0.0), score / 100 * TYPO_DISCOUNT)
        best: dict[int, tuple[float, bool]] = {}
        candidates = {position for word in found for position in self._by_first.get(word, ())}
        for position in sorted(candidates):
            term = self.terms[position]
            # Every word of the term must be in the question; partial names do not count.
            scores = [found.get(word, 0.0) for word in term.stems]
            if min(scores) == 0.0:
                continue
            strength = sum(scores) / len(scores) * (TYPO_DISCOUNT if term.alias else 1.0)
            if strength > best.get(term.tag_id, (0.0, False))[0]:
                best[term.tag_id] = (strength, term.alias)
        return best


@dataclass(frozen=True)
class _Appended:
    """Entries added or changed since the postings were built: their own postings, with
    BM25 weights from the built postings' statistics. Replaced whole, never changed."""

    ids: np.ndarray  # entry id of each appended entry
    alive: np.ndarray  # False: changed again since, or gone
    lengths: np.ndarray  # indexed words in each, as the built postings count them
    stems: np.ndarray  # postings, sorted by stem then entry
    entries: np.ndarray
    tf: np.ndarray
    weights: np.ndarray
    stem_sets: tuple[frozenset[int], ...]  # each entry's stems, for `coverage`
    where: dict[int, int] = field(default_factory=dict)  # entry id → its live position
    all_ids: np.ndarray | None = None  # the built entries' ids, then these

    @staticmethod
    def empty() -> _Appended:
        none = np.zeros(0, dtype=np.int32)
        return _Appended(
            np.zeros(0, np.int64),
            np.zeros(0, bool),
            np.zeros(0, np.float32),
            none,
            none,
            np.zeros(0, np.float32),
            np.zeros(0, np.float32),
            (),
        )

    def postings(self, term: int) -> slice:
        left = int(np.searchsorted(self.stems, term, side="left"))
        return slice(left, int(np.searchsorted(self.stems, term, side="right")))


class FullTextIndex:
    """BM25 over knowledge entries, in memory: one posting list per word stem.

    The postings of all stems are stored end to end (`_entries`, `_weights`,
    sliced by `_offsets`), each with its BM25 term weight computed at build
    time, so a search is one weighted count over the question's postings and a
    partial sort.

    `update` changes it in place: an entry that changed or went is a tombstone
    over its postings, and its new text a few postings appended beside them,
    weighed with the built postings' statistics (as a search engine's segments do
    until they merge). `compacted` folds both into new postings, the same as a
    build over the entries as they are now.
    """

    def __init__(self, rows: Iterable[tuple[int, str, str]]) -> None:
        vocabulary: dict[str, int] = {}
        seen: dict[str, int] = {}  # a word as written → its stem's id, -1 if not indexed
        ids = array("q")

        def new_word(word: str) -> int:
            lowered = word.lower()
            if lowered in STOPWORDS or len(lowered) < 2:
                found = -1
            else:
                found = vocabulary.setdefault(stem(lowered), len(vocabulary))
            seen[word] = found
            return found

        def stem_ids(field_text: str) -> list[int]:
            written = WORD.findall(clean_text(field_text))
            found = list(map(seen.get, written))
            if None in found:
                return [
                    new_word(w) if i is None else i for w, i in zip(written, found, strict=True)
                ]
            return found  # type: ignore[return-value]

        # Words are counted per chunk of entries, so the memory the build takes
        # beyond the finished index stays small whatever the length of the texts.
        chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        words = array("i")  # the chunk's stem ids, entry after entry, title then body
        sizes = array("i")  # words in each title and each body of the chunk
        for entry_id, title, body in rows:
            title_ids, body_ids = stem_ids(title), stem_ids(body)
            ids.append(entry_id)
            words.extend(title_ids)
            words.extend(body_ids)
            sizes.extend((len(title_ids), len(body_ids)))
            if len(sizes) == 2 * BUILD_CHUNK:
                chunks.append(_count(words, sizes, len(ids) - BUILD_CHUNK))
                words, sizes = array("i"), array("i")
        if sizes:
            chunks.append(_count(words, sizes, len(ids) - len(sizes) // 2))
        self.vocabulary = vocabulary
        self._built(np.frombuffer(ids, dtype=np.int64), *_postings(len(vocabulary), chunks))

    def _built(
        self,
        entry_ids: np.ndarray,
        offsets: np.ndarray,
        entries: np.ndarray,
        weights: np.ndarray,
        tf: np.ndarray,
        lengths: np.ndarray,
    ) -> None:
        self.entry_ids = entry_ids
        # Positions in id order, for finding entries by id (`coverage`): None when the
        # entries came in id order, as the knowledge index reads them.
        ordered = bool(np.all(self.entry_ids[1:] > self.entry_ids[:-1]))
        self._by_id = None if ordered else np.argsort(self.entry_ids, kind="stable")
        self._offsets, self._entries, self._weights = offsets, entries, weights
        # Kept to weigh appended entries and to compact: what the weights came from.
        self._tf, self._lengths = tf, lengths
        self._df = np.diff(offsets)
        self._average = float(lengths.mean()) if lengths.any() else 1.0
        self._alive: np.ndarray | None = None  # made at the first tombstone
        self._dead = 0
        self._appended = _Appended.empty()

    def __len__(self) -> int:
        return len(self.entry_ids) - self._dead + len(self._appended.where)

    @property
    def changes(self) -> int:
        """Tombstones and appended entries: what a compaction would fold in."""
        return self._dead + len(self._appended.ids)

    @property
    def nbytes(self) -> int:
        arrays = (
            self.entry_ids,
            self._offsets,
            self._entries,
            self._weights,
            self._tf,
            self._lengths,
        )
        return sum(a.nbytes for a in arrays)

    def search(self, query: str, limit: int) -> list[tuple[int, float]]:
        """Entry ids with their BM25 score scaled to 0..1 (best = 1), best first.

        Any of the question's words may match; ties go to the entry added first.
        """
        stems = {stem(word) for word in terms(query)[:MAX_SEARCH_TERMS]}
        found = [self.vocabulary[s] for s in stems if s in self.vocabulary]
        if not found or limit <= 0:
            return []
        appended, alive = self._appended, self._alive
        built = len(self._offsets) - 1  # stems new since the build have no postings here
        spans = [slice(self._offsets[t], self._offsets[t + 1]) for t in found if t < built]
        matched = np.concatenate([self._entries[span] for span in spans] or [_NO_POSITIONS])
        weights = np.concatenate([self._weights[span] for span in spans] or [_NO_WEIGHTS])
        if alive is not None:
            kept = alive[matched]
            matched, weights = matched[kept], weights[kept]
        ids = self.entry_ids
        if len(appended.ids):
            extra = [appended.postings(term) for term in found]
            positions = np.concatenate([appended.entries[span] for span in extra])
            extra_weights = np.concatenate([appended.weights[span] for span in extra])
            kept = appended.alive[positions]
            matched = np.concatenate([matched, positions[kept] + len(ids)])
            weights = np.concatenate([weights, extra_weights[kept]])
            assert appended.all_ids is not None
            ids = appended.all_ids
        if not len(matched):
            return []
        # Each entry's score in one pass (a fancy-index add per word cost twice as much).
        scores = np.bincount(matched, weights=weights, minlength=len(ids))
        # The best are chosen among the matched entries only, not all of them: a
        # question's words match a fraction of a large knowledge base. An entry is in
        # `matched` once per word of the question it contains, so any `top + 1` of its
        # values name at least `limit` distinct entries. The top-th best value of a
        # sample of them is at most that of the whole, so every entry of the best
        # `limit` scores at least it: a floor found in an eighth of the work.
        # (Every matched entry scores above zero: BM25's idf here and every term count
        # are positive. Partitioned from the front of the negated values: numpy's
        # partition is erratic, up to 20x slower, when asked for a kth near the end.)
        top = min(limit * len(found), len(matched)) - 1
        sample = scores[matched[::FLOOR_SAMPLE]]
        if len(sample) <= top:
            sample = scores[matched]
        floor = -np.partition(-sample, top)[top]
        # An entry changed in place keeps its old postings at weight 0 (tombstoned): a
        # floor of 0 would name every entry, and they are no hit.
        hits = np.flatnonzero(scores >= max(floor, np.finfo(float).tiny))
        if not len(hits):
            return []
        if len(hits) > limit:
            values = scores[hits]
            kth = -np.partition(-values, limit - 1)[limit - 1]
            hits = hits[values >= kth]
        hits = hits[np.lexsort((hits, -scores[hits]))][:limit]
        best = float(scores[hits[0]])
        return [
            (int(entry_id), float(score) / best)
            for entry_id, score in zip(ids[hits], scores[hits], strict=True)
        ]

    def coverage(self, words: Iterable[str], entry_ids: Sequence[int]) -> dict[int, int]:
        """Entry id → how many of the stems of `words` it contains, for the entries
        indexed: from the postings, without reading or splitting the entries' text."""
        wanted = {self.vocabulary.get(stem(w)) for w in words} - {None}
        appended = self._appended
        found: dict[int, int] = {}
        built: list[int] = []
        for entry_id in entry_ids:
            position = appended.where.get(int(entry_id))
            if position is None:
                built.append(int(entry_id))
            else:
                found[int(entry_id)] = len(wanted & appended.stem_sets[position])
        ids = np.asarray(built, dtype=np.int64)
        if not len(self.entry_ids) or not len(ids):
            return found
        # Each entry's position, by bisection over the ids in order.
        at = np.searchsorted(self.entry_ids, ids, sorter=self._by_id)
        at = np.minimum(at, len(self.entry_ids) - 1)
        positions = at if self._by_id is None else self._by_id[at]
        indexed = self.entry_ids[positions] == ids
        if self._alive is not None:
            indexed &= self._alive[positions]
        counts = np.zeros(len(ids), dtype=np.int64)
        for term in wanted:
            if term >= len(self._offsets) - 1:
                continue
            postings = self._entries[self._offsets[term] : self._offsets[term + 1]]
            if not len(postings):
                continue
            at = np.minimum(np.searchsorted(postings, positions), len(postings) - 1)
            counts += postings[at] == positions
        for entry_id, count, known in zip(ids, counts, indexed, strict=True):
            if known:
                found[int(entry_id)] = int(count)
        return found

    def update(self, rows: Iterable[tuple[int, str, str]], removed: Iterable[int] = ()) -> None:
        """Entries added or changed, with their text now, and entries gone.

        Readers on other threads see the change whole or not at all: the appended
        postings are replaced in one assignment, and a tombstone is one boolean.
        """
        rows = list(rows)
        gone = {int(entry_id) for entry_id in removed} | {int(row[0]) for row in rows}
        if not gone:
            return
        previous = self._appended
        alive = previous.alive.copy()
        for entry_id in gone:
            position = previous.where.get(entry_id)
            if position is not None:
                alive[position] = False
            self._bury(entry_id)
        words, sizes = array("i"), array("i")
        for _, title, body in rows:
            title_ids, body_ids = self._stem_ids(title), self._stem_ids(body)
            words.extend(title_ids)
            words.extend(body_ids)
            sizes.extend((len(title_ids), len(body_ids)))
        stems, entries, tf, lengths = (
            _count(words, sizes, len(previous.ids))
            if rows
            else (_NO_POSITIONS, _NO_POSITIONS, _NO_WEIGHTS, _NO_WEIGHTS)
        )
        new_ids = np.array([row[0] for row in rows], dtype=np.int64)
        sets = [set[int]() for _ in rows]
        for term, position in zip(stems.tolist(), entries.tolist(), strict=True):
            sets[position - len(previous.ids)].add(term)
        all_stems = np.concatenate([previous.stems, stems])
        all_entries = np.concatenate([previous.entries, entries])
        all_tf = np.concatenate([previous.tf, tf])
        order = np.lexsort((all_entries, all_stems))
        all_stems, all_entries, all_tf = all_stems[order], all_entries[order], all_tf[order]
        all_lengths = np.concatenate([previous.lengths, lengths])
        alive = np.concatenate([alive, np.ones(len(rows), dtype=bool)])
        ids = np.concatenate([previous.ids, new_ids])
        self._appended = _Appended(
            ids,
            alive,
            all_lengths,
            all_stems,
            all_entries,
            all_tf,
            self._appended_weights(all_stems, all_entries, all_tf, all_lengths, alive),
            (*previous.stem_sets, *(frozenset(terms) for terms in sets)),
            {int(entry_id): i for i, entry_id in enumerate(ids.tolist()) if alive[i]},
            np.concatenate([self.entry_ids, ids]),
        )

    def _bury(self, entry_id: int) -> None:
        if not len(self.entry_ids):
            return
        at = int(np.searchsorted(self.entry_ids, entry_id, sorter=self._by_id))
        if at == len(self.entry_ids):
            return
        position = at if self._by_id is None else int(self._by_id[at])
        if self.entry_ids[position] != entry_id:
            return
        if self._alive is None:
            alive = np.ones(len(self.entry_ids), dtype=bool)
            alive[position] = False
            self._alive = alive
            self._dead = 1
        elif self._alive[position]:
            self._alive[position] = False
            self._dead += 1

    def _stem_ids(self, text: str) -> list[int]:
        found = []
        for word in WORD.findall(clean_text(text)):
            lowered = word.lower()
            if lowered in STOPWORDS or len(lowered) < 2:
                found.append(-1)
            else:
                found.append(self.vocabulary.setdefault(stem(lowered), len(self.vocabulary)))
        return found

    def _appended_weights(
        self,
        stems: np.ndarray,
        entries: np.ndarray,
        tf: np.ndarray,
        lengths: np.ndarray,
        alive: np.ndarray,
    ) -> np.ndarray:
        """BM25 weights of appended postings, with the built postings' entry count and
        average length, and their document frequency plus the appended entries'."""
        if not len(stems):
            return _NO_WEIGHTS
        terms = int(stems.max()) + 1
        df = np.zeros(terms, dtype=np.int64)
        built = min(terms, len(self._df))
        df[:built] = self._df[:built]
        df += np.bincount(stems[alive[entries]], minlength=terms)
        # Entries counted as the document frequencies are: every built one (a tombstone
        # keeps its postings) and the live appended ones. Counting only the built could
        # leave a stem in more entries than the total, and its weight below zero.
        total = max(len(self.entry_ids) + int(alive.sum()), 1)
        idf = np.log1p((total - df + 0.5) / (df + 0.5)).astype(np.float32)
        norm = (BM25_K1 * (1 - BM25_B + BM25_B * lengths / self._average)).astype(np.float32)
        weights = idf[stems] * tf * (BM25_K1 + 1) / (tf + norm[entries])
        return weights.astype(np.float32)

    def snapshot(self) -> tuple[np.ndarray | None, _Appended]:
        """What `compacted` folds in, taken while no update runs (the cache's lock)."""
        return (None if self._alive is None else self._alive.copy()), self._appended

    def compacted(
        self, snapshot: tuple[np.ndarray | None, _Appended] | None = None
    ) -> FullTextIndex:
        """New postings over the live entries in id order, as a build over them makes,
        from these postings alone (no text is read again). This index goes on
        answering meanwhile; the new one shares its vocabulary."""
        alive, appended = snapshot or self.snapshot()
        count = len(self.entry_ids)
        built_terms = len(self._offsets) - 1
        terms = max(built_terms, int(appended.stems.max()) + 1 if len(appended.stems) else 0)
        stems = np.repeat(np.arange(built_terms, dtype=np.int32), self._df)
        entries, tf = self._entries, self._tf
        live = np.arange(count) if alive is None else np.flatnonzero(alive)
        if alive is not None:
            kept = alive[entries]
            stems, entries, tf = stems[kept], entries[kept], tf[kept]
        extra_live = np.flatnonzero(appended.alive)
        kept = appended.alive[appended.entries]
        extra_stems, extra_entries = appended.stems[kept], appended.entries[kept]
        ids = np.concatenate([self.entry_ids[live], appended.ids[extra_live]])
        order = np.argsort(ids, kind="stable")
        place = np.empty(len(ids), dtype=np.int64)
        place[order] = np.arange(len(ids))
        built_place = np.full(count, -1, dtype=np.int64)
        built_place[live] = place[: len(live)]
        extra_place = np.full(len(appended.ids), -1, dtype=np.int64)
        extra_place[extra_live] = place[len(live) :]
        stems = np.concatenate([stems, extra_stems])
        entries = np.concatenate([built_place[entries], extra_place[extra_entries]])
        tf = np.concatenate([tf, appended.tf[kept]])
        by_stem = np.lexsort((entries, stems))
        stems, entries, tf = stems[by_stem], entries[by_stem].astype(np.int32), tf[by_stem]
        lengths = np.concatenate([self._lengths[live], appended.lengths[extra_live]])[order]
        df = np.bincount(stems, minlength=terms).astype(np.int64)
        offsets = np.zeros(terms + 1, dtype=np.int64)
        np.cumsum(df, out=offsets[1:])
        fresh = object.__new__(FullTextIndex)
        fresh.vocabulary = self.vocabulary
        fresh._built(ids[order], offsets, entries, _bm25(df, tf, entries, lengths), tf, lengths)
        return fresh


_NO_POSITIONS = np.zeros(0, dtype=np.int32)
_NO_WEIGHTS = np.zeros(0, dtype=np.float32)


def _count(
    words: array, sizes: array, first: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A chunk's postings: stem, entry position, title-weighted count; and its lengths."""
    stems = np.frombuffer(words, dtype=np.int32)
    size = np.frombuffer(sizes, dtype=np.int32)
    total = len(size) // 2
    entries = np.repeat(np.arange(total, dtype=np.int64), size[0::2] + size[1::2])
    counts = np.repeat(np.tile(np.array([TITLE_WEIGHT, 1.0], np.float32), total), size)
    indexed = stems >= 0
    stems, entries, counts = stems[indexed], entries[indexed], counts[indexed]
    lengths = np.bincount(entries, minlength=total).astype(np.float32)
    # One posting per (stem, entry) pair: its count is the sum of its words' weights.
    keys, pair = np.unique(stems * np.int64(total) + entries, return_inverse=True)
    tf = np.bincount(pair, weights=counts).astype(np.float32)
    return (
        (keys // total).astype(np.int32),
        (keys % total + first).astype(np.int32),
        tf,
        lengths,
    )


def _postings(
    vocabulary: int, chunks: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Offsets per stem, then entry positions, BM25 term weights and term counts
    grouped by stem; and each entry's length.

    Each chunk's postings are in stem order already: they are copied into place
    chunk after chunk (so each stem's entries stay in order) and let go of.
    """
    lengths = np.concatenate([chunk[3] for chunk in chunks]) if chunks else np.zeros(0, np.float32)
    df = np.zeros(vocabulary, dtype=np.int64)
    for stems, *_ in chunks:
        df += np.bincount(stems, minlength=vocabulary)
    offsets = np.zeros(vocabulary + 1, dtype=np.int64)
    np.cumsum(df, out=offsets[1:])
    entries = np.empty(offsets[-1], dtype=np.int32)
    tf = np.empty(offsets[-1], dtype=np.float32)
    cursor = offsets[:-1].copy()
    chunks.reverse()
    while chunks:
        stems, chunk_entries, chunk_tf, _ = chunks.pop()
        here = np.bincount(stems, minlength=vocabulary)
        start = np.cumsum(here) - here  # where each stem's postings begin in the chunk
        target = cursor[stems] + np.arange(len(stems)) - start[stems]
        entries[target], tf[target] = chunk_entries, chunk_tf
        cursor += here
    return offsets, entries, _bm25(df, tf, entries, lengths), tf, lengths


def _bm25(df: np.ndarray, tf: np.ndarray, entries: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Each posting's BM25 term weight (postings grouped by stem, `df` of each)."""
    total = len(lengths)
    idf = np.log1p((total - df + 0.5) / (df + 0.5)).astype(np.float32)
    average = float(lengths.mean()) if lengths.any() else 1.0
    norm = (BM25_K1 * (1 - BM25_B + BM25_B * lengths / average)).astype(np.float32)
    weights = np.repeat(idf, df) * tf * (BM25_K1 + 1) / (tf + norm[entries])
    return weights.astype(np.float32)


def _fts_query_sqlite(words: list[str]) -> str:
    # Each word quoted as an FTS5 string: nothing the user types is FTS syntax.
    return " OR ".join('"' + word.replace('"', '""') + '"' for word in words)


def search_entries(session: Session, query: str, limit: int) -> list[tuple[int, float]]:
    """Knowledge entry ids with a BM25-style score scaled to 0..1 (best = 1), best first."""
    words = terms(query)[:MAX_SEARCH_TERMS]
    if not words:
        return []
    if session.get_bind().dialect.name == "sqlite":
        rows = session.execute(
            text(
                "SELECT rowid, -bm25(knowledge_fts, 2.0, 1.0) AS score FROM knowledge_fts "
                "WHERE knowledge_fts MATCH :query ORDER BY score DESC LIMIT :limit"
            ),
            {"query": _fts_query_sqlite(words), "limit": limit},
        ).all()
    else:
        names = [f"w{i}" for i in range(len(words))]
        tsquery = " || ".join(f"plainto_tsquery('english', :{name})" for name in names)
        statement = text(
            "SELECT id, ts_rank_cd(to_tsvector('english', title || ' ' || body), q) AS score "
            f"FROM knowledge_entry, ({'SELECT ' + tsquery}) AS t(q) "
            "WHERE to_tsvector('english', title || ' ' || body) @@ q "
            "ORDER BY score DESC LIMIT :limit"
        ).bindparams(*(bindparam(name) for name in names))
        rows = session.execute(
            statement, {"limit": limit, **dict(zip(names, words, strict=True))}
        ).all()
    if not rows:
        return []
    best = max(float(score) for _, score in rows) or 1.0
    return [
        (int(entry_id), float(score) / best) for entry_id, score in rows if not math.isnan(score)
    ]
