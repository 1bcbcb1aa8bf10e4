"""`expertise`: show, tag, untag, verify and self-declare skills."""

from __future__ import annotations

import re

from bot import messages
from bot.db.models import Identity, Person, Role
from bot.router import Context, Router, UsageError
from bot.services import accounts, expertise, people, presence
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


def _link(ctx: Context, actor: Person) -> Reply:
    """`expertise link @account handle`: the mentioned platform account is the person
    with that handle's. The mention names an account through the person it belongs to
    now (the adapter may just have made one for it): their account on this platform."""
    words = ctx.args.split()[1:]
    tokens = [w for w in words if ctx.is_mention(w)]
    handles = [w for w in words if not ctx.is_mention(w)]
    if len(tokens) == 2 and not handles:
        token, handle = tokens[0], tokens[1]
    elif len(tokens) == 1 and len(handles) == 1:
        token, handle = tokens[0], handles[0]
    else:
        raise UsageError(messages.LINK_USAGE)
    person = (
        ctx.person_for(handle) if ctx.is_mention(handle) else people.by_key(ctx.session, handle)
    )
    # Before anything is looked up for them: a refused linker learns nothing.
    accounts.require_linker(actor, person)
    if person is None:
        raise UsageError(messages.UNKNOWN_PERSON.format(token=handle[:120]))
    mentioned = ctx.person_for(token)
    if mentioned is None:
        raise UsageError(messages.UNKNOWN_PERSON.format(token=token[:120]))
    platform = ctx.command.platform
    if platform not in accounts.CHAT_PLATFORMS:
        raise UsageError(messages.LINK_IN_CHAT_ONLY)
    identity = _account_of(mentioned, platform, token)
    where = accounts.platform_name(platform)
    account = identity.external_id
    if mentioned.id == person.id:
        return Reply.notice(
            messages.ALREADY_LINKED.format(
                account=account, platform=where, name=person.display_name
            )
        )
    if _made_for_the_account(mentioned, platform):
        dropped = mentioned.key
        accounts.merge(ctx.session, person, mentioned, actor_label=actor.key, actor_id=actor.id)
        text = messages.LINKED_MERGED.format(
            account=account,
            platform=where,
            name=person.display_name,
            handle=person.key,
            dropped=dropped,
        )
        return Reply.notice(text, "success")
    # Someone real has it: link_by_hand refuses, saying how to merge if they are one.
    accounts.link_by_hand(
        ctx.session, person, platform, account, actor_label=actor.key, actor_id=actor.id
    )
    return Reply.notice(
        messages.LINKED.format(
            account=account, platform=where, name=person.display_name, handle=person.key
        ),
        "success",
    )


def _account_of(person: Person, platform: str, token: str) -> Identity:
    """The person's account on the platform; of several, the one the token spells."""
    found = [i for i in person.identities if i.platform == platform]
    if len(found) > 1:
        spelled = [i for i in found if _spells(token, i.external_id)]
        found = spelled if len(spelled) == 1 else found
    where = accounts.platform_name(platform)
    if not found:
        raise UsageError(messages.LINK_NO_ACCOUNT.format(name=person.display_name, platform=where))
    if len(found) > 1:
        listed = ", ".join(sorted(i.external_id for i in found))
        raise UsageError(
            messages.LINK_WHICH_ACCOUNT.format(
                name=person.display_name, count=len(found), platform=where, accounts=listed
            )
        )
    return found[0]


def _spells(token: str, external_id: str) -> bool:
    """The token holds the id whole (`<@U0B|name>` spells U0B, not U0)."""
    pattern = rf"(?<![0-9A-Za-z]){re.escape(external_id)}(?![0-9A-Za-z])"
    return re.search(pattern, token, re.IGNORECASE) is not None


def _made_for_the_account(person: Person, platform: str) -> bool:
    """A record the platform's first contact made, that nobody has built on: no skills,
    no role. Merging it loses nothing; anyone else is merged only on purpose."""
    return person.origin == platform and not person.skills and person.role == Role.AGENT


def manage_expertise(ctx: Context) -> Reply:
    if ctx.args.split()[:1] and ctx.args.split()[0].lower() == "link":
        # Before mentions are read: a refused linker learns nothing of who exists.
        return _link(ctx, ctx.actor())
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
        usage="expertise [show|tag|untag|verify] [@person] [tag[:level] …], "
        "expertise link @account handle",
        summary="see and manage expertise; leads tag and verify their team's; admins link accounts",
    )(manage_expertise)
