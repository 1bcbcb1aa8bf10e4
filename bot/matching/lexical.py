"""Lexical signals: tag names found in the question, and full-text search over knowledge.

The matcher's full-text evidence is `FullTextIndex`, BM25 held in memory beside
the rest of the matching index: the same scores on SQLite and PostgreSQL, and
no database query per question. `search_entries` is the database's own
full-text search, for the `kb` command.
"""

from __future__ import annotations

import math
from array import array
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

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


class FullTextIndex:
    """BM25 over knowledge entries, in memory: one posting list per word stem.

    The postings of all stems are stored end to end (`_entries`, `_weights`,
    sliced by `_offsets`), each with its BM25 term weight computed at build
    time, so a search is one weighted count over the question's postings and a
    partial sort.
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
        self.entry_ids = np.frombuffer(ids, dtype=np.int64)
        # Positions in id order, for finding entries by id (`coverage`): None when the
        # entries came in id order, as the knowledge index reads them.
        ordered = bool(np.all(self.entry_ids[1:] > self.entry_ids[:-1]))
        self._by_id = None if ordered else np.argsort(self.entry_ids, kind="stable")
        self._offsets, self._entries, self._weights = _postings(len(vocabulary), chunks)

    def __len__(self) -> int:
        return len(self.entry_ids)

    @property
    def nbytes(self) -> int:
        arrays = (self.entry_ids, self._offsets, self._entries, self._weights)
        return sum(a.nbytes for a in arrays)

    def search(self, query: str, limit: int) -> list[tuple[int, float]]:
        """Entry ids with their BM25 score scaled to 0..1 (best = 1), best first.

        Any of the question's words may match; ties go to the entry added first.
        """
        stems = {stem(word) for word in terms(query)[:MAX_SEARCH_TERMS]}
        found = [self.vocabulary[s] for s in stems if s in self.vocabulary]
        if not found or limit <= 0:
            return []
        spans = [slice(self._offsets[term], self._offsets[term + 1]) for term in found]
        matched = np.concatenate([self._entries[span] for span in spans])
        weights = np.concatenate([self._weights[span] for span in spans])
        # Each entry's score in one pass (a fancy-index add per word cost twice as much).
        scores = np.bincount(matched, weights=weights, minlength=len(self.entry_ids))
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
        hits = np.flatnonzero(scores >= floor)
        if len(hits) > limit:
            values = scores[hits]
            kth = -np.partition(-values, limit - 1)[limit - 1]
            hits = hits[values >= kth]
        hits = hits[np.lexsort((hits, -scores[hits]))][:limit]
        best = float(scores[hits[0]])
        return [
            (int(entry_id), float(score) / best)
            for entry_id, score in zip(self.entry_ids[hits], scores[hits], strict=True)
        ]

    def coverage(self, words: Iterable[str], entry_ids: Sequence[int]) -> dict[int, int]:
        """Entry id → how many of the stems of `words` it contains, for the entries
        indexed: from the postings, without reading or splitting the entries' text."""
        ids = np.asarray(entry_ids, dtype=np.int64)
        if not len(self.entry_ids) or not len(ids):
            return {}
        # Each entry's position, by bisection over the ids in order.
        found = np.searchsorted(self.entry_ids, ids, sorter=self._by_id)
        found = np.minimum(found, len(self.entry_ids) - 1)
        positions = found if self._by_id is None else self._by_id[found]
        indexed = self.entry_ids[positions] == ids
        counts = np.zeros(len(ids), dtype=np.int64)
        for word in {stem(w) for w in words}:
            term = self.vocabulary.get(word)
            if term is None:
                continue
            postings = self._entries[self._offsets[term] : self._offsets[term + 1]]
            at = np.minimum(np.searchsorted(postings, positions), len(postings) - 1)
            counts += postings[at] == positions
        return {
            int(entry_id): int(count)
            for entry_id, count, known in zip(ids, counts, indexed, strict=True)
            if known
        }


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
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offsets per stem, then entry positions and BM25 term weights grouped by stem.

    Each chunk's postings are in stem order already: they are copied into place
    chunk after chunk (so each stem's entries stay in order) and let go of.
    """
    lengths = np.concatenate([chunk[3] for chunk in chunks]) if chunks else np.zeros(0)
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
    total = len(lengths)
    idf = np.log1p((total - df + 0.5) / (df + 0.5)).astype(np.float32)
    average = float(lengths.mean()) if lengths.any() else 1.0
    norm = (BM25_K1 * (1 - BM25_B + BM25_B * lengths / average)).astype(np.float32)
    weights = np.repeat(idf, df) * tf * (BM25_K1 + 1) / (tf + norm[entries])
    return offsets, entries, weights.astype(np.float32)


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
