"""Slash commands under load: `whoknows serve` against a bare slack-bolt app, in one run.

Builds the synthetic org of bench/scale.py (default 10,000 people, 2,000 tags,
100,000 knowledge entries, with sentence vectors unless `--lexical`) in a SQLite
file, or copies a prebuilt one (`--copy-of`, never changed itself), starts
`whoknows serve` on it as a subprocess (its Web API and response_url pointed at a
local recorder), and in the same run a bare bolt app whose /whoknows handler acks
(and, for the agents it serves, answers at response_url with a fixed text). Then
fires signed `/whoknows <question>` requests at concurrency 50 and prints: ack
throughput (and its ratio to the bare app's, flooded before and after ours,
since a shared machine's speed drifts), ack latency median / p99, commands
answered exactly once, end-to-end (command → answer at response_url) median /
p95, and each process's peak memory.

The loads, all at concurrency 50, each with questions of its own (none asked in
an earlier phase, so no phase gains from the vectors kept of another's):
- a flood: each of 50 senders fires its next command as soon as the last one is
  acked, as fast as acks come back. It measures the ack path against the bare
  app; its answers pile up behind the ranking, so its end-to-end figure is the
  time to work off that backlog;
- agents: 50 people each asking, waiting for their answer, and asking again (no
  pause in between), against ours and against the bare app. Its end-to-end
  figure is what an asker sees at that concurrency, and its rate is how many
  answers a second the server sustains;
- paced (`--rate N`, on by default at half the agents' rate): commands arrive at
  N a second, each at a random moment (Poisson), at most 50 in flight, as
  questions from a contact center's floor do;
- agents while huddles resolve (unless `--no-huddles`): the agents again, while a
  second `whoknows serve` on the same database (another worker) opens and
  resolves a huddle thread every second. After each resolution a probe asks the
  first server for the new entry's unique word: the time until an answer shows
  it, and whether the first probe did.

`--code DIR` runs `whoknows serve` from another checkout (the code before a
change), with this script's loads, so that two versions compare in one sitting.

    .venv/bin/python bench/slack_load.py [--copy-of FILE] [--lexical] [--code DIR]
"""

from __future__ import annotations

