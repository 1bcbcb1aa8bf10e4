"""Lexical signals: tag names found in the question, and full-text search over knowledge."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from rapidfuzz import fuzz, process
from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from bot.text import terms

FUZZY_CUTOFF = 85  # rapidfuzz ratio for a typo ("chargbak" → "chargeback")
TYPO_DISCOUNT = 0.95
MIN_FUZZY_LENGTH = 5
MAX_SEARCH_TERMS = 16


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
        self._by_stem: dict[str, list[int]] = defaultdict(list)
        for tag_id, phrase, alias in entries:
            stems = tuple(stem(word) for word in terms(phrase))
            if not stems:
                continue
            for word in set(stems):
                self._by_stem[word].append(len(self.terms))
            self.terms.append(Term(tag_id, stems, alias))
        self._vocabulary = list(self._by_stem)

    def match(self, query: str) -> dict[int, tuple[float, bool]]:
        """tag id → (strength 0..1, through an alias) for every tag the question names."""
        found: dict[str, float] = {}
        for word in {stem(w) for w in terms(query)}:
            if word in self._by_stem:
                found[word] = 1.0
            elif len(word) >= MIN_FUZZY_LENGTH:
                for near, score, _ in process.extract(
                    word, self._vocabulary, scorer=fuzz.ratio, score_cutoff=FUZZY_CUTOFF, limit=3
                ):
                    if len(near) >= MIN_FUZZY_LENGTH:
                        found[near] = max(found.get(near, 0.0), score / 100 * TYPO_DISCOUNT)
        best: dict[int, tuple[float, bool]] = {}
        candidates = {position for word in found for position in self._by_stem[word]}
        for position in candidates:
            term = self.terms[position]
            # Every word of the term must be in the question; partial names do not count.
            scores = [found.get(word, 0.0) for word in term.stems]
            if min(scores) == 0.0:
                continue
            strength = sum(scores) / len(scores) * (TYPO_DISCOUNT if term.alias else 1.0)
            if strength > best.get(term.tag_id, (0.0, False))[0]:
                best[term.tag_id] = (strength, term.alias)
        return best


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
