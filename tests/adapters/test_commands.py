"""Commands run in command processes: the real processes `whoknows serve` starts."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import pickle
import signal
import socket
import struct
import threading
import time
import traceback
from typing import Any

import pytest
from sqlalchemy import select

from adapters.commands import READY, CommandProcessDied, CommandRunner, command_loop
from bot.db.models import Person
from bot.router import Router
from bot.services import Services, people
from bot.types import Command, Text
from tests.adapters.serving import command_processes, running
from tests.helpers import cards, person_id

QUESTIONS = ("refund for a prepaid top-up", "roaming charges abroad", "chargeback on a card")


def _runner(services: Services, router: Router, processes: int = 1) -> CommandRunner:
    # Lexical ranking: a command process that loads no model starts in a second or two.
    settings = dataclasses.replace(services.settings, semantic=False)
    return CommandRunner(Services(services.db, settings), router, processes=processes)


def _command_processes(expected: int | None = None) -> set[int]:
    """This process's command processes, once there are `expected` of them (a process
    just started has its name once it has imported)."""
    deadline = time.monotonic() + 10
    while True:
        found = command_processes(os.getpid())
        if expected is None or len(found) == expected or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def _heading(reply: Any) -> str:
    return next(e.text for e in reply.elements if isinstance(e, Text))


async def _gone(pid: int) -> None:
    while running(pid):
        await asyncio.sleep(0.02)


def test_commands_in_a_command_process_answer_as_on_threads(demo: Services, router: Router) -> None:
    asker = person_id(demo, "alex")
    commands = [Command("test", asker, "whoknows", q) for q in QUESTIONS * 3]
    on_threads = _runner(demo, router, processes=0)
    in_process = _runner(demo, router, processes=2)

    async def main() -> tuple[list[Any], list[Any]]:
        threaded = [await on_threads.run(c) for c in commands]
        # All at once: more than the processes hold, so some wait their turn.
        processed = await asyncio.gather(*(in_process.run(c) for c in commands))
        return threaded, list(processed)

    try:
        assert len(_command_processes(2)) == 2
        threaded, processed = asyncio.run(main())
    finally:
        in_process.close()
        on_threads.close()
    # Each answer is its own question's, in the order asked, with the same experts.
    for (reply, handles), (expected, expected_handles) in zip(processed, threaded, strict=True):
        assert _heading(reply) == _heading(expected)
        assert handles == expected_handles
    assert [QUESTIONS[i % 3] in _heading(r) for i, (r, _) in enumerate(processed)] == [True] * 9
    assert _command_processes(0) == set()  # closed: none left behind


def test_a_reply_comes_with_the_platform_ids_of_the_people_it_shows(
    demo: Services, router: Router
) -> None:
    with demo.db.unit_of_work() as session:
        for person in session.scalars(select(Person)):
            people.link_identity(session, person, "slack", f"U-{person.key}")
    asker = person_id(demo, "alex")
    runner = _runner(demo, router, processes=0)
    try:
        reply, handles = asyncio.run(runner.run(Command("slack", asker, "whoknows", QUESTIONS[0])))
    finally:
        runner.close()
    shown = {card.person_id: card.key for card in cards(reply)}
    assert shown and asker not in shown
    # Looked up in the command's own transaction: every card's id, and no one else's.
    assert handles == {pid: f"U-{key}" for pid, key in shown.items()}


@pytest.mark.reliability(28)
def test_a_command_whose_process_dies_runs_once_more_on_a_new_one(
    demo: Services, router: Router, caplog: pytest.LogCaptureFixture
) -> None:
    asker = person_id(demo, "alex")
    runner = _runner(demo, router)

    async def main() -> None:
        first = await runner.run(Command("test", asker, "whoknows", QUESTIONS[0]))
        assert QUESTIONS[0] in _heading(first[0])
        (victim,) = _command_processes(1)
        os.kill(victim, signal.SIGSTOP)  # holds the next command without answering it
        held = asyncio.ensure_future(runner.run(Command("test", asker, "whoknows", QUESTIONS[1])))
        await asyncio.sleep(0.2)
        assert not held.done()
        os.kill(victim, signal.SIGKILL)
        reply, _ = await asyncio.wait_for(held, timeout=60)
        assert QUESTIONS[1] in _heading(reply)
        (successor,) = _command_processes(1)
        assert successor != victim
        # The new one goes on answering.
        later, _ = await runner.run(Command("test", asker, "whoknows", QUESTIONS[2]))
        assert QUESTIONS[2] in _heading(later)

    with caplog.at_level(logging.ERROR, logger="adapters.commands"):
        try:
            asyncio.run(main())
        finally:
            runner.close()
    assert "a command process died (exit code -9)" in caplog.text


@pytest.mark.reliability(28)
def test_a_command_that_kills_its_process_twice_fails_and_the_next_is_answered(
    demo: Services, router: Router
) -> None:
    asker = person_id(demo, "alex")
    runner = _runner(demo, router)

    async def kill_holding(held: asyncio.Future[Any], known: set[int]) -> int:
        """SIGKILL the command process that holds `held`, a new one unless it is the first."""
        while not (fresh := _command_processes() - known):
            await asyncio.sleep(0.02)
        (victim,) = fresh
        os.kill(victim, signal.SIGSTOP)
        await asyncio.sleep(0.2)  # the command reaches it, if it was not there already
        assert not held.done()
        os.kill(victim, signal.SIGKILL)
        await _gone(victim)
        return victim

    async def main() -> None:
        deadly = asyncio.ensure_future(runner.run(Command("test", asker, "whoknows", "refund")))
        first = await kill_holding(deadly, set())
        await kill_holding(deadly, {first})
        with pytest.raises(CommandProcessDied):
            await asyncio.wait_for(deadly, timeout=60)
        # Not every command after it: the third process answers.
        reply, _ = await runner.run(Command("test", asker, "whoknows", QUESTIONS[0]))
        assert QUESTIONS[0] in _heading(reply)

    try:
        asyncio.run(main())
    finally:
        runner.close()


def _frames(sock: socket.socket) -> Any:
    stream = sock.makefile("rb")
    while header := stream.read(4):
        (size,) = struct.unpack("!I", header)
        yield pickle.loads(stream.read(size))


class _Unpicklable(Exception):
    def __init__(self) -> None:
        super().__init__("holds a lock")
        self.lock = threading.Lock()


def test_a_command_process_sends_errors_back_with_their_traceback() -> None:
    """What a command raises travels back to the serving process (which raises it in the
    caller); one that cannot be pickled comes back as a RuntimeError saying so."""
    ours, theirs = socket.socketpair()

    def run(command: Command) -> tuple[bool, Any]:
        try:
            if command.text == "value":
                raise ValueError("no such tag")
            raise _Unpicklable()
        except Exception as error:
            return False, (error, traceback.format_exc())

    def child() -> None:
        with theirs, theirs.makefile("rwb") as stream:
            command_loop(stream, run)

    thread = threading.Thread(target=child)
    thread.start()
    for text in ("value", "lock"):
        payload = pickle.dumps(Command("test", 1, "whoknows", text))
        ours.sendall(struct.pack("!I", len(payload)) + payload)
    ours.shutdown(socket.SHUT_WR)  # done: the loop ends
    frames = list(_frames(ours))
    thread.join(timeout=10)
    ours.close()
    assert frames[0] == READY
    (ok, (error, text)), (ok_too, (other, other_text)) = frames[1:]
    assert (ok, ok_too) == (False, False)
    assert isinstance(error, ValueError) and str(error) == "no such tag"
    assert 'raise ValueError("no such tag")' in text
    assert isinstance(other, RuntimeError) and "lock" in str(other)
    assert "raise _Unpicklable()" in other_text
    assert not thread.is_alive()
