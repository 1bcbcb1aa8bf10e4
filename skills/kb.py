"""`kb <words>`: search the knowledge base; `kb show N` reads one entry."""

from __future__ import annotations

from bot import messages
from bot.router import Context, Router, UsageError
from bot.services import knowledge
from bot.types import Reply, Text


def search_kb(ctx: Context) -> Reply:
    words = ctx.args.split()
    if not words:
        raise UsageError(messages.KB_USAGE)
    if words[0].lower() == "show":
        number = words[1].lstrip("#") if len(words) > 1 else ""
        if not number.isdigit():
            raise UsageError(messages.KB_USAGE)
        entry = knowledge.get(ctx.session, int(number))
        if entry is None:
            raise UsageError(messages.KB_NOT_FOUND.format(id=number[:12]))
        authors = ", ".join(author.display_name for author in entry.authors)
        return Reply.of(
            knowledge.as_article(entry, 0.0, full=True),
            Text(messages.KB_AUTHORS.format(names=authors)),
        )
    query = " ".join(words)
    hits = knowledge.search(ctx.session, query, limit=5)
    if not hits:
        return Reply.notice(messages.KB_NONE.format(query=query[:80]))
    return Reply.of(
        Text(messages.KB_HEADER.format(query=query[:80])),
        *(knowledge.as_article(hit.entry, hit.score) for hit in hits),
    )


def register(router: Router) -> None:
    router.command(
        "kb",
        aliases=("knowledge",),
        usage="kb <words> | kb show <number>",
        summary="search the knowledge base",
    )(search_kb)
