"""Slack's directory read while commands are acked: `whoknows serve` against a fake users.list.

A fake workspace of 20,000 members (the tests' fake Slack Web API, in this process:
users.list with cursor pagination and e-mails) and a SQLite database holding
10,000 people a lead imported with those members' e-mails. `whoknows serve`
starts on it as a subprocess and reads the directory at start (200 a page, each
page linked in one unit of work off the event loop); meanwhile signed
`/whoknows` commands arrive at a steady rate. Then the same commands with no
read going on. Prints, over `--runs` runs on a fresh copy of the database:

- the read's time (median), as the server logs it, and members linked a second;
- whether every member was linked once (imported people by e-mail, the others
  created) and nobody twice;
- the ack latency (p50 / p99) of the commands sent while the read ran, and of
  those sent with no read.

The read is held back by a 429 on its first users.list (Retry-After 5 s, waited
out as from Slack) while the same load warms the server up; its time is counted
from the retry.

    .venv/bin/python bench/slack_directory.py [--users N] [--imported N] [--runs N] [--rate N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp import ClientSession, TCPConnector  # noqa: E402

from adapters.slack.verify import sign  # noqa: E402
from bench.common import free_port, pct, wait_for_port  # noqa: E402
from tests.adapters.slack.fake_slack import TEAM, FakeSlack, member  # noqa: E402

SECRET = "bench-signing-secret"
TOPICS = ("refunds", "roaming", "prepaid top-up", "sim swap", "contract cancellation")
DONE = re.compile(
    r"Slack directory \S+: (\d+) page\(s\), (\d+) user\(s\) done in ([\d.]+) s"
    r".*waited out \(([\d.]+) s\)"
)
# The read's first users.list is answered 429 with this Retry-After: the server warms
# up meanwhile (its command process, the first rankings), under the same load.
WARM_UP_S = 5


def members(count: int) -> list[dict[str, Any]]:
    return [
        member(f"U{n:07d}", f"agent{n}", f"Agent {n}", email=f"Agent.{n}@Northwind.example")
        for n in range(count)
    ]


def build_database(folder: Path, imported: int) -> Path:
    """People a lead imported: handles unrelated to Slack ids, the members' e-mails."""
    from bot.data.transfer import import_people
    from bot.db import open_database

    rng = random.Random(3)
    csv = folder / "people.csv"
    with csv.open("w", encoding="utf-8", newline="") as out:
        out.write("id,name,team,timezone,skills,email\n")
        for n in range(imported):
            skills = ";".join(f"{t}:{rng.randint(1, 5)}" for t in rng.sample(TOPICS, 2))
            out.write(
                f"p{n:05d},Agent {n},Team {n % 40},Europe/London,{skills},"
                f"agent.{n}@northwind.example\n"
            )
    path = folder / "template.db"
    database = open_database(f"sqlite:///{path}")
    started = time.perf_counter()
    report = import_people(database, csv, datetime.now(UTC))
    assert report.ok, report
    database.dispose()
    print(f"{imported:,} people imported in {time.perf_counter() - started:.1f} s", flush=True)
    return path


class Load:
    """Signed /whoknows commands at `rate` a second (Poisson), acks timed."""

    def __init__(self, port: int, fake: FakeSlack, users: int, rate: float, seed: int) -> None:
        self.url = f"http://127.0.0.1:{port}/slack/events"
        self.fake, self.users, self.rate = fake, users, rate
        self.rng = random.Random(seed)
        self.latencies: list[float] = []
        self.sent = 0

    async def _one(self, session: ClientSession, n: int, tag: str) -> None:
        body = urlencode(
            {
                "command": "/whoknows",
                "text": self.rng.choice(TOPICS),
                "user_id": f"U{self.rng.randrange(self.users):07d}",
                "team_id": TEAM,
                "channel_id": "CGENERAL",
                "response_url": self.fake.response_url(f"{tag}{n}"),
                "trigger_id": f"trigger-{tag}{n}",
            }
        ).encode()
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            **sign(SECRET, body, int(time.time())),
        }
        started = time.perf_counter()
        async with session.post(self.url, data=body, headers=headers) as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"status {response.status}")
        self.latencies.append(time.perf_counter() - started)

    async def until(self, stop: asyncio.Event, tag: str, at_most: float = 600) -> None:
        """Commands until `stop` is set (or `at_most` seconds)."""
        deadline = time.monotonic() + at_most
        tasks = []
        async with ClientSession(connector=TCPConnector(limit=100)) as session:
            while not stop.is_set() and time.monotonic() < deadline:
                tasks.append(asyncio.create_task(self._one(session, self.sent, tag)))
                self.sent += 1
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.rng.expovariate(self.rate))
            await asyncio.gather(*tasks)