import argparse
import asyncio
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
RESOLVER = "URESOLVER"  # the Slack user who opens and resolves huddle threads
PROBER = "UPROBER"  # who asks for each resolved huddle's entry
BARE_ANSWER = "answer: "  # a command the bare app answers at its response_url
BARE_APP = """
import sys
from aiohttp import web
from slack_bolt.async_app import AsyncApp
from slack_bolt.adapter.aiohttp import to_bolt_request, to_aiohttp_response
from slack_sdk.web.async_client import AsyncWebClient
client = AsyncWebClient(token="xoxb-bench", base_url=sys.argv[3])
app = AsyncApp(signing_secret=sys.argv[2], client=client)

@app.command("/whoknows")
async def whoknows(ack, command, respond):
    await ack()
    if command["text"].startswith("answer: "):
        await respond("Nobody knows, I am a bare app.")

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
        self.bodies: dict[str, str] = {}  # for keys starting with "h" or "z"
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
        body = await request.read()
        if key[0] in "hz":
            self.bodies[key] = body.decode()
        self.answers[key] += 1
        self.arrived.setdefault(key, time.perf_counter())
        self.waiting.setdefault(key, asyncio.Event()).set()
        return web.Response(text="ok")

    async def answer(self, key: str, timeout: float = 600) -> None:
        await asyncio.wait_for(self.waiting.setdefault(key, asyncio.Event()).wait(), timeout)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self.api)
        app.router.add_post("/response/{key}", self.response)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()


def build_org(folder: Path, people: int, tags: int, entries: int, semantic: bool) -> Path:
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
    if semantic:
        from bot.matching.embeddings import load_encoder
        from bot.matching.vectors import index_all

        encoder = load_encoder()
        if encoder is None:
            raise SystemExit("the semantic extra is not installed (or run with --lexical)")
        index_all(database, encoder)
    database.dispose()
    print(f"org imported in {time.perf_counter() - started:.0f} s")
    return database_file


async def command(
    session: ClientSession, url: str, recorder: Recorder, key: str, text: str, user: str
) -> None:
    """One signed /whoknows, its answer due at the recorder under `key`; back at its ack."""
    body = urlencode(
        {
            "command": "/whoknows",
            "text": text,
            "user_id": user,
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
    async with session.post(url, data=body, headers=headers) as response:
        await response.read()
        if response.status != 200:
            raise RuntimeError(f"status {response.status}")


async def fire(
    port: int,
    recorder: Recorder,
    questions: list[str],
    concurrency: int,
    tag: str,
    *,
    agents: bool = False,
    rate: float = 0.0,
    prefix: str = "",
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
            started = time.perf_counter()
            sent[key] = started
            await command(session, url, recorder, key, prefix + question, f"U{i % ASKERS:05d}")
            latencies.append(time.perf_counter() - started)
            if agents:
                await recorder.answer(key)

    started = time.perf_counter()
    async with ClientSession(connector=TCPConnector(limit=concurrency)) as session:
        await asyncio.gather(release(), *(worker(session) for _ in range(concurrency)))
    return time.perf_counter() - started, latencies, sent


def per_s(requests: list[str], seconds: float) -> float | None:
    return round(len(requests) / seconds, 1) if requests else None


def token(i: int) -> str:
    """A word no entry holds: letters only, so that it is one indexed word."""
    letters = "".join(chr(ord("a") + (i // 26**k) % 26) for k in range(4))
    return f"zq{letters}x"


class Huddles:
    """Opens and resolves a huddle thread every second on one server; after each, asks
    another for the new entry's word until an answer shows it."""

    def __init__(self, resolver_port: int, asked_port: int, recorder: Recorder, topic: str):
        self.resolver_url = f"http://127.0.0.1:{resolver_port}/slack/events"
        self.asked_url = f"http://127.0.0.1:{asked_port}/slack/events"
        self.recorder = recorder
        self.topic = topic
        self.found_after: list[float] = []  # s from the resolution's answer to a showing one
        self.first_probe_found = 0
        self.probes = 0
        self.failed: list[str] = []

    async def run(self, stop: asyncio.Event) -> None:
        async with ClientSession() as session:
            i = 0
            while not stop.is_set():
                began = time.perf_counter()
                try:
                    await self._one(session, i)
                except (RuntimeError, TimeoutError) as error:
                    self.failed.append(f"{i}: {error}")
                i += 1
                await asyncio.sleep(max(0.0, 1.0 - (time.perf_counter() - began)))

    async def _one(self, session: ClientSession, i: int) -> None:
        recorder = self.recorder
        opened = f"hopen{i}"
        await command(
            session, self.resolver_url, recorder, opened, f"huddle {self.topic}", RESOLVER
        )
        await recorder.answer(opened, 30)
        found = re.search(r"huddle thread #(\d+)", recorder.bodies.get(opened, ""))
        if found is None:
            raise RuntimeError("no huddle opened: " + recorder.bodies.get(opened, "")[:200])
        word = token(i)
        title = f"Resolved note {word}"
        resolved = f"hresolve{i}"
        text = (
            f"huddle resolve {found.group(1)} {title} | Send {word} cases to the {word} desk. "
            f"| {self.topic}"
        )
        await command(session, self.resolver_url, recorder, resolved, text, RESOLVER)
        await recorder.answer(resolved, 30)
        at = recorder.arrived[resolved]
        for attempt in range(50):
            probe = f"z{i}-{attempt}"
            self.probes += 1
            await command(session, self.asked_url, recorder, probe, word, PROBER)
            await recorder.answer(probe, 30)
            if title in recorder.bodies.get(probe, ""):
                self.found_after.append(recorder.arrived[probe] - at)
                self.first_probe_found += attempt == 0
                return
            await asyncio.sleep(0.05)
        raise RuntimeError(f"{title} not found")

    def report(self) -> dict[str, object]:
        found = self.found_after
        return {
            "resolved": len(found) + len(self.failed),
            "found": len(found),
            "found_by_the_first_probe": self.first_probe_found,
            "probes": self.probes,
            "found_after_s": {
                "median": round(statistics.median(found), 3) if found else None,
                "max": round(max(found), 3) if found else None,
            },
            "failed": self.failed[:5],
        }


