"""`mentor …`: mentors to learn a topic from, and the pairs a lead makes.

`mentor <topic>` (or *Find a mentor* on a learning goal) suggests verified experts,
the learner's own team first, spread fairly (bot/services/mentors.py). A lead sees
*Pair with …* on each; a learner sees *Ask a lead to pair me with …*, which sends
their leads that button. `mentor pair @learner @mentor <topic>` pairs by hand.
"""

from __future__ import annotations

import json

from bot import messages
from bot.db.models import Person, Tag
from bot.router import Context, Router, UsageError
from bot.services import expertise, mentors, permissions, presence
from bot.services.analytics.scope import Scope
from bot.services.expertise import UnknownTag
from bot.services.mentors import MentorError
from bot.text import MAX_ID
from bot.types import Actions, Button, Element, PersonCard, Reply, TagMatch, Text
from skills.growth import FIND_MENTOR_ACTION

PAIR_ACTION = "mentor.pair"
REQUEST_ACTION = "mentor.request"
PAIRS_SHOWN = 20


def _tag(ctx: Context, name: str) -> Tag:
    if not name.strip():
        raise UsageError(messages.MENTOR_USAGE)
    try:
        return expertise.require_tag(ctx.session, name.split(":")[0])
    except UnknownTag as error:
        if error.suggestions:
            suggestions = ", ".join(f"'{s}'" for s in error.suggestions)
            raise UsageError(
                messages.UNKNOWN_TAG_SUGGEST.format(name=error.name, suggestions=suggestions)
            ) from None
        raise UsageError(messages.UNKNOWN_TAG.format(name=error.name)) from None


def _split(ctx: Context, words: list[str]) -> tuple[list[Person], str]:
    found, rest = [], []
    for word in words:
        if ctx.is_mention(word):
            person = ctx.person_for(word)
            if person is None:
                raise UsageError(messages.UNKNOWN_PERSON.format(token=word[:60]))
            found.append(person)
        else:
            rest.append(word)
    return found, " ".join(rest)


def _value(learner: Person, mentor: Person, tag: Tag) -> str:
    return json.dumps({"learner": learner.id, "mentor": mentor.id, "tag": tag.id})


def _suggestions(ctx: Context, actor: Person, learner: Person, tag: Tag) -> Reply:
    if learner.id != actor.id:
        permissions.require_mentor_pairer(actor, learner)
    found = mentors.suggest(ctx.session, learner, tag)
    if not found:
        return Reply.notice(messages.MENTOR_NONE.format(tag=tag.name))
    now = ctx.services.clock()
    lead = permissions.may_pair_mentor(actor, learner)
    elements: list[Element] = [
        Text(messages.MENTOR_HEADER.format(name=learner.display_name, tag=tag.name))
    ]
    buttons = []
    for item in found:
        person = item.person
        team = (
            messages.MENTOR_SAME_TEAM
            if item.same_team
            else messages.MENTOR_OTHER_TEAM.format(team=person.team.name if person.team else "?")
        )
        load = (
            messages.MENTOR_MENTEES.format(count=item.mentees)
            if item.mentees
            else messages.MENTOR_MENTEES_NONE
        )
        elements.append(
            PersonCard(
                person_id=person.id,
                key=person.key,
                name=person.display_name,
                team=person.team.name if person.team else None,
                presence=presence.current(person, now),
                tags=(TagMatch(tag.name, item.level, True),),
                reason=messages.MENTOR_REASON.format(
                    tag=tag.name, level=item.level, team=team, mentees=load
                ),
            )
        )
        label = messages.MENTOR_PAIR if lead else messages.MENTOR_ASK
        action = PAIR_ACTION if lead else REQUEST_ACTION
        buttons.append(
            Button(
                label.format(name=person.display_name[:40]),
                action,
                _value(learner, person, tag),
                "primary" if not buttons else "default",
            )
        )
    elements.append(Actions(tuple(buttons)))
    return Reply(tuple(elements))


def _pair(ctx: Context, actor: Person, learner: Person, mentor: Person, tag: Tag) -> Reply:
    try:
        _, new = mentors.pair(
            ctx.session,
            actor,
            learner,
            mentor,
            tag,
            ctx.services.clock(),
            platform=ctx.command.platform,
        )
    except MentorError as error:
        raise UsageError(str(error)) from None
    said = messages.MENTOR_PAIRED if new else messages.MENTOR_ALREADY
    return Reply.notice(
        said.format(learner=learner.display_name, mentor=mentor.display_name, tag=tag.name),
        "success" if new else "info",
    )


