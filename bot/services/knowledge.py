"""The knowledge base: entries, their tags and authors, and search."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from rapidfuzz import fuzz
from sqlalchemy import delete as delete_rows
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from bot import messages
from bot.db.models import Embedding, HelpfulVote, KnowledgeEntry, Person, Tag
from bot.matching.lexical import search_entries
from bot.services import permissions
from bot.services.audit import record
from bot.text import clean_text, terms
from bot.types import Article

CANDIDATES = 50
MAX_TITLE_CHARS = 500
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
    tags = [tag.name for tag in entry.tags]
    return article(entry.id, entry.title, entry.body, tags, entry.helpful_count, score, full=full)


def article(
    entry_id: int,
    title: str,
    body: str,
    tags: list[str],
    helpful: int,
    score: float,
    *,
    full: bool = False,
) -> Article:
    return Article(
        entry_id=entry_id,
        title=title,
        snippet=body if full else body[:SNIPPET_CHARS],
        tags=tuple(tags),
        score=round(score, 4),
        helpful=helpful,
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


def edit(
    session: Session,
    entry: KnowledgeEntry,
    actor: Person,
    *,
    title: str,
    body: str,
    tags: list[Tag] | None,
) -> None:
    permissions.require_knowledge_editor(actor, entry)
    title, body = " ".join(clean_text(title).split())[:MAX_TITLE_CHARS], clean_text(body).strip()
    if not title or not body:
        raise ValueError(messages.KB_EDIT_USAGE)
    key = content_key(title, body)
    same = session.scalar(
        select(KnowledgeEntry.id).where(
            KnowledgeEntry.content_key == key, KnowledgeEntry.id != entry.id
        )
    )
    if same is not None:
        raise ValueError(messages.KB_SAME_AS.format(id=same))
    before = entry.title
    _forget_vector(session, entry.id)
    entry.title, entry.body, entry.content_key = title, body, key
    if tags is not None and list(entry.tags) != tags:
        entry.tags = tags
    record(
        session,
        actor.id,
        "edit_knowledge",
        f"knowledge:{entry.id}",
        title_before=before,
        title=title,
        as_author=any(author.id == actor.id for author in entry.authors),
    )


def delete(session: Session, entry: KnowledgeEntry, actor: Person) -> None:
    permissions.require_knowledge_deleter(actor, entry)
    record(
        session,
        actor.id,
        "delete_knowledge",
        f"knowledge:{entry.id}",
        title=entry.title,
        authors=[author.key for author in entry.authors],
        body=entry.body,
    )
    _forget_vector(session, entry.id)
    session.delete(entry)


def _forget_vector(session: Session, entry_id: int) -> None:
    """Its sentence vector no longer says what the entry says; the index makes a new one."""
    session.execute(
        delete_rows(Embedding).where(Embedding.kind == "knowledge", Embedding.item_id == entry_id)
    )


def mark_helpful(session: Session, entry: KnowledgeEntry, person: Person) -> tuple[int, bool]:
    """Count one person's vote once, however often they click; (count, counted now)."""
    counted = True
    try:
        with session.begin_nested():
            session.add(HelpfulVote(entry_id=entry.id, person_id=person.id))
    except IntegrityError:
        counted = False  # an earlier click, or a concurrent one, got there first
    count = session.scalar(
        select(func.count()).select_from(HelpfulVote).where(HelpfulVote.entry_id == entry.id)
    )
    # A set-based update: a vote does not change what the matching index holds.
    session.execute(
        update(KnowledgeEntry)
        .where(KnowledgeEntry.id == entry.id)
        .values(helpful_count=count)
        .execution_options(synchronize_session=False)
    )
    session.expire(entry, ["helpful_count"])
    return int(count or 0), counted
