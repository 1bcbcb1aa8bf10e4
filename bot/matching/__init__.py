"""Who knows about X: candidate signals, one ranking function, availability after relevance.

Signals, each carrying the reason it can explain:
- tags: a tag name or alias found in the query, exactly or with a typo (rapidfuzz
  over the tag vocabulary, never over people); a parent tag lends its children
  part of its score and a child lends its parent less;
- knowledge evidence: people who wrote entries that match the query.
Relevance is a weighted sum (`WEIGHTS`); availability only orders people of
similar relevance and never hides anyone.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from rapidfuzz import fuzz
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from bot.db.models import Person, Skill, Tag, TagAlias
from bot.services import knowledge, presence
from bot.types import Article, PersonCard, TagMatch

WEIGHTS = {
    "tag": 1.0,  # how well the query names the tag (1 exact … 0.85 fuzzy)
    "level": 0.5,  # proficiency, level 5 = full weight
    "verified": 0.25,  # a lead vouched for it
    "evidence": 0.6,  # wrote knowledge entries that match the query
}
PARENT_SHARE = 0.6  # a child tag's holders when the query names its parent
CHILD_SHARE = 0.4  # a parent tag's holders when the query names a child
FUZZY_THRESHOLD = 85
CONFIDENT_TAG = 0.85
CONFIDENT_ARTICLE = 0.6


@dataclass(frozen=True)
class TagHit:
    tag_id: int
    name: str
    strength: float
    how: str  # "named", "alias", "typo", "parent", "child"


@dataclass
class Ranking:
    query: str
    experts: list[PersonCard]
    articles: list[Article]
    tags: list[TagHit]
    confident: bool
    nearest_tags: list[str] = field(default_factory=list)


def _phrase_strength(query_words: list[str], term: str) -> float:
    """1.0 when every word of the term is in the query, less for typos, 0 otherwise."""
    term_words = term.split()
    scores = []
    for term_word in term_words:
        best = 0.0
        for word in query_words:
            if word == term_word or (
                len(term_word) > 3 and word.rstrip("s") == term_word.rstrip("s")
            ):
                best = 1.0
                break
            if len(term_word) > 4 and len(word) > 3:
                ratio = fuzz.ratio(word, term_word)
                if ratio >= FUZZY_THRESHOLD:
                    best = max(best, ratio / 100 * 0.95)
        scores.append(best)
    if not scores or min(scores) == 0:
        return 0.0
    return sum(scores) / len(scores)


def match_tags(session: Session, query: str) -> list[TagHit]:
    words = knowledge.terms(query)
    if not words:
        return []
    tags = session.scalars(select(Tag)).all()
    aliases = session.execute(select(TagAlias.alias, TagAlias.tag_id)).all()
    best: dict[int, TagHit] = {}

    def offer(tag: Tag, strength: float, how: str) -> None:
        if strength > 0 and (tag.id not in best or best[tag.id].strength < strength):
            best[tag.id] = TagHit(tag.id, tag.name, round(strength, 4), how)

    by_id = {tag.id: tag for tag in tags}
    for tag in tags:
        strength = _phrase_strength(words, tag.name)
        offer(tag, strength, "named" if strength == 1.0 else "typo")
    for alias, tag_id in aliases:
        offer(by_id[tag_id], _phrase_strength(words, alias) * 0.95, "alias")
    direct = list(best.values())
    for hit in direct:
        for tag in tags:
            if tag.parent_id == hit.tag_id:
                offer(tag, hit.strength * PARENT_SHARE, "parent")
        parent_id = by_id[hit.tag_id].parent_id
        if parent_id is not None:
            offer(by_id[parent_id], hit.strength * CHILD_SHARE, "child")
    return sorted(best.values(), key=lambda h: -h.strength)


def _reason(skill_hits: list[tuple[TagHit, Skill]], wrote: int) -> str:
    parts = []
    for hit, skill in skill_hits[:2]:
        vouched = (
            f"verified by {skill.verified_by.display_name}"
            if skill.verified_by is not None
            else "verified"
            if skill.verified
            else "self-declared"
        )
        via = {"parent": " (part of what you asked)", "child": " (the broader topic)"}.get(
            hit.how, ""
        )
        parts.append(f"{skill.tag.name} level {skill.level}, {vouched}{via}")
    if wrote:
        parts.append(f"wrote {wrote} matching answer{'s' if wrote > 1 else ''}")
    return "; ".join(parts)


def rank(
    session: Session,
    query: str,
    now: datetime,
    *,
    requester_id: int | None = None,
    limit: int = 5,
    article_limit: int = 3,
) -> Ranking:
    tag_hits = match_tags(session, query)
    hits = knowledge.search(session, query, limit=20)
    scores: dict[int, float] = defaultdict(float)
    people: dict[int, Person] = {}
    matched: dict[int, list[tuple[TagHit, Skill]]] = defaultdict(list)

    if tag_hits:
        strength = {hit.tag_id: hit for hit in tag_hits}
        skills = session.scalars(
            select(Skill)
            .where(Skill.tag_id.in_(strength))
            .options(
                selectinload(Skill.person).selectinload(Person.presence),
                selectinload(Skill.person).selectinload(Person.team),
                selectinload(Skill.tag),
                selectinload(Skill.verified_by),
            )
        ).all()
        for skill in skills:
            hit = strength[skill.tag_id]
            value = hit.strength * (
                WEIGHTS["tag"]
                + WEIGHTS["level"] * skill.level / 5
                + WEIGHTS["verified"] * skill.verified
            )
            pid = skill.person_id
            matched[pid].append((hit, skill))
            # The best tag counts fully; further matching tags add a little.
            scores[pid] = max(scores[pid], value) + 0.1 * min(scores[pid], value)
            people[pid] = skill.person

    wrote: dict[int, int] = defaultdict(int)
    for hit in hits:
        for author in hit.entry.authors:
            wrote[author.id] += 1
            # Diminishing returns: the tenth matching answer adds less than the first.
            scores[author.id] += WEIGHTS["evidence"] * hit.score / math.sqrt(wrote[author.id])
            people[author.id] = author

    cards = []
    for pid, score in scores.items():
        person = people[pid]
        if pid == requester_id or person.deleted_at is not None:
            continue
        skill_hits = sorted(matched[pid], key=lambda hs: -hs[0].strength)
        view = presence.current(person, now)
        cards.append(
            PersonCard(
                person_id=pid,
                key=person.key,
                name=person.display_name,
                team=person.team.name if person.team else None,
                presence=view,
                tags=tuple(TagMatch(s.tag.name, s.level, s.verified) for _, s in skill_hits),
                reason=_reason(skill_hits, wrote[pid]),
                score=round(score, 4),
            )
        )
    best_score = max((c.score for c in cards), default=0.0)

    def order(card: PersonCard) -> tuple[float, ...]:
        # Relevance bands first (so a weak match never jumps a strong one), then presence.
        band = round(card.score / best_score * 4) if best_score else 0
        return (-band, presence.TIERS[card.presence.status], -card.score)

    cards.sort(key=order)
    articles = [
        Article(
            entry_id=hit.entry.id,
            title=hit.entry.title,
            snippet=hit.entry.body[:240],
            tags=tuple(t.name for t in hit.entry.tags),
            score=hit.score,
            helpful=hit.entry.helpful_count,
        )
        for hit in hits[:article_limit]
    ]
    top_tag = tag_hits[0].strength if tag_hits else 0.0
    top_article = hits[0].score if hits else 0.0
    confident = bool(cards) and (top_tag >= CONFIDENT_TAG or top_article >= CONFIDENT_ARTICLE)
    nearest = [] if confident else knowledge_nearest_tags(session, query)
    return Ranking(query, cards[:limit], articles, tag_hits, confident, nearest)


def knowledge_nearest_tags(session: Session, query: str, limit: int = 3) -> list[str]:
    from bot.services.expertise import suggest_tags

    return suggest_tags(session, query, limit)
