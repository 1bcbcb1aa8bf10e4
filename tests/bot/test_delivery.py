"""The outbox and the due jobs: delivered after the commit, in order, retried, fired once."""

from __future__ import annotations

import asyncio
import re
import threading

import pytest
from sqlalchemy import func, select

from bot.db import open_database
from bot.db.models import DeliveryState, Huddle, Job, JobState, Outbox, Person
from bot.router import Router
from bot.runtime import codec, jobs, outbox
from bot.runtime.ports import DeliveryError, MessageRef
from bot.services import Services, huddles, people
from bot.types import Actions, Command, Line, Mention, Reply, Text, Where
from tests.helpers import person_id, say


class Recorder:
    """A Messenger that records what it was asked to deliver, and fails when told to."""

    platform = "test"

    def __init__(
        self, failures: int = 0, fatal: bool = False, refuse: frozenset[str] = frozenset()
    ) -> None:
        self.calls: list[tuple[str, str, Reply]] = []
        self.failures = failures
        self.fatal = fatal
        self.refuse = refuse  # targets that fail for good
        self.count = 0

    def _record(self, kind: str, target: str, reply: Reply) -> MessageRef:
        if self.fatal or target in self.refuse:
            raise DeliveryError("channel_not_found")
        if self.failures:
            self.failures -= 1
            raise ConnectionError("timed out")
        self.calls.append((kind, target, reply))
        self.count += 1
        return MessageRef(target.split("/")[0], f"m{self.count}")

    async def post(self, channel: str, reply: Reply) -> MessageRef:
        return self._record("post", channel, reply)

    async def reply_in_thread(self, root: MessageRef, reply: Reply) -> MessageRef:
        return self._record("thread", f"{root.channel}/{root.message}", reply)

    async def direct_message(self, handle: str, reply: Reply) -> MessageRef:
        return self._record("dm", handle, reply)

    async def update(self, ref: MessageRef, reply: Reply) -> None:
        self._record("update", f"{ref.channel}/{ref.message}", reply)


def _deliver(services: Services, messenger: Recorder) -> int:
    return asyncio.run(outbox.deliver(services.db, {"test": messenger}, services.clock))


def _link_test_identities(services: Services) -> None:
    with services.db.unit_of_work() as session:
        for key in ("alex", "maria", "omar", "priya"):
            people.link_identity(session, people.by_key(session, key), "test", f"U-{key}")


def test_a_huddle_is_delivered_root_first_with_mentions_as_handles(
    demo: Services, router: Router
) -> None:
    _link_test_identities(demo)
    say(demo, router, "alex", "huddle", "chargeback dispute @maria @omar")
    say(demo, router, "maria", "huddle", "reply 1 Get the statement")
    recorder = Recorder()
    assert _deliver(demo, recorder) == 4
    kinds = [call[0] for call in recorder.calls]
    # The thread root first, then the messages that point to it.
    assert kinds == ["post", "dm", "dm", "thread"]
    post = next(call for call in recorder.calls if call[0] == "post")
    line = next(e for e in post[2].elements if isinstance(e, Line))
    handles = [p.handle for p in line.parts if isinstance(p, Mention)]
    assert handles == ["U-alex", "U-maria", "U-omar"]
    # The thread reply went under the root, whose reference the huddle now keeps.
    with demo.db.unit_of_work() as session:
        huddle = session.get(Huddle, 1)
        assert (huddle.channel_ref, huddle.thread_ref) == (
            "billing-huddles",
            "m1",
        )
    assert recorder.calls[3][1] == f"billing-huddles/{huddle.thread_ref}"
    assert _deliver(demo, recorder) == 0  # nothing is delivered twice


def test_thread_messages_wait_for_their_root(demo: Services, router: Router) -> None:
    _link_test_identities(demo)
    say(demo, router, "alex", "huddle", "chargeback dispute @maria")
    say(demo, router, "maria", "huddle", "reply 1 On it")
    # The root fails for good: the thread reply cannot go anywhere, and says why.
    assert _deliver(demo, Recorder(fatal=True)) == 0
    with demo.db.unit_of_work() as session:
        rows = session.scalars(select(Outbox).order_by(Outbox.id)).all()
        states = {(r.kind, r.state) for r in rows}
        assert ("post", DeliveryState.FAILED) in states
        thread = next(r for r in rows if r.kind == "thread")
        assert thread.state == DeliveryState.FAILED
        assert "could not be posted" in thread.error