def family(pid: int) -> dict[int, str]:
    """A server's processes (it and its descendants), each as "serving process" or
    "command process"."""
    members = {pid}
    for _ in range(3):  # the serving processes, and their command processes
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) in members:
                members.add(int(entry.name))
    kinds = {}
    for member in sorted(members):
        try:
            cmdline = Path(f"/proc/{member}/cmdline").read_bytes()
        except OSError:
            continue
        kinds[member] = "command process" if b"spawn_main" in cmdline else "serving process"
    return kinds


def cpu_seconds(pid: int) -> dict[str, float]:
    """CPU time used so far by each process of a server, by kind (summed)."""
    ticks = os.sysconf("SC_CLK_TCK")
    used: dict[str, float] = {}
    for member, kind in family(pid).items():
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        used[kind] = used.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / ticks
    return used


def cpu_ms_per_answer(before: dict[str, float], after: dict[str, float], answers: int) -> dict:
    """What each kind of process spent on a phase, per answer: the figure a busy shared
    machine distorts least (a phase's rate shows what the other tenants left us)."""
    return {
        kind: round((after.get(kind, 0.0) - before.get(kind, 0.0)) * 1000 / max(answers, 1), 2)
        for kind in after
    }


def peak_rss_mb(pid: int) -> dict[str, float]:
    """Each process of a server: its peak resident memory."""
    found: dict[str, float] = {}
    for member, kind in family(pid).items():
        try:
            status = Path(f"/proc/{member}/status").read_text()
            line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
        except (OSError, StopIteration):
            continue
        found[f"{kind} {member}"] = round(int(line.split()[1]) / 1024, 1)
    return found


def start_server(args: argparse.Namespace, env: dict[str, str], port: int, workers: int):  # type: ignore[no-untyped-def]
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "adapters.cli",
            "serve",
            "--port",
            str(port),
            "--workers",
            str(workers),
        ],
        cwd=args.code or ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
    )


def a_topic(database_file: Path) -> str:
    """A tag someone holds: the huddles' topic, so that experts are found for it."""
    import sqlite3

    with sqlite3.connect(f"file:{database_file}?mode=ro", uri=True) as connection:
        (name,) = connection.execute(
            "SELECT t.name FROM tag t JOIN skill s ON s.tag_id = t.id "
            "GROUP BY t.id ORDER BY count(*) DESC, t.id LIMIT 1"
        ).fetchone()
    return str(name)


def phase(recorder: Recorder, sent: dict[str, float]) -> list[float]:
    return [recorder.arrived[k] - sent[k] for k in sent if k in recorder.arrived]


def summary(seconds: float, asked: list[str], acks: list[float], e2e: list[float]) -> dict:
    return {
        "requests": len(asked),
        "answers_per_s": per_s(asked, seconds),
        "ack_ms": {"median": pct(acks, 0.5), "p99": pct(acks, 0.99)},
        "end_to_end_ms": {"median": pct(e2e, 0.5), "p95": pct(e2e, 0.95)},
    }


