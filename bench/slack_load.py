"""Slash commands under load: `whoknows serve` against a bare slack-bolt app that only acks.

Builds the synthetic org of bench/scale.py (default 10,000 people, 2,000 tags,
100,000 knowledge entries) in a SQLite file, starts `whoknows serve` on it as
a subprocess (its Web API and response_url pointed at a local recorder), and
in the same run a bare bolt app whose /whoknows handler only acks. Then fires
signed `/whoknows <question>` requests at concurrency 50 at each and prints:
ack throughput (and its ratio to the bare app's, flooded before and after ours,
since a shared machine's speed drifts), ack latency median / p99,
commands answered exactly once, and end-to-end (command → answer at
response_url) median / p95.

Two ways to load it, both at concurrency 50:
- a flood: each of 50 senders fires its next command as soon as the last one is
  acked, as fast as acks come back. It measures the ack path against the bare
  app; its answers pile up behind the ranking, so its end-to-end figure is the
  time to work off that backlog;
- agents: 50 people each asking, waiting for their answer, and asking again (no
  pause in between). Its end-to-end figure is what an asker sees at that
  concurrency, and its rate is how many answers a second the server sustains.
- paced (`--rate N`, on by default at half the agents' rate): commands arrive at
  N a second, each at a random moment (Poisson), at most 50 in flight, as
  questions from a contact center's floor do. Its end-to-end figure is what an
  asker sees when the server is busy but not overrun.

    .venv/bin/python bench/slack_load.py [--people N] [--entries N] [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp import ClientSession, TCPConnector, web  # noqa: E402

from adapters.slack.verify import sign  # noqa: E402
from bench.common import free_port, pct, wait_for_port  # noqa: E402

SECRET = "bench-signing-secret"
ASKERS = 500  # distinct Slack users asking
BARE_APP = """
import sys
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_bolt.adapter.aiohttp import to_bolt_request, to_aiohttp_response
from slack_sdk.web.async_client import AsyncWebClient
client = AsyncWebClient(token="xoxb-bench", base_url=sys.argv[3])
app = AsyncApp(signing_secret=sys.argv[2], client=client)

@app.command("/whoknows")
async def whoknows(ack):
    await ack()

async def events(request):
    return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