def _text(reply: Reply) -> str:
    return " ".join(
        part if isinstance(part, str) else f"@{part.handle}"
        for element in reply.elements
        if isinstance(element, Line)
        for part in element.parts
    )


def test_the_asker_is_told_once_when_the_huddle_thread_cannot_be_posted(
    demo: Services, router: Router
) -> None:
    _link_test_identities(demo)
    say(demo, router, "alex", "huddle", "chargeback dispute @maria")
    say(demo, router, "maria", "huddle", "reply 1 On it")
    recorder = Recorder(refuse=frozenset({"billing-huddles"}))
    _deliver(demo, recorder)
    _deliver(demo, recorder)  # the notice written by the first round
    notices = [call for call in recorder.calls if call[1] == "U-alex"]
    assert len(notices) == 1  # not once more for the reply that waited on that thread
    assert "could not post huddle thread #1 in billing-huddles (channel_not_found)" in _text(
        notices[0][2]
    )
    # Maria's invitation went out; only the thread itself is missing.
    assert [c[1] for c in recorder.calls if c[0] == "dm"] == ["U-maria", "U-alex"]


def test_the_asker_hears_in_the_thread_who_could_not_be_invited(
    demo: Services, router: Router
) -> None:
    _link_test_identities(demo)
    say(demo, router, "alex", "huddle", "chargeback dispute @maria @omar")
    recorder = Recorder(refuse=frozenset({"U-maria"}))
    _deliver(demo, recorder)
    _deliver(demo, recorder)
    thread = [call for call in recorder.calls if call[0] == "thread"]
    assert len(thread) == 1
    assert thread[0][1] == "billing-huddles/m1"
    text = _text(thread[0][2])
    assert text.startswith("@U-alex")
    assert "could not message Maria Santos (channel_not_found)" in text
    with demo.db.unit_of_work() as session:
        dm = session.scalars(select(Outbox).where(Outbox.state == DeliveryState.FAILED)).one()
        assert dm.kind == "dm"


def test_a_notice_that_cannot_be_delivered_is_not_told_about(
    demo: Services, router: Router
) -> None:
    _link_test_identities(demo)
    say(demo, router, "alex", "huddle", "chargeback dispute @maria")
    recorder = Recorder(refuse=frozenset({"billing-huddles", "U-alex"}))
    for _ in range(3):
        _deliver(demo, recorder)
    with demo.db.unit_of_work() as session:
        rows = session.scalars(select(Outbox).order_by(Outbox.id)).all()
        assert [(r.kind, r.state) for r in rows] == [
            ("post", DeliveryState.FAILED),
            ("dm", DeliveryState.SENT),
            ("notice", DeliveryState.FAILED),
        ]


def _post(services: Services, text: str) -> None:
    with services.db.unit_of_work() as session:
        outbox.enqueue(
            session,
            platform="test",
            kind="post",
            channel="general",
            reply=Reply.of(Text(text)),
            now=services.clock(),
        )


def test_network_faults_are_retried_with_backoff_then_given_up(demo: Services) -> None:
    _post(demo, "hello")
    flaky = Recorder(failures=2)
    assert _deliver(demo, flaky) == 0
    assert _deliver(demo, flaky) == 0  # not due yet: backing off
    demo.clock.advance(15)
    assert _deliver(demo, flaky) == 0  # second failure
    demo.clock.advance(60)
    assert _deliver(demo, flaky) == 1
    assert [call[1] for call in flaky.calls] == ["general"]

    _post(demo, "again")
    down = Recorder(failures=100)
    for _ in range(outbox.MAX_ATTEMPTS + 1):
        _deliver(demo, down)
        demo.clock.advance(3600)
    with demo.db.unit_of_work() as session:
        last = session.scalars(select(Outbox).order_by(Outbox.id.desc())).first()
        assert last.state == DeliveryState.FAILED
        assert last.attempts == outbox.MAX_ATTEMPTS
        assert "ConnectionError" in last.error


