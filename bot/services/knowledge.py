"""The knowledge base: entries, their tags and authors, and search."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from rapidfuzz import fuzz
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from bot.db.models import KnowledgeEntry, Person, Tag
from bot.matching.lexical import search_entries
from bot.text import clean_text, terms
from bot.types import Article

CANDIDATES = 50
SNIPPET_CHARS = 240


def content_key(title: str, body: str) -> str:
    normal = " ".join(clean_text(title).split()).lower() + "\n" + " ".join(body.split()).lower()
    return hashlib.sha256(normal.encode()).hexdigest()


@dataclass(frozen=True)
class Hit:
    entry: KnowledgeEntry
    score: float  # 0..1


def search(session: Session, query: str, limit: int = 5) -> list[Hit]:
    """Full-text matches, re-scored by how much of the question they cover, best first."""
    found = dict(search_entries(session, query, CANDIDATES))
    if not found:
        return []
    words = terms(query)
    entries = session.scalars(
        select(KnowledgeEntry)
        .where(KnowledgeEntry.id.in_(found))
        .options(selectinload(KnowledgeEntry.tags), selectinload(KnowledgeEntry.authors))
    ).all()
    hits = []
    for entry in entries:
        text = f"{entry.title}\n{entry.body}".lower()
        coverage = sum(word in text for word in words) / len(words)
        closeness = fuzz.token_set_ratio(" ".join(words), entry.title.lower()) / 100
        score = 0.5 * found[entry.id] + 0.3 * coverage + 0.2 * closeness
        hits.append(Hit(entry, round(score, 4)))
    hits.sort(key=lambda hit: (-hit.score, -hit.entry.helpful_count, hit.entry.id))
    return hits[:limit]


def as_article(entry: KnowledgeEntry, score: float, *, full: bool = False) -> Article:
    """An entry as a reply element: the whole answer, or its opening lines."""
    return Article(
        entry_id=entry.id,
        title=entry.title,
        snippet=entry.body if full else entry.body[:SNIPPET_CHARS],
        tags=tuple(tag.name for tag in entry.tags),
        score=round(score, 4),
        helpful=entry.helpful_count,
    )


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