web_app = web.Application()
web_app.router.add_post("/slack/events", events)
web.run_app(web_app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


class Recorder:
    """Plays the Slack Web API and response_url; notes when each answer arrives."""

    def __init__(self) -> None:
        self.answers: Counter[str] = Counter()
        self.arrived: dict[str, float] = {}
        self.waiting: dict[str, asyncio.Event] = {}
        self.runner: web.AppRunner | None = None
        self.port = free_port()

    async def api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if method == "auth.test":
            return web.json_response({"ok": True, "user_id": "UBOT", "team_id": "T1"})
        if method == "users.info":
            user = request.query.get("user") or (await request.post()).get("user") or "U"
            return web.json_response(
                {"ok": True, "user": {"id": user, "name": user.lower(), "tz": "Europe/London"}}
            )
        return web.json_response({"ok": True, "channel": "C1", "ts": f"{time.time():.6f}"})

    async def response(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        await request.read()
        self.answers[key] += 1
        self.arrived.setdefault(key, time.perf_counter())
        self.waiting.setdefault(key, asyncio.Event()).set()
        return web.Response(text="ok")

    async def answer(self, key: str, timeout: float = 120) -> None:
        await asyncio.wait_for(self.waiting.setdefault(key, asyncio.Event()).wait(), timeout)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self.api)
        app.router.add_post("/response/{key}", self.response)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()


def build_org(folder: Path, people: int, tags: int, entries: int) -> Path:
    from bench.scale import generate
    from bot.data.transfer import import_knowledge, import_people
    from bot.db import open_database

    rng = random.Random(7)
    generate(folder, people, tags, entries, rng)
    database_file = folder / "whoknows.db"
    database = open_database(f"sqlite:///{database_file}")
    started = time.perf_counter()
    import_people(database, folder / "people.csv", datetime.now(UTC))
    import_knowledge(database, folder / "kb.jsonl")
    database.dispose()
    print(f"org imported in {time.perf_counter() - started:.0f} s")
    return database_file


async def fire(
    port: int,
    recorder: Recorder,
    questions: list[str],
    concurrency: int,
    tag: str,
    *,
    agents: bool = False,
    rate: float = 0.0,
) -> tuple[float, list[float], dict[str, float]]:
    """Seconds taken, ack latencies, and the send time of each command by key.

    With `agents`, each sender waits for its answer before it asks again; with a
    `rate`, commands are released at that many a second on average."""
    queue: asyncio.Queue[tuple[int, str] | None] = asyncio.Queue()
    latencies: list[float] = []
    sent: dict[str, float] = {}
    url = f"http://127.0.0.1:{port}/slack/events"

    async def release() -> None:
        pace = random.Random(5)
        for i, question in enumerate(questions):
            if rate:
                await asyncio.sleep(pace.expovariate(rate))
            queue.put_nowait((i, question))
        for _ in range(concurrency):
            queue.put_nowait(None)  # no more: each sender stops at one of these

    async def worker(session: ClientSession) -> None:
        while (item := await queue.get()) is not None:
            i, question = item
            key = f"{tag}{i}"
            body = urlencode(
                {
                    "command": "/whoknows",
                    "text": question,
                    "user_id": f"U{i % ASKERS:05d}",
                    "team_id": "T1",
                    "channel_id": "C1",
                    "response_url": f"http://127.0.0.1:{recorder.port}/response/{key}",
                    "trigger_id": "t",
                }
            ).encode()
            headers = {
                "Content-Type": "application/x-www-form-urlencoded",
                **sign(SECRET, body, int(time.time())),
            }
            started = time.perf_counter()
            sent[key] = started
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"status {response.status}")
            latencies.append(time.perf_counter() - started)
            if agents:
                await recorder.answer(key)

    started = time.perf_counter()
    async with ClientSession(connector=TCPConnector(limit=concurrency)) as session:
        await asyncio.gather(release(), *(worker(session) for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, sent


def per_s(requests: list[str], seconds: float) -> float | None:
    return round(len(requests) / seconds, 1) if requests else None


async def run(args: argparse.Namespace, database_file: Path, questions: list[str]) -> None:
    recorder = Recorder()
    await recorder.start()
    ours, bare = free_port(), free_port()
    env = {
        **os.environ,
        "WHOKNOWS_DATABASE_URL": f"sqlite:///{database_file}",
        "WHOKNOWS_SEMANTIC": "on" if args.semantic else "off",
        "SLACK_BOT_TOKEN": "xoxb-bench",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": f"http://127.0.0.1:{recorder.port}/api/",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "adapters.cli",
            "serve",
            "--port",
            str(ours),
            "--workers",
            str(args.workers),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    bare_server = subprocess.Popen(
        [sys.executable, "-c", BARE_APP, str(bare), SECRET, env["SLACK_API_URL"]], cwd=ROOT
    )
    try:
        wait_for_port(ours)
        wait_for_port(bare)
        # Warm up: the first ask loads the index, and every asker asks once, so they are
        # known people (as after Slack's users.list sync), not provisioned in the flood.
        warm = [questions[i % len(questions)] for i in range(ASKERS)]
        await fire(ours, recorder, warm, 10, "warm", agents=True)
        await fire(bare, recorder, questions[:20], 5, "bwarm")
        await asyncio.sleep(5)
        flood = questions[: args.requests]
        bare_s, bare_lat, _ = await fire(bare, recorder, flood, args.concurrency, "b")
        our_s, our_lat, sent = await fire(ours, recorder, flood, args.concurrency, "q")
        # The bare app again, once our answers are out: a shared machine's speed drifts,
        # and the ratio is taken against the mean of the two.
        deadline = time.monotonic() + 300
        while (
            sum(1 for k in sent if k in recorder.arrived) < len(sent)
            and time.monotonic() < deadline
        ):
            await asyncio.sleep(0.2)
        bare_again_s, bare_again_lat, _ = await fire(bare, recorder, flood, args.concurrency, "c")
        agent_questions = questions[: args.agent_requests]
        agent_s, agent_lat, agent_sent = await fire(
            ours, recorder, agent_questions, args.concurrency, "a", agents=True
        )
        rate = args.rate or round(len(agent_questions) / agent_s / 2, 1)
        paced_questions = questions[: args.paced_requests]
        paced_s, paced_lat, paced_sent = await fire(
            ours, recorder, paced_questions, args.concurrency, "p", rate=rate
        )
        deadline = time.monotonic() + 120
        while not all(k in recorder.arrived for k in paced_sent) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        await asyncio.sleep(2)  # anything answered twice would show up by now
    finally:
        for process in (server, bare_server):
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)
    n = args.requests
    sent_all = {**sent, **agent_sent, **paced_sent}
    answered = [k for k in sent_all if recorder.answers[k] >= 1]
    twice = [k for k in sent_all if recorder.answers[k] > 1]
    e2e = [recorder.arrived[k] - sent[k] for k in sent if k in recorder.arrived]
    agent_e2e = [recorder.arrived[k] - agent_sent[k] for k in agent_sent if k in recorder.arrived]
    paced_e2e = [recorder.arrived[k] - paced_sent[k] for k in paced_sent if k in recorder.arrived]
    print(
        json.dumps(
            {
                "requests": n,
                "concurrency": args.concurrency,
                "bare_ack_per_s": round(2 * n / (bare_s + bare_again_s), 1),
                "bare_ack_per_s_before_after": [
                    round(n / bare_s, 1),
                    round(n / bare_again_s, 1),
                ],
                "ours_ack_per_s": round(n / our_s, 1),
                # No flood, no ratio: two near-empty timings would divide into noise.
                "throughput_ratio": round((bare_s + bare_again_s) / 2 / our_s, 3) if n else None,
                "bare_ack_ms": {
                    "median": pct(bare_lat + bare_again_lat, 0.5),
                    "p99": pct(bare_lat + bare_again_lat, 0.99),
                },
                "ours_ack_ms": {
                    "median": pct(our_lat, 0.5),
                    "p99": pct(our_lat, 0.99),
                },
                "commands": len(sent_all),
                "answered_once": len(answered) - len(twice),
                "answered_twice": len(twice),
                "unanswered": len(sent_all) - len(answered),
                "flood_end_to_end_ms": {
                    "median": pct(e2e, 0.5),
                    "p95": pct(e2e, 0.95),
                },
                "agents": {
                    "requests": len(agent_questions),
                    "answers_per_s": per_s(agent_questions, agent_s),
                    "ack_ms": {
                        "median": pct(agent_lat, 0.5),
                        "p99": pct(agent_lat, 0.99),
                    },
                    "end_to_end_ms": {
                        "median": pct(agent_e2e, 0.5),
                        "p95": pct(agent_e2e, 0.95),
                    },
                },
                "paced": {
                    "requests": len(paced_questions),
                    "offered_per_s": rate,
                    "achieved_per_s": per_s(paced_questions, paced_s),
                    "ack_ms": {"median": pct(paced_lat, 0.5), "p99": pct(paced_lat, 0.99)},
                    "end_to_end_ms": {
                        "median": pct(paced_e2e, 0.5),
                        "p95": pct(paced_e2e, 0.95),
                    },
                },
            },
            indent=2,
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--tags", type=int, default=2_000)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument(
        "--agent-requests", type=int, default=1_000, help="commands in the agents phase"
    )
    parser.add_argument(
        "--paced-requests", type=int, default=1_000, help="commands in the paced phase"
    )
    parser.add_argument(
        "--rate", type=float, default=0.0, help="paced commands a second (0: half the agents')"
    )
    parser.add_argument("--semantic", action="store_true", help="rank with sentence vectors")
    parser.add_argument("--workers", type=int, default=1, help="whoknows serve --workers")
    parser.add_argument("--workdir", type=Path, help="keep the generated org here")
    args = parser.parse_args()
    folder = args.workdir or Path(tempfile.mkdtemp(prefix="whoknows-slack-load-"))
    folder.mkdir(parents=True, exist_ok=True)
    database_file = folder / "whoknows.db"
    if not database_file.exists():
        database_file = build_org(folder, args.people, args.tags, args.entries)
    from bench.scale import WORDS

    rng = random.Random(11)
    asked = max(args.requests, args.agent_requests, args.paced_requests)
    questions = [" ".join(rng.sample(WORDS, 3)) for _ in range(asked)]
    asyncio.run(run(args, database_file, questions))


if __name__ == "__main__":
    main()
