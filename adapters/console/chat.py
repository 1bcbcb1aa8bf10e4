"""The terminal chat loop: read a line, dispatch it, print the rendered reply."""

from __future__ import annotations

from typing import TextIO

from adapters.console.render import render
from adapters.console.translate import PLATFORM, to_command
from bot.db.models import Person
from bot.router import Router
from bot.services import Services, people

BANNER = (
    "whoknows local chat. You are {name} (@{key}, {role}{team}).\n"
    "Type a topic or `help`; `/as HANDLE` to act as someone else, `/quit` to leave."
)


def _describe(person: Person) -> str:
    team = f", {person.team.name}" if person.team else ""
    return BANNER.format(
        name=person.display_name, key=person.key, role=person.role.value, team=team
    )


def _identify(services: Services, handle: str) -> tuple[int, str] | None:
    with services.db.unit_of_work() as session:
        person = people.by_identity(session, PLATFORM, handle) or people.by_key(session, handle)
        return (person.id, _describe(person)) if person else None


def _resolver(services: Services):  # type: ignore[no-untyped-def]
    def resolve(handle: str) -> int | None:
        with services.db.unit_of_work() as session:
            person = people.by_identity(session, PLATFORM, handle) or people.by_key(session, handle)
            return person.id if person else None

    return resolve


def run_chat(services: Services, router: Router, handle: str, stdin: TextIO, stdout: TextIO) -> int:
    me = _identify(services, handle)
    if me is None:
        stdout.write(f"Nobody has the handle '{handle}'. Try `whoknows chat --as HANDLE`.\n")
        return 2
    person_id, banner = me
    resolve = _resolver(services)
    stdout.write(banner + "\n")
    while True:
        stdout.write("\n> ")
        stdout.flush()
        line = stdin.readline()
        if not line:
            stdout.write("\n")
            return 0
        words = line.strip().split()
        if words and words[0] in {"/quit", "/exit", "quit", "exit"}:
            return 0
        if words and words[0] == "/as":
            if len(words) != 2:
                stdout.write("Usage: /as HANDLE\n")
                continue
            found = _identify(services, words[1].lstrip("@").lower())
            if found is None:
                stdout.write(f"Nobody has the handle '{words[1]}'.\n")
                continue
            person_id, banner = found
            stdout.write(banner + "\n")
            continue
        command = to_command(line, person_id, resolve)
        if command is not None:
            stdout.write(render(router.dispatch(command, services)) + "\n")
