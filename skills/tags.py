"""`tag …`: a tag's one-line description and example questions, which leads give.

They teach the tag's model what its questions look like (bot.services.learning),
so a tag nobody has answered yet is found by more than its name.
"""

from __future__ import annotations

from bot import messages
from bot.db.models import Tag
from bot.router import Context, Router, UsageError
from bot.services import expertise, learning
from bot.types import Reply, Text


def _tag(ctx: Context, name: str) -> Tag:
    name = name.strip()
    if not name:
        raise UsageError(messages.TAG_USAGE)
    tag = expertise.find_tag(ctx.session, name)
    if tag is None:
        suggestions = expertise.suggest_tags(ctx.session, name)
        if suggestions:
            raise UsageError(
                messages.UNKNOWN_TAG_SUGGEST.format(name=name, suggestions=", ".join(suggestions))
            )
        raise UsageError(messages.UNKNOWN_TAG.format(name=name))
    return tag


def show_tag(ctx: Context, tag: Tag) -> Reply:
    elements = [
        Text(
            messages.TAG_SHOWN.format(name=tag.name, description=tag.description)
            if tag.description
            else messages.TAG_NO_DESCRIPTION.format(name=tag.name)
        )
    ]
    examples = learning.tag_examples(ctx.session, tag)
    if examples:
        elements.append(Text(messages.TAG_EXAMPLES.format(examples="; ".join(examples))))
    return Reply(tuple(elements))


def tag_command(ctx: Context) -> Reply:
    sub, _, rest = ctx.args.strip().partition(" ")
    sub = sub.lower()
    if sub == "show":
        return show_tag(ctx, _tag(ctx, rest))
    if sub != "describe":
        raise UsageError(messages.TAG_USAGE)
    name, bar, remainder = rest.partition("|")
    if not bar:
        raise UsageError(messages.TAG_USAGE)
    description, bar, example_text = remainder.partition("|")
    examples = [e for e in example_text.split(";") if e.strip()] if bar else None
    tag = _tag(ctx, name)
    try:
        count = learning.describe_tag(
            ctx.session,
            ctx.actor(),
            tag,
            description.strip() or None,  # left empty: kept as it is
            examples,
            ctx.services.clock(),
        )
    except learning.LearningError as error:
        return Reply.notice(str(error), "warning")
    return Reply.notice(messages.TAG_DESCRIBED.format(name=tag.name, count=count), "success")


def register(router: Router) -> None:
    router.command(
        "tag",
        usage="tag show <tag> | tag describe <tag> | description | example; example",
        summary="a tag's description and example questions (leads describe them)",
    )(tag_command)
