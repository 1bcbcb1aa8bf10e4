"""Knowledge gaps: questions nobody could answer, grouped by similar wording (rapidfuzz,
in a fixed order, so the same log always gives the same groups), and stale entries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from rapidfuzz import fuzz, process
from sqlalchemy import distinct, func, select, true
from sqlalchemy.orm import Session, selectinload

from bot.db.models import (
    KnowledgeEntry,
    Person,
    QueryLog,
    Tag,
    TagAlias,
)
from bot.services.analytics.scope import Scope
from bot.text import terms

# A gap question joins a group when its content words (stopwords dropped) reach this
# rapidfuzz token_set_ratio with any wording already in it.
GAP_SIMILARITY = 75
# A gap group's suggested tag must match this well (rapidfuzz WRatio).
TAG_SUGGESTION = 70
GAP_QUESTIONS = 5000  # distinct questions looked at, most asked first
STALE_DAYS = 180


@dataclass(frozen=True)
class GapGroup:
    label: str  # the most asked wording
    count: int  # questions in the group
    askers: int  # distinct people (counted per wording, so an upper bound)
    last_asked: datetime
    questions: tuple[tuple[str, int], ...]  # each wording and how often
    tag: str | None  # the nearest existing tag, for "tag someone"


def gap_groups(session: Session, since: datetime, scope: Scope) -> list[GapGroup]:
    """Questions that found nobody clearly, grouped by similar wording, most asked first."""
    wording = func.lower(func.trim(QueryLog.text))
    asker_scope = (
        true()
        if scope.team_ids is None
        else QueryLog.person_id.in_(select(Person.id).where(scope.where(Person.team_id)))
    )
    rows = session.execute(
        select(
            wording,
            func.count(QueryLog.id),
            func.count(distinct(QueryLog.person_id)),
            func.max(QueryLog.created_at),
        )
        .where(QueryLog.confident.is_(False), QueryLog.created_at >= since, asker_scope)
        .group_by(wording)
        .order_by(func.count(QueryLog.id).desc(), wording)
        .limit(GAP_QUESTIONS)
    ).all()
    groups: list[_Group] = []
    # Every wording seen so far, in content words, and the group it joined.
    seen: list[str] = []
    owner: list[int] = []
    for text, count, askers, last in rows:
        words = " ".join(terms(text)) or text
        found = process.extractOne(
            words, seen, scorer=fuzz.token_set_ratio, score_cutoff=GAP_SIMILARITY
        )
        if found is None:
            groups.append(_Group(text, last))
        index = len(groups) - 1 if found is None else owner[found[2]]
        seen.append(words)
        owner.append(index)
        group = groups[index]
        group.questions.append((text, int(count)))
        group.askers += int(askers)
        group.last = max(group.last, last)
    vocabulary = _tag_vocabulary(session)
    result = [
        GapGroup(
            label=group.label,
            count=sum(count for _, count in group.questions),
            askers=group.askers,
            last_asked=group.last,
            questions=tuple(group.questions),
            tag=_nearest_tag(group.label, vocabulary),
        )
        for group in groups
    ]
    result.sort(key=lambda g: (-g.count, g.label))
    return result


@dataclass
class _Group:
    label: str
    last: datetime
    askers: int = 0
    questions: list[tuple[str, int]] = field(default_factory=list)


def _tag_vocabulary(session: Session) -> dict[str, str]:
    """Every tag name and alias → the tag's name."""
    vocabulary = {name: name for (name,) in session.execute(select(Tag.name))}
    aliases = select(TagAlias.alias, Tag.name).join(Tag, Tag.id == TagAlias.tag_id)
    vocabulary.update({alias: name for alias, name in session.execute(aliases)})
    return vocabulary


def _nearest_tag(text: str, vocabulary: dict[str, str]) -> str | None:
    """The tag a question names (its longest name or alias in it), else the closest one."""
    named = [word for word in vocabulary if re.search(r"\b" + re.escape(word) + r"\b", text)]
    if named:
        return vocabulary[min(named, key=lambda word: (-len(word), word))]
    found = process.extractOne(
        text, sorted(vocabulary), scorer=fuzz.WRatio, score_cutoff=TAG_SUGGESTION
    )
    return vocabulary[found[0]] if found else None


def stale_entries(session: Session, now: datetime, limit: int = 50) -> list[KnowledgeEntry]:
    """Entries nobody has touched for STALE_DAYS, oldest first: worth a review."""
    return list(
        session.scalars(
            select(KnowledgeEntry)
            .where(KnowledgeEntry.updated_at < now - timedelta(days=STALE_DAYS))
            .options(selectinload(KnowledgeEntry.authors), selectinload(KnowledgeEntry.tags))
            .order_by(KnowledgeEntry.updated_at, KnowledgeEntry.id)
            .limit(limit)
        )
    )
