"""`whoknows <topic>`: knowledge entries first, then ranked colleagues with reasons."""

from __future__ import annotations

from sqlalchemy import insert

from bot import messages
from bot.db.models import QueryLog
from bot.ops import metrics
from bot.router import UMBRELLA, Context, Router
from bot.services import huddles
from bot.text import MAX_QUERY_CHARS, clean_text
from bot.types import Actions, Button, Element, Notice, Option, Picker, Reply, Text
from skills.huddle import start_button_value

# One row per question, the command's only write but its answered mark: a Core insert
# (as an ORM object it went through a flush, which cost more than the insert).
_LOG = insert(QueryLog.__table__)


def who_knows(ctx: Context) -> Reply:
    query = " ".join(clean_text(ctx.args).split())
    if not query:
        return Reply.notice(messages.WHOKNOWS_EMPTY)
    elements: list[Element] = []
    if len(query) > MAX_QUERY_CHARS:
        elements.append(
            Notice(messages.TOO_LONG.format(length=len(query), limit=MAX_QUERY_CHARS), "warning")
        )
        query = query[:MAX_QUERY_CHARS]
    with ctx.reading() as read:  # ranking reads a lot; only the log below writes
        actor = read.actor_id()
        ranking = ctx.services.matcher.rank(
            read.session, query, ctx.services.clock(), requester_id=actor
        )
    ctx.session.execute(
        _LOG,
        {
            "person_id": actor,
            "platform": ctx.command.platform,
            "text": query,
            "confident": ranking.confident,
            "suggested": ",".join(c.key for c in ranking.experts) if ranking.confident else "",
            "created_at": ctx.services.clock(),
        },
    )
    metrics.answer(ctx.session, ranking.confident)
    elements.append(Text(messages.WHOKNOWS_HEADER.format(query=_shorten(query))))
    if ranking.articles:
        elements.append(Text(messages.WHOKNOWS_ARTICLES))
        for article in ranking.articles:
            elements.append(article)
            elements.append(
                Actions((Button(messages.KB_HELPFUL_BUTTON, "kb.helpful", str(article.entry_id)),))
            )
    if not ranking.confident:
        elements.append(
            Notice(messages.WHOKNOWS_NOT_CONFIDENT.format(query=_shorten(query)), "warning")
        )
        if ranking.nearest_tags:
            nearest = ", ".join(ranking.nearest_tags)
            elements.append(Text(messages.WHOKNOWS_NEAREST.format(tags=nearest)))
    # A weak guess at a person wastes a colleague's time: only clear matches show.
    if ranking.confident:
        elements.extend(ranking.experts)
        picks = huddles.choose_experts(ranking, ctx.services.settings.huddle_experts, {actor})
        if picks:
            value = start_button_value(query, picks)
            experts = Picker(
                "experts",
                messages.HUDDLE_PICK_EXPERTS,
                tuple(Option(str(c.person_id), c.name) for c in ranking.experts),
                tuple(str(i) for i in picks if any(c.person_id == i for c in ranking.experts)),
            )
            elements.append(
                Actions((Button(messages.HUDDLE_START, "huddle.start", value, "primary"),), experts)
            )
    elif not ranking.articles and not ranking.nearest_tags:
        elements.append(Text(messages.WHOKNOWS_NOBODY))
    return Reply(tuple(elements))


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def register(router: Router) -> None:
    router.command(
        UMBRELLA,
        aliases=("who", "ask"),
        usage="whoknows <topic>",
        summary="find the colleagues who know a topic, and answers that already cover it",
    )(who_knows)