async def run(args: argparse.Namespace, database_file: Path, asked: dict[str, list[str]]) -> None:
    recorder = Recorder()
    await recorder.start()
    ours, other, bare = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "WHOKNOWS_DATABASE_URL": f"sqlite:///{database_file}",
        "WHOKNOWS_SEMANTIC": "off" if args.lexical else "on",
        "SLACK_BOT_TOKEN": "xoxb-bench",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": f"http://127.0.0.1:{recorder.port}/api/",
        # One resolver opening a huddle thread a second is the bench's doing, not a
        # person's: the per-person limits would stop it after five.
        "WHOKNOWS_HUDDLE_LIMIT": "100000",
        "WHOKNOWS_INVITE_LIMIT": "100000",
    }
    topic = a_topic(database_file)
    server = start_server(args, env, ours, args.workers)
    second = start_server(args, env, other, 1) if args.huddles else None
    bare_server = subprocess.Popen(
        [sys.executable, "-c", BARE_APP, str(bare), SECRET, env["SLACK_API_URL"]], cwd=ROOT
    )
    servers = [p for p in (server, second, bare_server) if p is not None]
    huddles = Huddles(other, ours, recorder, topic)
    memory: dict[str, dict[str, float]] = {}
    changing_cpu: dict[str, float] = {}
    try:
        wait_for_port(ours, 300)
        wait_for_port(bare)
        # Warm up: the first ask loads the index, and every asker asks once, so they are
        # known people (as after Slack's users.list sync), not provisioned in the flood.
        await fire(ours, recorder, asked["warm"], 10, "warm", agents=True)
        await fire(bare, recorder, asked["warm"][:20], 5, "bwarm")
        if second is not None:
            wait_for_port(other, 300)
            await fire(other, recorder, asked["warm"][:20], 5, "owarm", agents=True)
            async with ClientSession() as session:  # the resolver and prober are known too
                for who, port in ((RESOLVER, other), (PROBER, ours)):
                    url = f"http://127.0.0.1:{port}/slack/events"
                    await command(session, url, recorder, f"hwarm{who}", topic, who)
                    await recorder.answer(f"hwarm{who}")
        await asyncio.sleep(5)
        flood = asked["flood"]
        bare_s, bare_lat, _ = await fire(bare, recorder, flood, args.concurrency, "b")
        our_s, our_lat, sent = await fire(ours, recorder, flood, args.concurrency, "q")
        # The bare app again, once our answers are out: a shared machine's speed drifts,
        # and the ratio is taken against the mean of the two.
        deadline = time.monotonic() + 900
        while (
            sum(1 for k in sent if k in recorder.arrived) < len(sent)
            and time.monotonic() < deadline
        ):
            await asyncio.sleep(0.2)
        bare_again_s, bare_again_lat, _ = await fire(bare, recorder, flood, args.concurrency, "c")
        bare_agents = await fire(
            bare,
            recorder,
            asked["bare agents"],
            args.concurrency,
            "d",
            agents=True,
            prefix=BARE_ANSWER,
        )
        used = cpu_seconds(server.pid)
        agents = await fire(ours, recorder, asked["agents"], args.concurrency, "a", agents=True)
        agents_cpu = cpu_ms_per_answer(used, cpu_seconds(server.pid), len(asked["agents"]))
        rate = args.rate or round(len(asked["agents"]) / agents[0] / 2, 1)
        paced = await fire(ours, recorder, asked["paced"], args.concurrency, "p", rate=rate)
        deadline = time.monotonic() + 120
        while not all(k in recorder.arrived for k in paced[2]) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        changing = None
        if second is not None:
            stop = asyncio.Event()
            used = cpu_seconds(server.pid)
            resolving = asyncio.ensure_future(huddles.run(stop))
            changing = await fire(
                ours,
                recorder,
                asked["agents while huddles resolve"],
                args.concurrency,
                "r",
                agents=True,
            )
            changing_cpu = cpu_ms_per_answer(
                used, cpu_seconds(server.pid), len(asked["agents while huddles resolve"])
            )
            stop.set()
            await resolving
        await asyncio.sleep(2)  # anything answered twice would show up by now
        memory = {"ours": peak_rss_mb(server.pid)}
        if second is not None:
            memory["the other worker"] = peak_rss_mb(second.pid)
    finally:
        for process in servers:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)
    n = len(flood)
    sent_all = {**sent, **agents[2], **paced[2], **(changing[2] if changing else {})}
    answered = [k for k in sent_all if recorder.answers[k] >= 1]
    twice = [k for k in sent_all if recorder.answers[k] > 1]
    e2e = phase(recorder, sent)
    report: dict[str, object] = {
        "code": str(args.code or ROOT),
        "vectors": not args.lexical,
        "requests": n,
        "concurrency": args.concurrency,
        "bare_ack_per_s": round(2 * n / (bare_s + bare_again_s), 1),
        "bare_ack_per_s_before_after": [round(n / bare_s, 1), round(n / bare_again_s, 1)],
        "ours_ack_per_s": round(n / our_s, 1),
        # No flood, no ratio: two near-empty timings would divide into noise.
        "throughput_ratio": round((bare_s + bare_again_s) / 2 / our_s, 3) if n else None,
        "bare_ack_ms": {
            "median": pct(bare_lat + bare_again_lat, 0.5),
            "p99": pct(bare_lat + bare_again_lat, 0.99),
        },
        "ours_ack_ms": {"median": pct(our_lat, 0.5), "p99": pct(our_lat, 0.99)},
        "commands": len(sent_all),
        "answered_once": len(answered) - len(twice),
        "answered_twice": len(twice),
        "unanswered": len(sent_all) - len(answered),
        "flood_end_to_end_ms": {"median": pct(e2e, 0.5), "p95": pct(e2e, 0.95)},
        "bare_agents": summary(
            bare_agents[0], asked["bare agents"], bare_agents[1], phase(recorder, bare_agents[2])
        ),
        "agents": {
            **summary(agents[0], asked["agents"], agents[1], phase(recorder, agents[2])),
            "cpu_ms_per_answer": agents_cpu,
        },
        "paced": {
            **summary(paced[0], asked["paced"], paced[1], phase(recorder, paced[2])),
            "offered_per_s": rate,
        },
        "peak_rss_mb": memory,
    }
    if changing is not None:
        report["agents_while_huddles_resolve"] = {
            **summary(
                changing[0],
                asked["agents while huddles resolve"],
                changing[1],
                phase(recorder, changing[2]),
            ),
            "cpu_ms_per_answer": changing_cpu,
            "huddles": huddles.report(),
        }
    print(json.dumps(report, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--tags", type=int, default=2_000)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=2_000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument(
        "--agent-requests", type=int, default=1_000, help="commands in each agents phase"
    )
    parser.add_argument(
        "--paced-requests", type=int, default=1_000, help="commands in the paced phase"
    )
    parser.add_argument(
        "--rate", type=float, default=0.0, help="paced commands a second (0: half the agents')"
    )
    parser.add_argument("--lexical", action="store_true", help="rank without sentence vectors")
    parser.add_argument(
        "--no-huddles", dest="huddles", action="store_false", help="skip the huddles phase"
    )
    parser.add_argument("--workers", type=int, default=1, help="whoknows serve --workers")
    parser.add_argument("--workdir", type=Path, help="keep the generated org here")
    parser.add_argument(
        "--copy-of", type=Path, help="start from a copy of this database (never changed)"
    )
    parser.add_argument("--code", type=Path, help="run whoknows serve from this checkout")
    args = parser.parse_args()
    folder = args.workdir or Path(tempfile.mkdtemp(prefix="whoknows-slack-load-"))
    folder.mkdir(parents=True, exist_ok=True)
    database_file = folder / "whoknows.db"
    if args.copy_of is not None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database_file}{suffix}").unlink(missing_ok=True)
        shutil.copy(args.copy_of, database_file)
    elif not database_file.exists():
        database_file = build_org(
            folder, args.people, args.tags, args.entries, semantic=not args.lexical
        )
    from bench.scale import WORDS

    rng = random.Random(11)
    sizes = {
        "warm": ASKERS,
        "flood": args.requests,
        "bare agents": args.agent_requests,
        "agents": args.agent_requests,
        "paced": args.paced_requests,
        "agents while huddles resolve": args.agent_requests,
    }
    # Every phase its own questions: none asked before, so none has a vector kept.
    seen: set[str] = set()
    asked: dict[str, list[str]] = {}
    for name, size in sizes.items():
        asked[name] = []
        while len(asked[name]) < size:
            question = " ".join(rng.sample(WORDS, 3))
            if question not in seen:
                seen.add(question)
                asked[name].append(question)
    asyncio.run(run(args, database_file, asked))


if __name__ == "__main__":
    main()
