"""The terminal chat: read a line, dispatch it, print the reply and whatever was delivered.

Buttons are numbered as they are shown; `!N` presses one. A form asks for its
fields one line at a time. Timers (escalations) fire from a background tick,
so a huddle escalates while you wait at the prompt.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from dataclasses import dataclass, field
from typing import TextIO

from adapters.console.messenger import ConsoleMessenger
from adapters.console.render import Buttons, render
from adapters.console.translate import PLATFORM, to_command
from bot.db.models import Person
from bot.router import Router
from bot.runtime import jobs, outbox
from bot.services import Services, people
from bot.types import Command, Form, Reply, Where

BANNER = (
    "whoknows local chat. You are {name} (@{key}, {role}{team}).\n"
    "Type a topic or `help`; `!N` presses button N; `/as HANDLE` to act as someone else "
    "(an expert, to answer a huddle thread); `/quit` to leave."
)
log = logging.getLogger(__name__)
TICK_SECONDS = 1.0
CHANNEL = "general"


def _describe(person: Person) -> str:
    team = f", {person.team.name}" if person.team else ""
    return BANNER.format(
        name=person.display_name, key=person.key, role=person.role.value, team=team
    )


@dataclass
class _FormInProgress:
    form: Form
    values: dict[str, str] = field(default_factory=dict)

    @property
    def next_field(self):  # type: ignore[no-untyped-def]
        return (
            self.form.fields[len(self.values)] if len(self.values) < len(self.form.fields) else None
        )


class ConsoleChat:
    """One terminal's conversation; `handle` a line, `tick` to fire timers and deliver."""

    def __init__(self, services: Services, router: Router, out: TextIO) -> None:
        self.services = services
        self.router = router
        self.out = out
        self.person_id: int | None = None
        self.buttons = Buttons()
        self.form: _FormInProgress | None = None
        self.messenger = ConsoleMessenger(self._show_delivery)
        self.lock = threading.RLock()

    # --- output ---
    def write(self, text: str) -> None:
        with self.lock:
            self.out.write(text)
            self.out.flush()

    def show(self, reply: Reply) -> None:
        """Print a reply; a form in it starts asking for its fields."""
        forms = [e for e in reply.elements if isinstance(e, Form)]
        rest = Reply(tuple(e for e in reply.elements if not isinstance(e, Form)))
        if rest.elements:
            self.write(render(rest, self.buttons) + "\n")
        if forms:
            self.form = _FormInProgress(forms[0])
            self.write(f"{forms[0].title}  (an empty line keeps [what is shown]; /cancel stops)\n")
            self._ask_next_field()

    def _show_delivery(self, heading: str, reply: Reply, indent: str) -> None:
        body = "\n".join(indent + line for line in render(reply, self.buttons).splitlines())
        self.write(f"{heading}\n{body}\n")

    # --- input ---
    def sign_in(self, handle: str) -> bool:
        with self.services.db.unit_of_work() as session:
            person = people.by_identity(session, PLATFORM, handle) or people.by_key(session, handle)
            if person is None:
                return False
            self.person_id, banner = person.id, _describe(person)
        self.write(banner + "\n")
        return True

    def _resolve(self, handle: str) -> int | None:
        with self.services.db.unit_of_work() as session:
            person = people.by_identity(session, PLATFORM, handle) or people.by_key(session, handle)
            return person.id if person else None

    def handle(self, line: str) -> bool:
        """One line typed; False when the person leaves."""
        with self.lock:
            return self._handle(line)

    def _handle(self, line: str) -> bool:
        words = line.strip().split()
        if self.form is not None:
            return self._fill_form(line)
        if words and words[0] in {"/quit", "/exit", "quit", "exit"}:
            return False
        if words and words[0] == "/as":
            if len(words) != 2 or not self.sign_in(words[1].lstrip("@").lower()):
                self.write(f"Nobody has the handle '{words[1] if len(words) > 1 else ''}'.\n")
            return True
        assert self.person_id is not None
        if len(words) == 1 and words[0].startswith("!") and words[0][1:].isdigit():
            return self._press(int(words[0][1:]))
        command = to_command(line, self.person_id, self._resolve)
        if command is not None:
            self.show(self.router.dispatch(command, self.services))
        return True

    def _press(self, number: int) -> bool:
        button = self.buttons.shown.get(number)
        if button is None:
            self.write(f"There is no button !{number} on the screen.\n")
            return True
        self._dispatch_action(button.action_id, button.value, {})
        return True

    def _dispatch_action(self, action_id: str, value: str, values: dict[str, str]) -> None:
        assert self.person_id is not None
        command = Command(
            platform=PLATFORM,
            person_id=self.person_id,
            name="",
            text=value,
            where=Where(channel=CHANNEL),
            action_id=action_id,
            values=values,
        )
        self.show(self.router.dispatch(command, self.services))

    def _ask_next_field(self) -> None:
        if self.form is None or self.form.next_field is None:
            return
        current = self.form.next_field
        shown = f" [{current.value[:60]}]" if current.value else ""
        self.write(f"   {current.label}{shown}: ")

    def _fill_form(self, line: str) -> bool:
        assert self.form is not None
        if line.strip() == "/cancel":
            self.form = None
            self.write("Cancelled.\n")
            return True
        current = self.form.next_field
        assert current is not None
        value = line.strip() or current.value
        if current.required and not value:
            self.write("   This one is needed.\n")
            self._ask_next_field()
            return True
        self.form.values[current.name] = value
        if self.form.next_field is not None:
            self._ask_next_field()
            return True
        form, values = self.form.form, self.form.values
        self.form = None
        self._dispatch_action(form.action_id, form.value, values)
        return True

    # --- timers and deliveries ---
    def tick(self) -> None:
        with self.lock:
            jobs.run_due(self.services)
            asyncio.run(
                outbox.deliver(self.services.db, {PLATFORM: self.messenger}, self.services.clock)
            )


def run_chat(services: Services, router: Router, handle: str, stdin: TextIO, stdout: TextIO) -> int:
    chat = ConsoleChat(services, router, stdout)
    if not chat.sign_in(handle):
        stdout.write(f"Nobody has the handle '{handle}'. Try `whoknows chat --as HANDLE`.\n")
        return 2
    stop = threading.Event()

    def ticker() -> None:
        while not stop.wait(TICK_SECONDS):
            try:
                chat.tick()
            except Exception:  # keep the chat usable; the next tick tries again
                log.exception("background tick failed")

    thread = threading.Thread(target=ticker, name="whoknows-tick", daemon=True)
    thread.start()
    try:
        chat.tick()  # anything left undelivered by an earlier run
        while True:
            if chat.form is None:
                chat.write("\n> ")
            line = stdin.readline()
            if not line:
                chat.write("\n")
                return 0
            if not chat.handle(line):
                return 0
            chat.tick()
    finally:
        stop.set()
        thread.join(timeout=5)
