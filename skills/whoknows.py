"""`whoknows <topic>`: knowledge entries first, then ranked colleagues with reasons."""

from __future__ import annotations

import contextlib
import dataclasses

from sqlalchemy import insert

from bot import messages
from bot.db.models import QueryLog
from bot.ops import metrics
from bot.router import UMBRELLA, Context, Router
from bot.services import Services, huddles, learning
from bot.text import MAX_QUERY_CHARS, clean_text, parse_id
from bot.types import Actions, Button, Element, Notice, Option, Picker, Reply, Text
from skills.huddle import start_button_value

HELPFUL_ACTION = "whoknows.helpful"  # "this person helped", on each expert card
CONTACT_ACTION = "whoknows.contact"  # a Message click on an expert card (adapters send it)

# One row per question, the command's only write but its answered mark: a Core insert
# (as an ORM object it went through a flush, which cost more than the insert).
_LOG = insert(QueryLog.__table__)


def question(args: str) -> str:
    """The question as asked: its words, with one space between each."""
    return " ".join(clean_text(args).split())


def prepare(services: Services, texts: list[str]) -> None:
    """Several questions about to be asked: their vectors and nearest answers at once."""
    questions = [q[:MAX_QUERY_CHARS] for q in map(question, texts) if q]
    if questions:
        with services.db.reading() as session:
            services.matcher.prepare(session, questions, services.clock())


def who_knows(ctx: Context) -> Reply:
    query = question(ctx.args)
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
    logged = ctx.session.execute(
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
    query_id = logged.inserted_primary_key[0]
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
        for card in ranking.experts:
            value = f"{query_id}:{card.person_id}"
            elements.append(
                dataclasses.replace(
                    card,
                    buttons=(Button(messages.WHOKNOWS_HELPFUL_BUTTON, HELPFUL_ACTION, value),),
                    contact=Button(messages.WHOKNOWS_CONTACT_BUTTON, CONTACT_ACTION, value),
                )
            )
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


def _question_and_expert(value: str) -> tuple[int, int] | None:
    query, _, person = value.partition(":")
    query_id, person_id = parse_id(query), parse_id(person)
    return None if query_id is None or person_id is None else (query_id, person_id)


def helpful_expert(ctx: Context) -> Reply:
    """The asker says this colleague helped: a labelled example for the tag models."""
    parsed = _question_and_expert(ctx.args)
    if parsed is None:
        return Reply.notice(messages.WHOKNOWS_HELPFUL_BAD, "warning")
    now = ctx.services.clock()
    try:
        query_id, expert_id = parsed
        expert, counted = learning.record_helpful(
            ctx.session, query_id, ctx.actor(), expert_id, now
        )
    except learning.LearningError as error:
        return Reply.notice(str(error), "warning")
    if not counted:
        return Reply.notice(messages.WHOKNOWS_HELPFUL_AGAIN.format(name=expert.display_name))
    return Reply.notice(
        messages.WHOKNOWS_HELPFUL_THANKS.format(name=expert.display_name), "success"
    )


def contacted_expert(ctx: Context) -> Reply:
    """A Message click: evidence once no new question on the topic follows (learning.py)."""
    parsed = _question_and_expert(ctx.args)
    if parsed is None:
        return Reply(())
    now = ctx.services.clock()
    query_id, expert_id = parsed
    # The chat opens anyway; a question or colleague gone is just nothing to learn from.
    with contextlib.suppress(learning.LearningError):
        learning.record_contact(ctx.session, query_id, ctx.actor(), expert_id, now)
    return Reply(())


def _shorten(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def register(router: Router) -> None:
    router.command(
        UMBRELLA,
        aliases=("who", "ask"),
        usage="whoknows <topic>",
        summary="find the colleagues who know a topic, and answers that already cover it",
        prepare=prepare,
    )(who_knows)
    router.action(HELPFUL_ACTION)(helpful_expert)
    router.action(CONTACT_ACTION)(contacted_expert)