def _list(ctx: Context, actor: Person) -> Reply:
    scope = Scope.for_person(actor)
    found = (
        mentors.pairs(ctx.session, scope)
        if scope.team_ids != frozenset()
        else mentors.pairs(ctx.session, scope, learner=actor)
    )
    if not found:
        return Reply.notice(messages.MENTOR_LIST_NONE)
    lines = [messages.MENTOR_LIST_HEADER]
    lines += [
        messages.MENTOR_LIST_LINE.format(
            learner=p.learner,
            tag=p.tag,
            mentor=p.mentor,
            lead=p.paired_by or "someone",
            since=f"{p.paired_at:%d %b %Y}",
        )
        for p in found[:PAIRS_SHOWN]
    ]
    return Reply.of(*(Text(line) for line in lines))


def mentor(ctx: Context) -> Reply:
    words = ctx.args.split()
    if not words:
        raise UsageError(messages.MENTOR_USAGE)
    actor = ctx.actor()
    sub = words[0].lower()
    if sub == "list" and len(words) == 1:
        return _list(ctx, actor)
    if sub in {"pair", "unpair"}:
        named, rest = _split(ctx, words[1:])
        tag = _tag(ctx, rest)
        if sub == "pair":
            if len(named) != 2:
                raise UsageError(messages.MENTOR_USAGE)
            return _pair(ctx, actor, named[0], named[1], tag)
        if len(named) != 1:
            raise UsageError(messages.MENTOR_USAGE)
        try:
            mentors.unpair(ctx.session, actor, named[0], tag, ctx.services.clock())
        except MentorError as error:
            raise UsageError(str(error)) from None
        return Reply.notice(
            messages.MENTOR_UNPAIRED.format(learner=named[0].display_name, tag=tag.name),
            "success",
        )
    named, rest = _split(ctx, words)
    if len(named) > 1:
        raise UsageError(messages.MENTOR_USAGE)
    return _suggestions(ctx, actor, named[0] if named else actor, _tag(ctx, rest))


def find_button(ctx: Context) -> Reply:
    """*Find a mentor* on one of your learning goals."""
    actor = ctx.actor()
    return _suggestions(ctx, actor, actor, _tag(ctx, ctx.args))


def _from_value(ctx: Context) -> tuple[Person, Person, Tag]:
    try:
        value = json.loads(ctx.args or "{}")
        ids = [int(value[k]) for k in ("learner", "mentor", "tag")]
    except (ValueError, KeyError, TypeError):
        raise UsageError(messages.HUDDLE_BAD_BUTTON) from None
    if not all(0 < i <= MAX_ID for i in ids):
        raise UsageError(messages.HUDDLE_BAD_BUTTON)
    learner = ctx.session.get(Person, ids[0])
    mentor_ = ctx.session.get(Person, ids[1])
    tag = ctx.session.get(Tag, ids[2])
    if learner is None or mentor_ is None or tag is None:
        raise UsageError(messages.HUDDLE_BAD_BUTTON)
    if learner.deleted_at is not None or mentor_.deleted_at is not None:
        raise UsageError(messages.HUDDLE_BAD_BUTTON)
    return learner, mentor_, tag


def pair_button(ctx: Context) -> Reply:
    learner, mentor_, tag = _from_value(ctx)
    return _pair(ctx, ctx.actor(), learner, mentor_, tag)


def request_button(ctx: Context) -> Reply:
    """A learner asks their leads to pair them: each lead gets the *Pair* button."""
    actor = ctx.actor()
    learner, mentor_, tag = _from_value(ctx)
    if learner.id != actor.id:
        raise UsageError(messages.HUDDLE_BAD_BUTTON)
    leads = mentors.leads_of(ctx.session, learner)
    if not leads:
        return Reply.notice(messages.MENTOR_NO_LEAD, "warning")
    asked = Reply.of(
        Text(
            messages.MENTOR_REQUEST_DM.format(
                learner=learner.display_name, mentor=mentor_.display_name, tag=tag.name
            )
        ),
        Actions(
            (
                Button(
                    messages.MENTOR_PAIR.format(name=mentor_.display_name[:40]),
                    PAIR_ACTION,
                    _value(learner, mentor_, tag),
                    "primary",
                ),
            )
        ),
        private=False,
    )
    reached = mentors.ask_leads(
        ctx.session, leads, asked, ctx.services.clock(), ctx.command.platform
    )
    if not reached:
        return Reply.notice(messages.MENTOR_LEAD_UNREACHABLE, "warning")
    names = ", ".join(lead.display_name for lead in reached)
    return Reply.notice(
        messages.MENTOR_ASKED.format(names=names, mentor=mentor_.display_name, tag=tag.name),
        "success",
    )


def register(router: Router) -> None:
    router.command(
        "mentor",
        aliases=("mentors",),
        usage="mentor <topic> [@learner] | mentor pair @learner @mentor <topic> | mentor list",
        summary="mentors to learn a topic from; leads pair them",
    )(mentor)
    router.action(FIND_MENTOR_ACTION)(find_button)
    router.action(PAIR_ACTION)(pair_button)
    router.action(REQUEST_ACTION)(request_button)