def test_a_direct_message_to_someone_without_an_account_fails_clearly(demo: Services) -> None:
    with demo.db.unit_of_work() as session:
        maria = people.by_key(session, "maria")
        outbox.enqueue(
            session,
            platform="test",
            kind="dm",
            person_id=maria.id,
            reply=Reply.of(Text("hi")),
            now=demo.clock(),
        )
    recorder = Recorder()
    assert _deliver(demo, recorder) == 0
    assert recorder.calls == []
    with demo.db.unit_of_work() as session:
        row = session.scalars(select(Outbox)).one()
        assert row.state == DeliveryState.FAILED
        # Who, and what an admin does about it; never our internal id.
        assert row.error.startswith("Maria Santos has no Slack or Microsoft Teams account")
        assert "`whoknows people link maria --slack U…`" in row.error
        assert not re.search(r"person \d", row.error)


def test_a_rolled_back_command_leaves_nothing_to_deliver(demo: Services) -> None:
    with pytest.raises(RuntimeError), demo.db.unit_of_work() as session:
        alex = people.by_key(session, "alex")
        huddles.open_huddle(
            demo,
            session,
            alex,
            "chargebacks",
            [people.by_key(session, "maria")],
            platform="test",
            where=Where(channel="general"),
        )
        raise RuntimeError("the command failed after opening")
    with demo.db.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(Outbox)) == 0
        assert session.scalar(select(func.count()).select_from(Job)) == 0


