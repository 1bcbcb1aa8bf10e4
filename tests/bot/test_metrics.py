"""Metrics: what commands, huddles and jobs count, when they count it, and the scrape."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.exc import OperationalError

from bot import messages
from bot.config import Settings
from bot.db import Database
from bot.db.models import DeliveryState, Huddle, Outbox
from bot.ops import metrics
from bot.router import Context, Router
from bot.runtime import jobs, outbox
from bot.services import Services
from bot.types import Reply
from tests.helpers import notices, say

ROOT = Path(__file__).resolve().parents[2]


def value(services: Services, name: str, **labels: str) -> float:
    return metrics.registry(services).get_sample_value(name, labels) or 0.0


def opened(services: Services) -> float:
    return value(services, "whoknows_huddles_opened_total")


def test_counts_land_when_the_transaction_commits_and_never_when_it_rolls_back(
    services: Services,
) -> None:
    before = opened(services)
    with services.db.unit_of_work() as session:
        metrics.huddle(session, "opened")
        assert opened(services) == before  # not yet: it may still roll back
    assert opened(services) == before + 1

    with pytest.raises(RuntimeError), services.db.unit_of_work() as session:
        metrics.huddle(session, "opened")
        raise RuntimeError("rolled back")
    assert opened(services) == before + 1

    # A savepoint that rolls back takes its counts with it; the rest still count.
    with services.db.unit_of_work() as session:
        with session.begin_nested():
            metrics.huddle(session, "opened")
        with pytest.raises(RuntimeError), session.begin_nested():
            metrics.huddle(session, "opened")
            raise RuntimeError("savepoint rolled back")
        metrics.huddle(session, "opened")
    assert opened(services) == before + 3

    # A savepoint that committed inside a transaction that rolled back counts nothing.
    with pytest.raises(RuntimeError), services.db.unit_of_work() as session:
        with session.begin_nested():
            metrics.huddle(session, "opened")
        raise RuntimeError("rolled back")
    assert opened(services) == before + 3


def test_a_who_knows_question_is_timed_and_its_answer_counted(
    demo: Services, router: Router
) -> None:
    count = "whoknows_command_duration_seconds_count"
    timed = value(demo, count, command="whoknows")
    confident = value(demo, "whoknows_answers_total", confident="true")
    unsure = value(demo, "whoknows_answers_total", confident="false")
    say(demo, router, "alex", "whoknows", "refund for a prepaid top-up")
    # An alias is counted under the command's own name.
    say(demo, router, "alex", "who", "qwzx vbnm plokij")
    assert value(demo, count, command="whoknows") == timed + 2
    assert value(demo, "whoknows_answers_total", confident="true") == confident + 1
    assert value(demo, "whoknows_answers_total", confident="false") == unsure + 1
    assert value(demo, count, command="who") == 0


def test_huddles_escalations_and_jobs_are_counted(demo: Services, router: Router) -> None:
    def counts() -> dict[str, float]:
        return {
            **{
                event: value(demo, f"whoknows_huddles_{event}_total")
                for event in metrics.HUDDLE_EVENTS
            },
            **{
                step: value(demo, "whoknows_escalations_total", step=step)
                for step in ("experts", "channel", "lead")
            },
            "jobs": value(demo, "whoknows_jobs_run_total", kind="escalate"),
            "expiries": value(demo, "whoknows_jobs_run_total", kind="expire"),
        }

    def open_huddle(topic: str) -> int:
        text = notices(say(demo, router, "alex", "huddle", topic))[0].text
        found = re.search(r"Opened huddle thread #(\d+)", text)
        assert found, text
        return int(found.group(1))

    before = counts()
    first = open_huddle("refund for a prepaid top-up")
    timeout = demo.settings.escalation_timeout_s
    for _ in demo.settings.escalation_ladder:
        demo.clock.advance(timeout)
        assert jobs.run_due(demo) == 1
    say(demo, router, "alex", "huddle", f"cancel {first}")
    second = open_huddle("chargeback on a card payment @maria")
    say(demo, router, "maria", "huddle", f"reply {second} Ask for the statement")
    say(demo, router, "alex", "huddle", f"resolve {second} Chargebacks | Get the statement")
    open_huddle("late fees on a closed account @omar")
    demo.clock.advance(demo.settings.huddle_expiry_s)
    jobs.run_due(demo)

    after = counts()
    change = {key: after[key] - before[key] for key in after}
    assert change == {
        "opened": 3,
        "resolved": 1,
        "cancelled": 1,
        "expired": 1,
        # The first huddle's whole ladder, then the third's first step before it expired.
        "experts": 1 + 1,
        "channel": 1,
        "lead": 1,
        "jobs": 3 + 1,
        "expiries": 1,
    }


def test_failed_commands_count_as_errors_and_still_answer(services: Services) -> None:
    router = Router()

    @router.command("boom", usage="boom", summary="fails")
    def boom(ctx: Context) -> Reply:
        raise RuntimeError("a bug")

    @router.command("flaky", usage="flaky", summary="no database")
    def flaky(ctx: Context) -> Reply:
        raise OperationalError("SELECT 1", {}, ConnectionError("gone"))

    internal = value(services, "whoknows_command_errors_total", command="boom", error="internal")
    database = value(services, "whoknows_command_errors_total", command="flaky", error="database")
    from bot.types import Command

    reply = router.dispatch(Command("test", 1, "boom", ""), services)
    assert notices(reply)[0].text == messages.INTERNAL_ERROR
    reply = router.dispatch(Command("test", 1, "flaky", ""), services)
    assert notices(reply)[0].text == messages.DATABASE_UNAVAILABLE
    assert (
        value(services, "whoknows_command_errors_total", command="boom", error="internal")
        == internal + 1
    )
    assert (
        value(services, "whoknows_command_errors_total", command="flaky", error="database")
        == database + 1
    )
    # Every attempt was timed, the failed ones too.
    assert value(services, "whoknows_command_duration_seconds_count", command="flaky") >= 3


def test_recording_never_raises_and_never_swallows(services: Services) -> None:
    metrics.huddle(None, "no such event")  # logged once, not raised
    metrics.escalation(None, "a" * 10_000)
    sent = value(services, "whoknows_outbox_deliveries_total", platform="slack", result="sent")
    metrics.delivery("slack", "sent")
    assert (
        value(services, "whoknows_outbox_deliveries_total", platform="slack", result="sent")
        == sent + 1
    )
    with pytest.raises(ValueError, match="the command's own"), metrics.command("test"):
        raise ValueError("the command's own error")


def test_the_database_gauges_come_from_the_rows(services: Services) -> None:
    def gauges() -> tuple[float, float, float, float]:
        return (
            value(services, "whoknows_outbox_depth", state="pending"),
            value(services, "whoknows_outbox_depth", state="failed"),
            value(services, "whoknows_job_lag_seconds"),
            value(services, "whoknows_huddles_open"),
        )

    assert gauges() == (0, 0, 0, 0)
    assert value(services, "whoknows_database_up") == 1
    now = services.clock()
    with services.db.unit_of_work() as session:
        for channel in ("a", "b", "c"):
            outbox.enqueue(
                session, platform="slack", kind="post", channel=channel, reply=Reply(()), now=now
            )
        session.add(Huddle(topic="refunds", created_at=now))
        jobs.schedule(session, "reminder", now - timedelta(seconds=90))
        jobs.schedule(session, "reminder", now - timedelta(seconds=30), step=1)
        jobs.schedule(session, "reminder", now + timedelta(hours=1), step=2)
    with services.db.unit_of_work() as session:
        first = session.query(Outbox).order_by(Outbox.id).first()
        assert first is not None
        first.state = DeliveryState.FAILED
    assert gauges() == (2, 1, 90, 1)
    jobs.run_due(services)  # no handler for these: cancelled, so none is due any more
    assert value(services, "whoknows_job_lag_seconds") == 0


def test_a_database_that_is_down_reads_as_down(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = "postgresql+psycopg://whoknows:pa55word-ffe1@127.0.0.1:1/whoknows?connect_timeout=2"
    down = Services(Database(url), Settings(database_url=url, home=tmp_path))
    body, content_type = metrics.render(down)
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert families["whoknows_database_up"].samples[0].value == 0
    assert "whoknows_outbox_depth" not in families
    assert content_type.startswith("text/plain")
    assert "pa55word" not in caplog.text


SCRIPT = """
import multiprocessing
import os
import sys
from pathlib import Path

