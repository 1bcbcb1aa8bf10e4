"""Learning goals in chat: `expertise learn|unlearn <topic>`, each goal's progress on a
profile and App Home (with *Find a mentor* and *Stop learning*), and *Leave* on a
huddle thread a learner was invited to observe."""

from __future__ import annotations

from bot import messages
from bot.db.models import Person
from bot.router import Context, Router, UsageError
from bot.services import expertise, huddles, learning_goals, people
from bot.services.expertise import UnknownTag
from bot.services.learning_goals import LearningError
from bot.text import parse_id
from bot.types import Actions, Button, Element, Reply, Text

FIND_MENTOR_ACTION = "mentor.find"
UNLEARN_ACTION = "learning.unlearn"


def _unknown(error: UnknownTag) -> UsageError:
    if error.suggestions:
        suggestions = ", ".join(f"'{s}'" for s in error.suggestions)
        return UsageError(
            messages.UNKNOWN_TAG_SUGGEST.format(name=error.name, suggestions=suggestions)
        )
    return UsageError(messages.UNKNOWN_TAG.format(name=error.name))


def learn_command(ctx: Context, actor: Person, targets: list[Person], rest: str, sub: str) -> Reply:
    """`expertise learn <topic>` / `expertise unlearn <topic>`: your own goals only."""
    if any(target.id != actor.id for target in targets):
        raise UsageError(messages.LEARN_FOR_OTHERS)
    name = rest.split(":")[0].strip()
    if not name:
        raise UsageError(messages.LEARN_USAGE)
    now = ctx.services.clock()
    try:
        tag = expertise.require_tag(ctx.session, name)
        if sub == "unlearn":
            learning_goals.unlearn(ctx.session, actor, tag, now)
            return Reply.notice(messages.UNLEARNED.format(tag=tag.name), "success")
        goal, new = learning_goals.learn(ctx.session, actor, tag, now)
    except UnknownTag as error:
        raise _unknown(error) from None
    except LearningError as error:
        raise UsageError(str(error)) from None
    if not new:
        since = f"{goal.set_at:%d %b %Y}"
        return Reply.notice(messages.LEARN_ALREADY.format(tag=tag.name, since=since))
    return Reply.notice(messages.LEARN_SET.format(tag=tag.name), "success")


def goal_elements(ctx: Context, person: Person, *, own: bool) -> list[Element]:
    """Each open goal with its progress; the buttons on your own."""
    found = learning_goals.progress(ctx.session, person)
    if not found and not own:
        return []
    elements: list[Element] = [Text(messages.GOALS_HEADER)]
    if not found:
        elements.append(Text(messages.GOALS_NONE))
    for item in found:
        elements.append(Text(learning_goals.goal_line(item)))
        if own:
            elements.append(
                Actions(
                    (
                        Button(
                            messages.GOAL_FIND_MENTOR.format(tag=item.tag[:40]),
                            FIND_MENTOR_ACTION,
                            item.tag,
                        ),
                        Button(
                            messages.GOAL_STOP.format(tag=item.tag[:40]), UNLEARN_ACTION, item.tag
                        ),
                    )
                )
            )
    return elements


def may_see_goals(viewer: Person, person: Person) -> bool:
    return viewer.id == person.id or people.can_manage(viewer, person)


def unlearn_button(ctx: Context) -> Reply:
    actor = ctx.actor()
    return learn_command(ctx, actor, [], ctx.args, "unlearn")


def leave_button(ctx: Context) -> Reply:
    """*Leave* under the line that named the observers: the presser stops observing."""
    actor = ctx.actor()
    number = parse_id(ctx.args)
    if number is None:
        raise UsageError(messages.HUDDLE_BAD_BUTTON)
    try:
        found = huddles.get(ctx.session, number)
        learning_goals.leave(ctx.session, found, actor, ctx.services.clock())
    except ValueError as error:  # HuddleError, LearningError
        raise UsageError(str(error)) from None
    return Reply.notice(messages.OBSERVER_LEFT.format(id=number))


def register(router: Router) -> None:
    router.action(learning_goals.LEAVE_ACTION)(leave_button)
    router.action(UNLEARN_ACTION)(unlearn_button)
