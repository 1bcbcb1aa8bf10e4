"""Tags and skills: tag, untag, verify and self-declare, with permissions and audit."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from rapidfuzz import fuzz, process
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from bot import messages
from bot.db.models import Person, Skill, SkillSource, Tag, TagAlias
from bot.services import permissions
from bot.services.audit import record

DEFAULT_LEVEL = 3
MAX_TAG_CHARS = 120
_SPACES = re.compile(r"\s+")


class UnknownTag(LookupError):
    def __init__(self, name: str, suggestions: list[str]) -> None:
        super().__init__(name)
        self.name = name
        self.suggestions = suggestions


@dataclass(frozen=True)
class SkillSpec:
    tag: str
    level: int = DEFAULT_LEVEL
    verified: bool = False


def normalise_tag(name: str) -> str:
    return _SPACES.sub(" ", name.replace("\x00", "").replace("_", " ").strip().lower())


def valid_tag_name(text: str) -> str:
    """The normalised tag name; raises ValueError with a reason."""
    name = normalise_tag(text)
    if not name:
        raise ValueError(messages.EMPTY_TAG)
    if len(name) > MAX_TAG_CHARS:
        raise ValueError(messages.TAG_TOO_LONG.format(limit=MAX_TAG_CHARS))
    return name


def parse_skill_spec(text: str) -> SkillSpec:
    """`refunds`, `refunds:4` or `prepaid top-up:2`; raises ValueError with a reason."""
    name, sep, level_text = text.strip().rpartition(":")
    if not sep:
        name, level_text = level_text, ""
    name = valid_tag_name(name)
    if not level_text.strip():
        return SkillSpec(name)
    if not level_text.strip().isdigit() or not 1 <= int(level_text) <= 5:
        raise ValueError(messages.BAD_LEVEL.format(level=level_text.strip()))
    return SkillSpec(name, int(level_text))


def find_tag(session: Session, name: str) -> Tag | None:
    name = normalise_tag(name)
    tag = session.scalar(select(Tag).where(Tag.name == name))
    if tag is None:
        tag = session.scalar(select(Tag).join(TagAlias).where(TagAlias.alias == name))
    return tag


def suggest_tags(session: Session, name: str, limit: int = 3) -> list[str]:
    vocabulary = list(session.scalars(select(Tag.name)))
    found = process.extract(normalise_tag(name), vocabulary, scorer=fuzz.WRatio, limit=limit)
    return [tag for tag, score, _ in found if score >= 60]


def require_tag(session: Session, name: str) -> Tag:
    tag = find_tag(session, name)
    if tag is None:
        raise UnknownTag(name, suggest_tags(session, name))
    return tag


def ensure_tag(session: Session, name: str, parent: Tag | None = None) -> Tag:
    tag = find_tag(session, name)
    if tag is None:
        tag = Tag(name=normalise_tag(name), parent=parent)
        session.add(tag)
        session.flush()
    return tag


def skills_of(session: Session, person: Person) -> list[Skill]:
    return list(
        session.scalars(
            select(Skill)
            .where(Skill.person_id == person.id)
            .options(selectinload(Skill.tag), selectinload(Skill.verified_by))
            .order_by(Skill.level.desc())
        )
    )


def _skill(session: Session, person: Person, tag: Tag) -> Skill | None:
    return session.scalar(select(Skill).where(Skill.person_id == person.id, Skill.tag_id == tag.id))


def tag_person(
    session: Session, actor: Person, target: Person, spec: SkillSpec, now: datetime
) -> Skill:
    """Give `target` a skill. Your own is self-declared; a lead's tag is verified by them."""
    tag = require_tag(session, spec.tag)
    own = actor.id == target.id
    # Your own is self-declared; someone else's is a lead's word, so it verifies it too.
    permissions.require_profile_editor(actor, target, permissions.TAG)
    if not own:
        permissions.require_verifier(actor, target)
    skill = _skill(session, target, tag)
    if skill is None:
        skill = Skill(person=target, tag=tag, source=SkillSource.SELF)
        session.add(skill)
    elif own and spec.level > skill.level and skill.verified:
        # Raising your own verified level needs a lead's word again.
        skill.verified_at, skill.verified_by = None, None
    skill.level = spec.level
    if not own:
        skill.source = SkillSource.LEAD
        skill.verified_at, skill.verified_by = now, actor
    session.flush()
    record(
        session,
        actor.id,
        permissions.TAG,
        f"person:{target.key}",
        tag=tag.name,
        level=spec.level,
        verified=skill.verified_at is not None,
    )
    return skill


def untag_person(session: Session, actor: Person, target: Person, tag_name: str) -> Tag:
    tag = require_tag(session, tag_name)
    permissions.require_profile_editor(actor, target, permissions.UNTAG)
    skill = _skill(session, target, tag)
    if skill is None:
        raise LookupError(messages.NO_SUCH_SKILL.format(name=target.display_name, tag=tag.name))
    session.delete(skill)
    record(session, actor.id, permissions.UNTAG, f"person:{target.key}", tag=tag.name)
    return tag


def verify_skill(
    session: Session, actor: Person, target: Person, tag_name: str, now: datetime
) -> Skill:
    tag = require_tag(session, tag_name)
    permissions.require_verifier(actor, target, tag=tag.name)
    skill = _skill(session, target, tag)
    if skill is None:
        raise LookupError(messages.NO_SUCH_SKILL.format(name=target.display_name, tag=tag.name))
    skill.verified_at, skill.verified_by = now, actor
    record(
        session,
        actor.id,
        permissions.VERIFY,
        f"person:{target.key}",
        tag=tag.name,
        level=skill.level,
    )
    return skill


def tags_named(session: Session, text: str) -> list[Tag]:
    """`refunds, prepaid sim`: existing tags only; ValueError naming the unknown one."""
    tags: list[Tag] = []
    for name in (part for part in text.replace(";", ",").split(",") if part.strip()):
        clean = valid_tag_name(name)
        tag = find_tag(session, clean)
        if tag is None:
            suggestions = suggest_tags(session, clean)
            if suggestions:
                raise ValueError(
                    messages.UNKNOWN_TAG_SUGGEST.format(
                        name=clean, suggestions=", ".join(f"'{s}'" for s in suggestions)
                    )
                )
            raise ValueError(messages.UNKNOWN_TAG.format(name=clean))
        if tag not in tags:
            tags.append(tag)
    return tags
