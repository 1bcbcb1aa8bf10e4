"""`huddle …`: open a huddle thread with experts, follow it, resolve it into knowledge."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

from bot import messages
from bot.db.models import Person
from bot.router import Context, Router, UsageError
from bot.services import accounts, expertise, huddles, permissions
from bot.text import MAX_ID, parse_id
from bot.types import Form, FormField, Reply, Text

SUBCOMMANDS = {"list", "resolve", "cancel", "reopen", "decline", "reply"}
BUTTON_TOPIC_CHARS = 500


@contextmanager
def _friendly() -> Iterator[None]:
    try:
        yield
    except ValueError as error:  # HuddleError, and bad tag names
        raise UsageError(str(error)) from error


def _huddle_id(token: str) -> int:
    number = parse_id(token)
    if number is None:
        raise UsageError(messages.HUDDLE_USAGE)
    return number


def _names(people: list[Person]) -> str:
    return ", ".join(p.display_name for p in people)


def _opened(ctx: Context, opened: huddles.Opened) -> Reply:
    seconds = ctx.services.settings.escalation_timeout_s
    minutes = round(seconds / 60)
    wait = (
        f"{seconds} seconds" if seconds < 60 else f"{minutes} minute{'s' if minutes != 1 else ''}"
    )
    return Reply.notice(
        messages.HUDDLE_OPENED.format(
            id=opened.huddle.id,
            channel=huddles.channel_label(opened.huddle.channel_ref),
            names=_names(opened.invited),
            minutes=wait,
        ),
        "success",
    )


def huddle(ctx: Context) -> Reply:
    first, _, rest = ctx.args.strip().partition(" ")
    sub = first.lower()
    if not first:
        raise UsageError(messages.HUDDLE_USAGE)
    if sub not in SUBCOMMANDS:
        return _open(ctx, ctx.args)
    if sub == "list":
        return _list(ctx, team=rest.strip().lower() == "team")
    number, _, text = rest.strip().partition(" ")
    huddle_id = _huddle_id(number)
    if sub == "resolve":
        if not text.strip():
            return _resolve_form(ctx, huddle_id)
        title, _, remainder = text.partition("|")
        answer, _, tag_text = remainder.partition("|")
        return _resolve(ctx, huddle_id, title, answer, tag_text)
    if sub == "reply":
        return _reply(ctx, huddle_id, text)
    actor = ctx.actor()
    with _friendly():
        found = huddles.get(ctx.session, huddle_id)
        if sub == "cancel":
            huddles.cancel(ctx.services, ctx.session, found, actor)
            return Reply.notice(messages.HUDDLE_CANCELLED.format(id=huddle_id), "success")
        if sub == "reopen":
            huddles.reopen(ctx.services, ctx.session, found, actor)
            return Reply.notice(messages.HUDDLE_REOPENED.format(id=huddle_id), "success")
        huddles.decline(ctx.services, ctx.session, found, actor)
        return Reply.notice(messages.HUDDLE_DECLINED_REPLY.format(id=huddle_id))


def _open(ctx: Context, text: str) -> Reply:
    topic_words, named = [], []
    for token in text.split():
        if ctx.is_mention(token):
            person = ctx.person_for(token)
            if person is None:
                raise UsageError(messages.UNKNOWN_PERSON.format(token=token[:60]))
            named.append(person)
        else:
            topic_words.append(token)
    return _open_with(ctx, " ".join(topic_words), named or None)


def _open_with(ctx: Context, topic: str, experts: list[Person] | None) -> Reply:
    actor = ctx.actor()
    with _friendly():
        opened = huddles.open_huddle(
            ctx.services,
            ctx.session,
            actor,
            topic,
            experts,
            platform=ctx.command.platform,
            where=ctx.command.where,
        )
    return _opened(ctx, opened)


def start_from_button(ctx: Context) -> Reply:
    """The *Start huddle thread* button on a who-knows answer (or its expert picker)."""
    try:
        value = json.loads(ctx.args or "{}")
        topic = str(value["topic"])
        ids = [int(i) for i in value.get("experts", [])]
    except (ValueError, KeyError, TypeError):
        return Reply.notice(messages.HUDDLE_BAD_BUTTON, "warning")
    picked = ctx.command.values.get("experts")
    if picked:
        ids = [n for i in picked.split(",") if (n := parse_id(i)) is not None]
    ids = [i for i in ids if 0 <= i <= MAX_ID]
    experts = [p for i in ids if (p := ctx.session.get(Person, i)) and p.deleted_at is None]
    huddles.require_suggested(ctx.services, ctx.session, ctx.actor(), topic, experts)
    return _open_with(ctx, topic, experts or None)


def start_button_value(topic: str, expert_ids: list[int]) -> str:
    return json.dumps({"topic": topic[:BUTTON_TOPIC_CHARS], "experts": expert_ids})


def _list(ctx: Context, *, team: bool) -> Reply:
    actor = ctx.actor()
    found = huddles.open_huddles(ctx.session, actor, team=team)
    if not found:
        return Reply.notice(messages.HUDDLE_LIST_NONE)
    now = ctx.services.clock()
    lines = [messages.HUDDLE_LIST_HEADER.format(scope=" in your team" if team else " of yours")]
    for item in found:
        replies = sum(p.first_reply_at is not None for p in item.participants)
        minutes = int((now - item.created_at).total_seconds() // 60)
        age = f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"
        lines.append(
            messages.HUDDLE_LIST_LINE.format(
                id=item.id,
                topic=item.topic[:80],
                name=item.requester.display_name if item.requester else "someone",
                age=age,
                replies=f"{replies} expert{'s' if replies != 1 else ''} replied",
            )
        )
    return Reply.of(*(Text(line) for line in lines))


def _resolve_form(ctx: Context, huddle_id: int) -> Reply:
    with _friendly():
        found = huddles.get(ctx.session, huddle_id)
    # Nobody fills in a form that would be refused: asked before it is shown.
    permissions.require_huddle_closer(ctx.actor(), found, permissions.RESOLVE_HUDDLE)
    return Reply.of(
        Form(
            title=messages.HUDDLE_RESOLVE_FORM.format(id=huddle_id),
            action_id="huddle.resolve.submit",
            value=str(huddle_id),
            fields=(
                FormField("title", "Title", value=found.topic[:200]),
                FormField("answer", "Answer", kind="multiline"),
                FormField("tags", "Tags (comma-separated)", required=False),
            ),
            submit_label="Resolve",
        )
    )


def resolve_button(ctx: Context) -> Reply:
    return _resolve_form(ctx, _huddle_id(ctx.args))


def resolve_submit(ctx: Context) -> Reply:
    values = ctx.command.values
    return _resolve(
        ctx,
        _huddle_id(ctx.args),
        values.get("title", ""),
        values.get("answer", ""),
        values.get("tags", ""),
    )


def _resolve(ctx: Context, huddle_id: int, title: str, answer: str, tag_text: str) -> Reply:
    actor = ctx.actor()
    with _friendly():
        found = huddles.get(ctx.session, huddle_id)
        tags = expertise.tags_named(ctx.session, tag_text)
        entry, credited = huddles.resolve(
            ctx.services, ctx.session, found, actor, title, answer, tags
        )
    return Reply.notice(
        messages.HUDDLE_RESOLVED.format(id=huddle_id, entry=entry.id, names=_names(credited)),
        "success",
    )


def decline_button(ctx: Context) -> Reply:
    actor = ctx.actor()
    huddle_id = _huddle_id(ctx.args)
    with _friendly():
        huddles.decline(ctx.services, ctx.session, huddles.get(ctx.session, huddle_id), actor)
    return Reply.notice(messages.HUDDLE_DECLINED_REPLY.format(id=huddle_id))


def answer_button(ctx: Context) -> Reply:
    """*Answer* on an invitation sent to another platform than the thread's: a form."""
    actor = ctx.actor()
    huddle_id = _huddle_id(ctx.args)
    with _friendly():
        found = huddles.get(ctx.session, huddle_id)
        huddles.check_answer(ctx.session, found, actor)
    return Reply.of(
        Form(
            title=messages.HUDDLE_ANSWER_FORM.format(id=huddle_id),
            action_id="huddle.answer.submit",
            value=str(huddle_id),
            fields=(
                FormField(
                    "answer",
                    messages.HUDDLE_ANSWER_FIELD.format(topic=found.topic[:60]),
                    kind="multiline",
                ),
            ),
            submit_label=messages.HUDDLE_ANSWER_SUBMIT,
        )
    )