def count_people(database_file: Path) -> tuple[int, int, int]:
    """People, Slack identities, and imported people with a Slack account."""
    import sqlite3

    with sqlite3.connect(database_file) as db:
        people = db.execute("SELECT count(*) FROM person").fetchone()[0]
        identities = db.execute("SELECT count(*) FROM identity WHERE platform='slack'").fetchone()[
            0
        ]
        linked = db.execute(
            "SELECT count(DISTINCT p.id) FROM person p JOIN identity i ON i.person_id = p.id "
            "WHERE i.platform = 'slack' AND p.origin = 'import'"
        ).fetchone()[0]
    return people, identities, linked


async def one_run(
    args: argparse.Namespace, template: Path, folder: Path, users: list[dict[str, Any]], run: int
) -> dict[str, Any]:
    database_file = folder / f"run{run}.db"
    shutil.copy(template, database_file)
    fake = FakeSlack()
    fake.add_users(*users)
    fake.rate_limit("users.list", retry_after=WARM_UP_S, on_call=1)
    await fake.start()
    port = free_port()
    log_path = folder / f"run{run}.log"
    env = {
        **os.environ,
        "WHOKNOWS_DATABASE_URL": f"sqlite:///{database_file}",
        "WHOKNOWS_SEMANTIC": "off",
        "WHOKNOWS_LOG_LEVEL": "INFO",
        "SLACK_BOT_TOKEN": "xoxb-bench-directory",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": fake.api_url,
    }
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "adapters.cli", "serve", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        await asyncio.to_thread(wait_for_port, port)
        done = asyncio.Event()

        async def watch() -> None:
            while not DONE.search(log_path.read_text()):
                if server.poll() is not None:
                    raise RuntimeError(f"whoknows serve stopped: see {log_path}")
                await asyncio.sleep(0.05)
            done.set()

        warm = Load(port, fake, len(users), args.rate, seed=200 + run)
        reading = asyncio.Event()

        async def first_page() -> None:
            while len([c for c in fake.calls if c.method == "users.list"]) < 2:
                await asyncio.sleep(0.01)
            reading.set()

        await asyncio.gather(first_page(), warm.until(reading, "w"))
        during = Load(port, fake, len(users), args.rate, seed=run)
        await asyncio.gather(watch(), during.until(done, "d"))
        found = DONE.search(log_path.read_text())
        assert found is not None
        pages, listed = int(found[1]), int(found[2])
        seconds = float(found[3]) - float(found[4])  # less the warm-up's Retry-After
        await asyncio.sleep(1)  # answers of the last commands settle
        quiet = Load(port, fake, len(users), args.rate, seed=100 + run)
        stop = asyncio.Event()
        asyncio.get_running_loop().call_later(args.quiet_s, stop.set)
        await quiet.until(stop, "q")
    finally:
        server.send_signal(signal.SIGINT)
        await asyncio.to_thread(server.wait, 60)
        calls = [c.at for c in fake.calls if c.method == "users.list"]
        await fake.close()
    people, identities, linked = count_people(database_file)
    return {
        "pages": pages,
        "users": listed,
        "seconds": seconds,
        "users_list_calls": len(calls),
        "people": people,
        "slack_identities": identities,
        "imported_linked": linked,
        "during": during.latencies,
        "quiet": quiet.latencies,
    }


async def main_async(args: argparse.Namespace) -> None:
    folder = Path(tempfile.mkdtemp(prefix="whoknows-slack-directory-"))
    try:
        template = build_database(folder, args.imported)
        users = members(args.users)
        runs = []
        for run in range(args.runs):
            result = await one_run(args, template, folder, users, run)
            print(
                f"run {run + 1}: {result['users']:,} users in {result['seconds']:.1f} s, "
                f"{len(result['during'])} commands during, {len(result['quiet'])} after",
                flush=True,
            )
            runs.append(result)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    seconds = statistics.median(r["seconds"] for r in runs)
    during = [x for r in runs for x in r["during"]]
    quiet = [x for r in runs for x in r["quiet"]]
    last = runs[-1]
    print(
        json.dumps(
            {
                "users": args.users,
                "imported": args.imported,
                "runs": args.runs,
                "pages": last["pages"],
                "sync_s": {
                    "median": round(seconds, 1),
                    "all": [round(r["seconds"], 1) for r in runs],
                },
                "people_per_s": round(args.users / seconds),
                # After each read: the imported linked by e-mail, the others created once.
                "people_after": sorted({r["people"] for r in runs}),
                "slack_identities_after": sorted({r["slack_identities"] for r in runs}),
                "imported_linked": sorted({r["imported_linked"] for r in runs}),
                "commands_per_s": args.rate,
                "ack_ms_during_sync": {
                    "commands": len(during),
                    "p50": pct(during, 0.5),
                    "p99": pct(during, 0.99),
                },
                "ack_ms_no_sync": {
                    "commands": len(quiet),
                    "p50": pct(quiet, 0.5),
                    "p99": pct(quiet, 0.99),
                },
            },
            indent=2,
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20_000, help="members of the workspace")
    parser.add_argument("--imported", type=int, default=10_000, help="of them, imported by CSV")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=20.0, help="commands a second")
    parser.add_argument("--quiet-s", type=float, default=15.0, help="seconds of load with no read")
    parser.add_argument("--keep", action="store_true", help="keep the databases and logs")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