def test_two_workers_racing_for_due_jobs_fire_each_once(demo: Services, router: Router) -> None:
    count = 12
    for i in range(count):
        say(demo, router, "alex", "huddle", f"chargeback dispute number {i} @maria")
    demo.clock.advance(demo.settings.escalation_timeout_s + 1)
    workers = [
        Services(open_database(demo.db.url), demo.settings, clock=demo.clock) for _ in range(2)
    ]
    fired: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def work(services: Services, name: str) -> None:
        try:
            start.wait()
            fired.append(jobs.run_due(services, worker=name))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [
        threading.Thread(target=work, args=(w, f"worker-{i}")) for i, w in enumerate(workers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    for worker in workers:
        worker.db.dispose()
    assert errors == []
    assert sum(fired) == count
    with demo.db.unit_of_work() as session:
        done = session.scalars(
            select(Job).where(Job.kind == "escalate", Job.state == JobState.DONE)
        ).all()
        assert len(done) == count
        assert len({job.huddle_id for job in done}) == count
        steps = session.scalars(select(Huddle.ladder_step)).all()
        assert steps == [1] * count
        notes = session.scalar(
            select(func.count())
            .select_from(Outbox)
            .where(Outbox.kind == "thread", Outbox.body.contains("No answer yet"))
        )
        assert notes == count


def test_deliveries_to_a_place_the_bot_was_removed_from_are_stopped_with_the_reason(
    demo: Services, router: Router
) -> None:
    _link_test_identities(demo)
    say(demo, router, "alex", "huddle", "chargeback dispute @maria")
    say(demo, router, "maria", "huddle", "reply 1 On it")
    gone = {"billing-huddles", "U-alex"}  # say, a workspace the bot was uninstalled from
    stopped = outbox.stop(demo.db, "test", "uninstalled", demo.clock(), goes_to=gone.__contains__)
    # The root, the reply waiting for it, and the note telling Alex (who is there too).
    assert stopped == 3
    with demo.db.unit_of_work() as session:
        rows = {(r.kind, r.state, r.error) for r in session.scalars(select(Outbox))}
    assert rows == {
        ("post", DeliveryState.FAILED, "uninstalled"),
        ("thread", DeliveryState.FAILED, outbox.ROOT_FAILED),
        ("notice", DeliveryState.FAILED, "uninstalled"),
        ("dm", DeliveryState.PENDING, None),
    }
    # Only Maria's invitation, elsewhere, still goes out; nothing is stopped twice.
    recorder = Recorder()
    assert _deliver(demo, recorder) == 1 and recorder.calls[0][:2] == ("dm", "U-maria")
    assert outbox.stop(demo.db, "test", "again", demo.clock(), goes_to=gone.__contains__) == 0


def test_a_kick_delivers_at_once_and_leaves_timers_to_the_tick(
    demo: Services, router: Router
) -> None:
    """Every command kicks the worker; under load, timers and take-overs would be asked
    after each one. A kick delivers what was just written; due timers wait for the tick."""
    from bot.runtime.worker import Worker

    _link_test_identities(demo)
    recorder = Recorder()

    def due_and_pending() -> set[int]:
        with demo.db.reading() as session:
            query = select(Job.id).where(Job.state == JobState.PENDING, Job.due_at <= demo.clock())
            return set(session.scalars(query))

    async def scenario() -> None:
        worker = Worker(demo, {"test": recorder}, interval=3600)
        worker.start()
        say(demo, router, "alex", "huddle", "chargeback dispute @maria")
        worker.kick()

        async def delivered(count: int) -> None:
            while len(recorder.calls) < count:
                await asyncio.sleep(0.05)

        await asyncio.wait_for(delivered(2), 20)  # the root and its DM, not in an hour
        assert not due_and_pending()
        demo.clock.advance(demo.settings.escalation_timeout_s + 1)  # a timer is due
        due = due_and_pending()
        assert due
        say(demo, router, "omar", "huddle", "roaming charges @priya")
        worker.kick()
        await asyncio.wait_for(delivered(4), 20)
        assert due_and_pending() == due  # delivered at once; the due timer waits its tick
        await worker.stop(timeout=10)

    asyncio.run(scenario())


# --- reaching people on another platform ------------------------------------------------


def _deliver_to(services: Services, messengers: dict[str, Recorder]) -> int:
    return asyncio.run(outbox.deliver(services.db, messengers, services.clock))


def _link(services: Services, platform: str, *keys: str) -> None:
    with services.db.unit_of_work() as session:
        for key in keys:
            people.link_identity(
                session, people.by_key(session, key), platform, f"{platform}-{key}"
            )


def _open_on_slack(services: Services, router: Router, text: str, key: str = "alex") -> Reply:
    """`huddle …` typed in Slack by `key`, its @mentions resolved as the adapter would."""
    mentions = {t: person_id(services, t[1:]) for t in re.findall(r"@[\w.-]+", text)}
    command = Command("slack", person_id(services, key), "huddle", text, mentions=mentions)
    return router.dispatch(command, services)


def _all_text(reply: Reply) -> str:
    return " ".join([e.text for e in reply.elements if isinstance(e, Text)] + [_text(reply)])


def test_an_expert_with_no_account_where_the_thread_is_is_asked_where_they_have_one(
    demo: Services, router: Router
) -> None:
    _link(demo, "slack", "alex", "omar")
    _link(demo, "teams", "maria")  # on Teams only
    _open_on_slack(demo, router, "chargeback dispute @maria @omar")
    with demo.db.unit_of_work() as session:
        dms = {
            r.person_id: r.platform
            for r in session.scalars(select(Outbox).where(Outbox.kind == "dm"))
        }
    # Chosen when the message is written, from the accounts each has.
    assert dms == {person_id(demo, "maria"): "teams", person_id(demo, "omar"): "slack"}
    slack, teams = Recorder(), Recorder()
    _deliver_to(demo, {"slack": slack, "teams": teams})
    (invitation,) = teams.calls
    assert invitation[:2] == ("dm", "teams-maria")
    said = _all_text(invitation[2])
    assert "Alex Turner asked for your help: “chargeback dispute”" in said
    assert "Huddle thread #1 is on Slack, where you have no account yet" in said
    pressed = [b for e in invitation[2].elements if isinstance(e, Actions) for b in e.buttons]
    assert [(b.label, b.action_id, b.value) for b in pressed] == [
        ("Answer", "huddle.answer", "1"),
        ("Decline", "huddle.decline", "1"),
    ]
    # Omar, on Slack, gets the usual invitation; the thread says where Maria was asked.
    assert [c[1] for c in slack.calls if c[0] == "dm"] == ["slack-omar"]
    assert "Answer" not in _all_text(next(c[2] for c in slack.calls if c[0] == "dm"))
    lines = [_text(c[2]) for c in slack.calls if c[0] == "thread"]
    assert lines == [
        "Maria Santos has no Slack account, so I asked them on Microsoft Teams: their answer "
        "will be posted here."
    ]
    # In the thread, under its root.
    assert [c[1] for c in slack.calls if c[0] == "thread"] == ["billing-huddles/m1"]


def test_an_escalation_step_asks_experts_on_the_platform_they_are_on(
    demo: Services, router: Router
) -> None:
    _link(demo, "slack", "alex", "omar")
    with demo.db.unit_of_work() as session:
        others = [p.key for p in session.scalars(select(Person)) if p.key not in {"alex", "omar"}]
    _link(demo, "teams", *others)  # everyone else is on Teams only
    _open_on_slack(demo, router, "chargeback dispute @omar")
    reply = _open_on_slack(demo, router, "decline 1", key="omar")  # the ladder climbs at once
    assert "off huddle thread #1" in reply.elements[0].text  # type: ignore[union-attr]
    with demo.db.unit_of_work() as session:
        huddle = session.get(Huddle, 1)
        escalated = [p.person for p in huddle.participants if p.round == 1]
        assert escalated
        names = [p.display_name for p in escalated]
        ids = {p.id for p in escalated}
        rows = session.scalars(select(Outbox).where(Outbox.person_id.in_(ids))).all()
        assert {(r.kind, r.platform) for r in rows} == {("dm", "teams")}
        notes = [
            _text(codec.loads(r.body))
            for r in session.scalars(select(Outbox).where(Outbox.kind == "thread"))
        ]
    for name in names:
        assert f"{name} has no Slack account, so I asked them on Microsoft Teams" in " ".join(notes)


def test_someone_with_no_chat_account_is_not_dropped_the_asker_hears_how_to_link_them(
    demo: Services, router: Router
) -> None:
    _link(demo, "slack", "alex", "omar")  # Maria has only her console identity, as imported
    _open_on_slack(demo, router, "chargeback dispute @maria @omar")
    slack = Recorder()
    _deliver_to(demo, {"slack": slack})
    _deliver_to(demo, {"slack": slack})  # the note written by the first round
    (note,) = [_text(c[2]) for c in slack.calls if c[0] == "thread"]
    assert note.startswith("@slack-alex ")
    assert (
        "Maria Santos has no Slack or Microsoft Teams account linked yet, so I could not ask "
        "them in huddle thread #1: an admin can link it with `whoknows people link maria "
        "--slack U…`." in note
    )
    assert not re.search(r"person \d", note)
    assert [c[1] for c in slack.calls if c[0] == "dm"] == ["slack-omar"]


def test_what_a_platform_says_of_someone_names_them_not_their_id(
    demo: Services, router: Router
) -> None:
    class Blocked(Recorder):
        async def direct_message(self, handle: str, reply: Reply) -> MessageRef:
            raise DeliveryError(f"{handle} blocked the bot or removed the app")

    _link(demo, "slack", "alex", "maria")
    _open_on_slack(demo, router, "chargeback dispute @maria")
    slack = Blocked()
    _deliver_to(demo, {"slack": slack})
    _deliver_to(demo, {"slack": slack})
    (note,) = [_text(c[2]) for c in slack.calls if c[0] == "thread"]
    assert "could not message Maria Santos (Maria Santos blocked the bot" in note
    assert "slack-maria" not in note
    with demo.db.unit_of_work() as session:  # the operator's record keeps what Slack said
        dm = session.scalars(select(Outbox).where(Outbox.kind == "dm")).one()
        assert dm.error == "slack-maria blocked the bot or removed the app"


def test_a_platform_that_never_answers_is_told_in_words_not_as_an_exception(
    demo: Services, router: Router
) -> None:
    _link(demo, "slack", "alex", "maria")
    _open_on_slack(demo, router, "chargeback dispute @maria")
    down = Recorder(failures=1000)
    for _ in range(outbox.MAX_ATTEMPTS + 1):
        _deliver_to(demo, {"slack": down})
        demo.clock.advance(3600)
    with demo.db.unit_of_work() as session:
        notices = session.scalars(select(Outbox).where(Outbox.kind == "notice")).all()
        told = " ".join(_text(codec.loads(n.body)) for n in notices)
        dm = session.scalars(select(Outbox).where(Outbox.kind == "dm")).one()
    assert "could not message Maria Santos (Slack did not answer after 5 tries" in told
    assert "ConnectionError" not in told and "ConnectionError" in dm.error


def test_the_team_lead_is_told_on_the_platform_they_are_on(demo: Services, router: Router) -> None:
    _link(demo, "slack", "alex", "maria")
    _link(demo, "teams", "priya")  # Billing's lead, on Teams only
    _open_on_slack(demo, router, "chargeback dispute @maria")
    for _ in demo.settings.escalation_ladder:
        demo.clock.advance(demo.settings.escalation_timeout_s)
        jobs.run_due(demo)
    with demo.db.unit_of_work() as session:
        to_priya = session.scalars(
            select(Outbox).where(Outbox.kind == "dm", Outbox.person_id == person_id(demo, "priya"))
        ).all()
        told = [r for r in to_priya if "Nobody has answered" in _all_text(codec.loads(r.body))]
        assert [r.platform for r in told] == ["teams"]
