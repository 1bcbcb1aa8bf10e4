"""The knowledge base: entries, their tags and authors, and search."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from rapidfuzz import fuzz
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from bot.db.models import KnowledgeEntry, Person, Tag

WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*", re.UNICODE)
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "how",
        "i",
        "in",
        "is",
        "it",
        "my",
        "of",
        "on",
        "or",
        "our",
        "the",
        "to",
        "what",
        "when",
        "where",
        "who",
        "why",
        "with",
        "you",
        "your",
        "me",
        "we",
        "they",
        "this",
        "that",
        "there",
        "customer",
        "customers",
        "about",
        "has",
        "have",
        "need",
        "help",
    ]
)
MAX_QUERY_CHARS = 2_000
CANDIDATES = 200


def clean_text(text: str) -> str:
    """PostgreSQL refuses NUL in text, and no user means one: drop it everywhere."""
    return text.replace("\x00", "")


def terms(text: str) -> list[str]:
    """Lower-cased content words, in order, without repeats."""
    words = (w.lower() for w in WORD.findall(clean_text(text)[:MAX_QUERY_CHARS]))
    return list(dict.fromkeys(w for w in words if w not in STOPWORDS and len(w) > 1))


def content_key(title: str, body: str) -> str:
    normal = " ".join(clean_text(title).split()).lower() + "\n" + " ".join(body.split()).lower()
    return hashlib.sha256(normal.encode()).hexdigest()


def like_pattern(word: str) -> str:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@dataclass(frozen=True)
class Hit:
    entry: KnowledgeEntry
    score: float  # 0..1
    matched: tuple[str, ...]


def search(session: Session, query: str, limit: int = 5) -> list[Hit]:
    """Entries sharing content words with the query, best first."""
    words = terms(query)[:12]
    if not words:
        return []
    title, body = func.lower(KnowledgeEntry.title), func.lower(KnowledgeEntry.body)
    clauses = [
        column.like(like_pattern(word), escape="\\") for word in words for column in (title, body)
    ]
    entries = session.scalars(
        select(KnowledgeEntry)
        .where(or_(*clauses))
        .options(selectinload(KnowledgeEntry.tags), selectinload(KnowledgeEntry.authors))
        .limit(CANDIDATES * 5)
    ).all()
    hits = []
    for entry in entries:
        text = f"{entry.title}\n{entry.body}".lower()
        matched = tuple(w for w in words if w in text)
        coverage = len(matched) / len(words)
        closeness = fuzz.token_set_ratio(" ".join(words), entry.title.lower()) / 100
        hits.append(Hit(entry, round(0.7 * coverage + 0.3 * closeness, 4), matched))
    hits.sort(key=lambda hit: (-hit.score, -hit.entry.helpful_count, hit.entry.id))
    return hits[:limit]


def get(session: Session, entry_id: int) -> KnowledgeEntry | None:
    return session.get(KnowledgeEntry, entry_id)


def add_entry(
    session: Session, title: str, body: str, tags: list[Tag], authors: list[Person]
) -> tuple[KnowledgeEntry, bool]:
    """Create an entry, or update the one with the same content; True when created."""
    title, body = clean_text(title).strip(), clean_text(body).strip()
    key = content_key(title, body)
    entry = session.scalar(select(KnowledgeEntry).where(KnowledgeEntry.content_key == key))
    created = entry is None
    if entry is None:
        entry = KnowledgeEntry(title=title, body=body, content_key=key)
        session.add(entry)
    if list(entry.tags) != tags:
        entry.tags = tags
    if list(entry.authors) != authors:
        entry.authors = authors
    return entry, created
