"""`expertise`: show, tag, untag, verify and self-declare skills."""

from __future__ import annotations

import re

from bot import messages
from bot.db.models import Person
from bot.router import Context, Router, UsageError
from bot.services import expertise, presence
from bot.services.expertise import SkillSpec, UnknownTag
from bot.types import PersonCard, Reply, TagMatch, Text

# Skills are separated by commas or semicolons, or by spaces after a level ("a:4 b:2").
_SKILL_SEPARATOR = re.compile(r"[,;]|(?<=:\d)\s+")


def _split(ctx: Context) -> tuple[str, list[Person], str]:
    """The subcommand, the people mentioned, and the rest of the text."""
    words = ctx.args.split()
    sub = words.pop(0).lower() if words and not ctx.is_mention(words[0]) else "show"
    targets, rest = [], []
    for word in words:
        if ctx.is_mention(word):
            person = ctx.person_for(word)
            if person is None:
                raise UsageError(messages.UNKNOWN_PERSON.format(token=word))
            targets.append(person)
        else:
            rest.append(word)
    return sub, targets, " ".join(rest)


def _specs(text: str) -> list[SkillSpec]:
    parts = [part for part in _SKILL_SEPARATOR.split(text) if part.strip()]
    if not parts:
        raise UsageError(messages.EXPERTISE_USAGE)
    try:
        return [expertise.parse_skill_spec(part) for part in parts]
    except ValueError as error:
        raise UsageError(str(error)) from None


def _unknown_tag(error: UnknownTag) -> UsageError:
    if error.suggestions:
        suggestions = ", ".join(f"'{s}'" for s in error.suggestions)
        return UsageError(
            messages.UNKNOWN_TAG_SUGGEST.format(name=error.name, suggestions=suggestions)
        )
    return UsageError(messages.UNKNOWN_TAG.format(name=error.name))


def _profile(ctx: Context, person: Person) -> Reply:
    skills = expertise.skills_of(ctx.session, person)
    view = presence.current(person, ctx.services.clock())
    if not skills:
        return Reply.of(Text(messages.EXPERTISE_NONE.format(name=person.display_name)))
    card = PersonCard(
        person_id=person.id,
        key=person.key,
        name=person.display_name,
        team=person.team.name if person.team else None,
        presence=view,
        tags=tuple(TagMatch(s.tag.name, s.level, s.verified) for s in skills),
        reason=f"works {presence.format_hours(person)}",
    )
    return Reply.of(Text(messages.EXPERTISE_HEADER.format(name=person.display_name)), card)


def manage_expertise(ctx: Context) -> Reply:
    sub, targets, rest = _split(ctx)
    actor = ctx.actor()
    now = ctx.services.clock()
    target = targets[0] if targets else actor
    try:
        if sub == "show":
            return _profile(ctx, target)
        if sub in {"tag", "declare", "add"}:
            specs = _specs(rest)
            for spec in specs:
                expertise.tag_person(ctx.session, actor, target, spec, now)
            listed = ", ".join(f"{spec.tag} (level {spec.level})" for spec in specs)
            if target.id == actor.id:
                return Reply.notice(messages.SELF_DECLARED.format(skills=listed), "success")
            return Reply.notice(
                messages.TAGGED.format(name=target.display_name, skills=listed), "success"
            )
        if sub in {"untag", "remove"}:
            tag = expertise.untag_person(ctx.session, actor, target, _one_tag(rest))
            return Reply.notice(
                messages.UNTAGGED.format(tag=tag.name, name=target.display_name), "success"
            )
        if sub == "verify":
            skill = expertise.verify_skill(ctx.session, actor, target, _one_tag(rest), now)
            return Reply.notice(
                messages.VERIFIED.format(
                    name=target.display_name, tag=skill.tag.name, level=skill.level
                ),
                "success",
            )
    except UnknownTag as error:
        raise _unknown_tag(error) from None
    except LookupError as error:
        raise UsageError(str(error)) from None
    raise UsageError(messages.EXPERTISE_USAGE)


def _one_tag(text: str) -> str:
    if not text.strip():
        raise UsageError(messages.EXPERTISE_USAGE)
    return text.split(":")[0]


def register(router: Router) -> None:
    router.command(
        "expertise",
        aliases=("skills", "profile"),
        usage="expertise [show|tag|untag|verify] [@person] [tag[:level] …]",
        summary="see and manage expertise; leads tag and verify their team's",
    )(manage_expertise)
