"""The router: finds the skill for a command and runs it as one unit of work.

Skills register with decorators that return the original function, so a
handler stays a plain `Context -> Reply` function that tests call directly.
Resolution goes exact name → alias → "did you mean" (rapidfuzz with a threshold).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from rapidfuzz import fuzz, process
from sqlalchemy import bindparam, select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from bot import messages
from bot.db.models import Person
from bot.ops import metrics
from bot.runtime import inbox
from bot.services import Services, people
from bot.services.audit import Denied
from bot.types import Command, Reply

log = logging.getLogger(__name__)

# The umbrella command (`/whoknows …`): its first word may name another command.
UMBRELLA = "whoknows"
SUGGEST_THRESHOLD = 75
DB_ATTEMPTS = 3


class UsageError(Exception):
    """Input we cannot act on; the message tells the user how to fix it."""


# Core, not ORM (`select(Person.id)`): executing it costs half as much.
_person = Person.__table__
_LIVE_PERSON = select(_person.c.id).where(
    _person.c.id == bindparam("person"), _person.c.deleted_at.is_(None)
)


@dataclass
class Context:
    """Everything a handler may use, passed explicitly."""

    command: Command
    services: Services
    session: Session
    # The word the user typed for this command ("busy" for the status command).
    invoked_as: str
    # The command's text after that word.
    args: str

    @contextmanager
    def reading(self) -> Iterator[Context]:
        """This context over a read-only snapshot, for long reads before any write.

        The command's own session takes SQLite's write lock at its first statement;
        reading here first keeps that lock for the short writes at the end.
        """
        with self.services.db.reading() as session:
            yield dataclasses.replace(self, session=session)

    def actor(self) -> Person:
        person = self.session.get(Person, self.command.person_id)
        if person is None or person.deleted_at is not None:
            raise UsageError(messages.UNKNOWN_PERSON.format(token="you"))
        return person

    def actor_id(self) -> int:
        """The asker's id, checked as `actor` checks it, for a handler that needs no
        more of them (loading the whole person cost a tenth of a who-knows)."""
        found = self.session.execute(_LIVE_PERSON, {"person": self.command.person_id}).scalar()
        if found is None:
            raise UsageError(messages.UNKNOWN_PERSON.format(token="you"))
        return int(found)

    def person_for(self, token: str) -> Person | None:
        """The person a mention token names: resolved by the adapter, else `@key`."""
        if token in self.command.mentions:
            person = self.session.get(Person, self.command.mentions[token])
            return person if person is not None and person.deleted_at is None else None
        if token.startswith("@") and len(token) > 1:
            return people.by_key(self.session, token[1:])
        return None

    def is_mention(self, token: str) -> bool:
        return token in self.command.mentions or token.startswith("@")


Handler = Callable[[Context], Reply]


@dataclass(frozen=True)
class Route:
    name: str
    handler: Handler
    usage: str
    summary: str
    aliases: tuple[str, ...] = ()


@dataclass
class Router:
    routes: dict[str, Route] = field(default_factory=dict)
    actions: dict[str, Handler] = field(default_factory=dict)
    _words: dict[str, Route] = field(default_factory=dict)

    def command(
        self, name: str, *, usage: str, summary: str, aliases: tuple[str, ...] = ()
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            route = Route(name, handler, usage, summary, aliases)
            for word in (name, *aliases):
                if word in self._words:
                    raise ValueError(f"command word {word!r} registered twice")
                self._words[word] = route
            self.routes[name] = route
            return handler

        return register

    def action(self, action_id: str) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            if action_id in self.actions:
                raise ValueError(f"action {action_id!r} registered twice")
            self.actions[action_id] = handler
            return handler

        return register

    def resolve(self, command: Command) -> tuple[Handler | None, str, str] | Reply:
        """The handler, the word it was invoked as and its arguments, or a reply."""
        if command.action_id is not None:
            handler = self.actions.get(command.action_id)
            if handler is None:
                return Reply.notice(messages.UNKNOWN_ACTION, "warning")
            return handler, command.action_id, command.text
        name, text = command.name.strip().lower(), command.text.strip()
        if name == UMBRELLA:
            first, _, rest = text.partition(" ")
            route = self._words.get(first.lower())
            if route is not None and route.name != UMBRELLA:
                return route.handler, first.lower(), rest.strip()
        route = self._words.get(name)
        if route is not None:
            return route.handler, name, text
        guess = process.extractOne(name, list(self._words), scorer=fuzz.ratio)
        if guess is not None and guess[1] >= SUGGEST_THRESHOLD:
            return Reply.notice(messages.DID_YOU_MEAN.format(word=name, guess=guess[0]), "warning")
        # Not a command at all: in a chat with the bot, words alone are a question.
        umbrella = self.routes.get(UMBRELLA)
        if umbrella is None:
            return Reply.notice(messages.UNKNOWN_COMMAND.format(word=name), "warning")
        return umbrella.handler, UMBRELLA, f"{command.name.strip()} {text}".strip()

    def dispatch(
        self,
        command: Command,
        services: Services,
        then: Callable[[Session, Reply], None] | None = None,
    ) -> Reply:
        """Run the command in one unit of work and return its reply. `then` runs in that
        unit of work once the reply is made (not for a reply made without one), to read
        what rendering it needs without a transaction of its own."""
        resolved = self.resolve(command)
        if isinstance(resolved, Reply):
            return resolved
        handler, invoked_as, args = resolved
        name = self._words[invoked_as].name if invoked_as in self._words else invoked_as
        for attempt in range(1, DB_ATTEMPTS + 1):
            try:
                with metrics.command(name), services.db.unit_of_work() as session:
                    ctx = Context(command, services, session, invoked_as, args)
                    reply = handler(ctx)
                    if command.inbound_id is not None:
                        # Committed with the command's effects, or neither is.
                        lease = timedelta(seconds=services.settings.request_lease_s)
                        now = services.clock()
                        inbox.answered(session, command.inbound_id, reply, now, lease)
                    if then is not None:
                        then(session, reply)
                    return reply
            except inbox.AlreadyAnswered:
                if attempt > 1 and command.inbound_id is not None:
                    # Our own earlier attempt committed before its connection broke.
                    return inbox.kept_reply(services.db, command.inbound_id) or Reply(())
                return Reply(())  # answered by another worker: not twice
            except UsageError as error:
                return Reply.notice(str(error), "warning")
            except Denied as denial:
                with services.db.unit_of_work() as session:
                    denial.audit(session)
                return Reply.notice(denial.message, "error")
            except (OperationalError, InterfaceError) as error:
                # The unit of work rolled back, so running it again is safe.
                log.warning("database error (attempt %d): %s", attempt, type(error.orig).__name__)
                if attempt == DB_ATTEMPTS:
                    metrics.command_error(name, "database")
                    return Reply.notice(messages.DATABASE_UNAVAILABLE, "error")
                time.sleep(0.2 * 2**attempt)
            except Exception:
                log.exception("command %r failed", invoked_as)
                metrics.command_error(name, "internal")
                return Reply.notice(messages.INTERNAL_ERROR, "error")
        raise AssertionError("unreachable")