from bot.ops import metrics


def work(times):
    for _ in range(times):
        metrics.delivery("teams", "sent")
    metrics.http_request("/api/messages", 200, 0.01)


if __name__ == "__main__":
    folder = Path(sys.argv[1])
    folder.mkdir()
    (folder / "counter_99999.db").write_bytes(b"left over from the last run")
    assert metrics.prepare_multiprocess(folder) == str(folder)
    assert not (folder / "counter_99999.db").exists()
    children = [
        multiprocessing.get_context("fork").Process(target=work, args=(2,)),
        multiprocessing.get_context("spawn").Process(target=work, args=(3,)),
    ]
    for child in children:
        child.start()
    for child in children:
        child.join()
        assert child.exitcode == 0
        metrics.mark_process_dead(child.pid)
    work(1)

    from bot.config import Settings
    from bot.db import open_database
    from bot.services import Services

    url = sys.argv[2]
    services = Services(open_database(url, upgrade=False), Settings(url, home=folder))
    body, _ = metrics.render(services)
    sys.stdout.write(body.decode())
"""


def test_worker_processes_add_up_in_one_scrape(database_url: str, tmp_path: Path) -> None:
    script = tmp_path / "workers.py"
    script.write_text(textwrap.dedent(SCRIPT))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop(metrics.MULTIPROC_ENV, None)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "metrics"), database_url],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(done.stdout)
        for s in family.samples
    }
    sent = (("platform", "teams"), ("result", "sent"))
    assert samples[("whoknows_outbox_deliveries_total", sent)] == 2 + 3 + 1
    route = (("route", "/api/messages"), ("status", "200"))
    assert samples[("whoknows_http_requests_total", route)] == 3
    # The database's gauges once, however many processes wrote counters.
    assert samples[("whoknows_outbox_depth", (("state", "pending"),))] == 0
    assert sum(1 for name, _ in samples if name == "whoknows_job_lag_seconds") == 1
