"""`kb …`: search the knowledge base, read, edit and delete entries, mark one helpful."""

from __future__ import annotations

from bot import messages
from bot.db.models import KnowledgeEntry
from bot.router import Context, Router, UsageError
from bot.services import expertise, knowledge, permissions
from bot.text import parse_id
from bot.types import Form, FormField, Reply, Text

SUBCOMMANDS = {"show", "edit", "delete", "helpful"}


def _entry(ctx: Context, token: str) -> KnowledgeEntry:
    number = parse_id(token)
    if number is None:
        raise UsageError(messages.KB_USAGE)
    entry = knowledge.get(ctx.session, number)
    if entry is None:
        raise UsageError(messages.KB_NOT_FOUND.format(id=number))
    return entry


def search_kb(ctx: Context) -> Reply:
    words = ctx.args.split()
    if not words:
        raise UsageError(messages.KB_USAGE)
    sub = words[0].lower()
    if sub in SUBCOMMANDS and len(words) > 1 and words[1].lstrip("#").isdigit():
        entry = _entry(ctx, words[1])
        rest = ctx.args.split(None, 2)[2] if len(words) > 2 else ""
        if sub == "show":
            return _show(entry)
        if sub == "helpful":
            return _helpful(ctx, entry)
        if sub == "delete":
            knowledge.delete(ctx.session, entry, ctx.actor())
            return Reply.notice(
                messages.KB_DELETED.format(id=entry.id, title=entry.title[:80]), "success"
            )
        if not rest.strip():
            return _edit_form(ctx, entry)
        title, _, remainder = rest.partition("|")
        body, bar, tag_text = remainder.partition("|")
        return _edit(ctx, entry, title, body, tag_text if bar else None)
    if sub in SUBCOMMANDS and len(words) == 1:
        raise UsageError(messages.KB_USAGE)
    query = " ".join(words)
    with ctx.reading() as read:  # a search writes nothing: no write lock held
        hits = knowledge.search(read.session, query, limit=5)
        if not hits:
            return Reply.notice(messages.KB_NONE.format(query=query[:80]))
        return Reply.of(
            Text(messages.KB_HEADER.format(query=query[:80])),
            *(knowledge.as_article(hit.entry, hit.score) for hit in hits),
        )


def _show(entry: KnowledgeEntry) -> Reply:
    authors = ", ".join(author.display_name for author in entry.authors)
    return Reply.of(
        knowledge.as_article(entry, 0.0, full=True),
        Text(messages.KB_AUTHORS.format(names=authors or "nobody yet")),
    )


def _helpful(ctx: Context, entry: KnowledgeEntry) -> Reply:
    count, counted = knowledge.mark_helpful(ctx.session, entry, ctx.actor())
    text = messages.KB_HELPFUL if counted else messages.KB_HELPFUL_AGAIN
    return Reply.notice(text.format(id=entry.id, count=count), "success" if counted else "info")


def helpful_button(ctx: Context) -> Reply:
    return _helpful(ctx, _entry(ctx, ctx.args))


def _edit(
    ctx: Context, entry: KnowledgeEntry, title: str, body: str, tag_text: str | None
) -> Reply:
    try:
        tags = expertise.tags_named(ctx.session, tag_text) if tag_text is not None else None
        knowledge.edit(ctx.session, entry, ctx.actor(), title=title, body=body, tags=tags)
    except ValueError as error:
        raise UsageError(str(error)) from error
    return Reply.notice(messages.KB_EDITED.format(id=entry.id), "success")


def _edit_form(ctx: Context, entry: KnowledgeEntry) -> Reply:
    permissions.require_knowledge_editor(ctx.actor(), entry)
    return Reply.of(
        Form(
            title=f"Edit knowledge entry #{entry.id}",
            action_id="kb.edit.submit",
            value=f"{entry.id}:{entry.version}",
            fields=(
                FormField("title", "Title", value=entry.title),
                FormField("answer", "Answer", kind="multiline", value=entry.body),
                FormField(
                    "tags",
                    "Tags (comma-separated)",
                    required=False,
                    value=", ".join(t.name for t in entry.tags),
                ),
            ),
        )
    )


def edit_submit(ctx: Context) -> Reply:
    entry_token, _, version = ctx.args.partition(":")
    entry = _entry(ctx, entry_token)
    if version.isascii() and version.isdigit() and int(version) != entry.version:
        return Reply.of(Text(messages.KB_EDIT_CONFLICT.format(id=entry.id)), *_show(entry).elements)
    values = ctx.command.values
    return _edit(
        ctx, entry, values.get("title", ""), values.get("answer", ""), values.get("tags", "")
    )


def register(router: Router) -> None:
    router.command(
        "kb",
        aliases=("knowledge",),
        usage="kb <words> | kb show N | kb edit N | kb delete N | kb helpful N",
        summary="search the knowledge base, and keep it right",
    )(search_kb)
    router.action("kb.helpful")(helpful_button)
    router.action("kb.edit.submit")(edit_submit)