def answer_submit(ctx: Context) -> Reply:
    """The *Answer* form sent: posted in the huddle's thread, where it was opened, as theirs."""
    actor = ctx.actor()
    huddle_id = _huddle_id(ctx.args)
    with _friendly():
        found = huddles.get(ctx.session, huddle_id)
        text = ctx.command.values.get("answer", "")
        huddles.answer(ctx.services, ctx.session, found, actor, text)
    where = accounts.platform_name(found.platform or ctx.command.platform)
    return Reply.notice(messages.HUDDLE_ANSWERED.format(id=huddle_id, platform=where), "success")


def _reply(ctx: Context, huddle_id: int, text: str) -> Reply:
    """Write in a huddle's thread from a chat without threads (the local console)."""
    if not text.strip():
        raise UsageError(messages.HUDDLE_REPLY_EMPTY.format(id=huddle_id))
    actor = ctx.actor()
    with _friendly():
        found = huddles.get(ctx.session, huddle_id)
        huddles.post_as(ctx.services, ctx.session, found, actor, text)
    return Reply.notice(messages.HUDDLE_NOTED.format(id=huddle_id))


def thread_message(ctx: Context) -> Reply:
    """A message someone wrote in a thread (from a platform event): a reply, if a huddle's."""
    where = ctx.command.where
    if not where.channel or not where.thread:
        return Reply(())
    found = huddles.by_thread(ctx.session, ctx.command.platform, where.channel, where.thread)
    person = ctx.session.get(Person, ctx.command.person_id)
    if found is not None and person is not None:
        huddles.record_reply(ctx.services, ctx.session, found, person, ctx.services.clock())
    return Reply(())


def register(router: Router) -> None:
    router.command(
        "huddle",
        usage="huddle <topic> [@person …] | huddle list | huddle resolve N",
        summary="open a huddle thread with the experts for a topic, and save what it concludes",
    )(huddle)
    router.action("huddle.start")(start_from_button)
    router.action("huddle.decline")(decline_button)
    router.action(huddles.ANSWER_ACTION)(answer_button)
    router.action("huddle.answer.submit")(answer_submit)
    router.action("huddle.resolve")(resolve_button)
    router.action("huddle.resolve.submit")(resolve_submit)
    router.action("huddle.message")(thread_message)
