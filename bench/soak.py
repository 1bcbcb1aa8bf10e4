"""Soak: minutes of mixed Slack and Teams traffic, with faults, against two workers on PostgreSQL.

Starts a throwaway PostgreSQL server, seeds the demo org (every person given a
Slack and a Teams identity), starts the fake Slack Web API and the fake Bot
Framework connector and token issuer in this process, both answering 5 % of
calls with 429 (Retry-After: 1) and 1 % with 500, and two `whoknows serve`
processes on two ports sharing the database (one command process each,
escalation after 5 s). Then, for --minutes at --rate requests a second, spread
over both workers:

- signed /whoknows commands: who-knows questions, `kb …` searches, `huddle <topic>`;
- block_actions on the answers: *Helpful* on a knowledge entry and *Start huddle
  thread*, some pressed twice in a row (a double click) and some delivered
  twice with X-Slack-Retry-Num (each must act once);
- message events in huddle threads: an invited expert replies in about half of
  the threads (the rest climb the escalation ladder), some delivered twice;
- Teams messages (signed activities to /api/messages), some delivered twice.

Halfway through, PostgreSQL is restarted (`pg_ctl restart -m fast`). When the
traffic stops it waits for the outbox, the kept requests and the escalation
timers to drain, then prints what was asked and what came back: answers
delivered once, twice (duplicates) or never (lost, with the faults each lost
answer met), answers that were a clear error, huddles opened more than once for
one click or command, jobs fired twice (outbox rows written twice for one
huddle, notes posted twice in one thread), requests failed at the HTTP level,
ack and end-to-end latency, and the resident memory of each worker (with its
command process) after warm-up and at the end. It exits 1 when a target is
missed: 0 lost, 0 duplicated, 0 jobs fired twice, memory growth at most 10 %.

Worker logs, every request (requests.jsonl) and the summary (summary.json)
are kept in --workdir (a new temporary directory by default).

    .venv/bin/python bench/soak.py [--minutes 10] [--rate 12] [--seed 7] [--lexical]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiohttp import ClientSession, ClientTimeout, TCPConnector  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from adapters.slack.verify import sign  # noqa: E402
from bench.common import free_port, pct  # noqa: E402
from bot import messages  # noqa: E402
from bot.db import open_database  # noqa: E402
from bot.db.models import (  # noqa: E402
    DeliveryState,
    Huddle,
    HuddleParticipant,
    Inbound,
    InboundState,
    Job,
    JobState,
    KnowledgeEntry,
    Outbox,
    Person,
    Tag,
)
from bot.services import people  # noqa: E402
from tests.adapters.slack.fake_slack import FakeSlack  # noqa: E402
from tests.adapters.teams.fake_teams import (  # noqa: E402
    APP_ID,
    APP_PASSWORD,
    BOT,
    TENANT,
    FakeConnector,
    FakeLogin,
)
from tests.pg_server import TemporaryPostgres  # noqa: E402

SECRET = "soak-signing-secret"
TEAM = "T0001"
RATE_LIMITED, BROKEN = 0.05, 0.01
# Slack retries an event it got no 2xx for; compressed from its 1 min and 5 min.
EVENT_RETRIES_S = (1.0, 5.0, 15.0)
HTTP_TIMEOUT = ClientTimeout(total=15)
ERRORS = {
    "database unavailable": messages.DATABASE_UNAVAILABLE[:60],
    "internal error": messages.INTERNAL_ERROR[:60],
}
OPENED = re.compile(r"Opened huddle thread #(\d+)")
ROOT_POST = re.compile(r"Huddle thread #(\d+): ")
DM_INVITE = re.compile(r"Huddle thread #(\d+) in ")
PREFIXES = ("", "how do I handle", "customer asks about", "help with", "who can approve")
# Share of the base traffic per kind; a click falls back to a question until
# an answer with that button has arrived.
MIX = {
    "slash.whoknows": 0.34,
    "slash.kb": 0.12,
    "slash.huddle": 0.01,
    "click.helpful": 0.12,
    "click.start": 0.03,
    "teams.message": 0.38,
}


# --- processes and memory ---------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        tree[ppid].append(int(entry.name))
    return tree


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def memory(pid: int) -> dict[str, float]:
    """RSS of a worker and of each process under it (its command process), in MB."""
    tree = _children()
    found = {"worker": round(rss_mb(pid), 1)}
    stack = list(tree.get(pid, []))
    while stack:
        child = stack.pop()
        stack.extend(tree.get(child, []))
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        name = "command" if any(b"spawn_main" in part for part in cmdline) else "helper"
        if any(b"resource_tracker" in part for part in cmdline):
            name = "tracker"
        found[f"{name} {child}"] = round(rss_mb(child), 1)
    found["total"] = round(sum(v for k, v in found.items()), 1)
    return found


# --- the org ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    person_id: int
    key: str
    name: str
    slack: str
    aad: str

    @property
    def teams_id(self) -> str:
        return f"29:{self.key}"


@dataclass
class Org:
    members: list[Member]
    topics: list[str]
    kb_words: list[str]

    def by_slack(self, user: str) -> Member:
        return next(m for m in self.members if m.slack == user)


def seed(url: str, env: dict[str, str]) -> Org:
    subprocess.run(
        [sys.executable, "-m", "adapters.cli", "--db", url, "demo"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    database = open_database(url, upgrade=False)
    members = []
    with database.unit_of_work() as session:
        for person in session.scalars(select(Person).where(Person.deleted_at.is_(None))):
            member = Member(
                person.id,
                person.key,
                person.display_name,
                f"U{person.id:05d}",
                str(uuid.uuid5(uuid.NAMESPACE_URL, f"whoknows-soak/{person.key}")),
            )
            people.link_identity(session, person, "slack", member.slack)
            people.link_identity(session, person, "teams", member.aad)
            members.append(member)
        topics = sorted(session.scalars(select(Tag.name)))
        titles = list(session.scalars(select(KnowledgeEntry.title)))
    database.dispose()
    words = sorted({w.lower() for t in titles for w in re.findall(r"[A-Za-z]{5,}", t)})
    return Org(members, topics, words)


# --- requests -----------------------------------------------------------------------------


@dataclass
class Request:
    n: int
    kind: str
    platform: str
    user: str
    phase: str
    sent: float  # monotonic, for Slack's clock
    sent_wall: float  # wall clock, for the Teams connector's
    keys: list[str] = field(default_factory=list)  # response_url keys / Teams activity ids
    expects: bool = True
    group: str | None = None  # one click or command: at most one huddle
    topic: str | None = None
    huddle: int | None = None  # the thread a reply went to
    how: str = "single"  # single, double (pressed twice), retried (delivered twice)
    deliveries: list[dict[str, Any]] = field(default_factory=list)
    answered_s: list[float] = field(default_factory=list)  # seconds after sending, each answer
    faults: list[int] = field(default_factory=list)  # injected on its answer (429, 500)


class Soak:
    def __init__(self, args: argparse.Namespace, org: Org, pg: TemporaryPostgres) -> None:
        self.args = args
        self.org = org
        self.pg = pg
        self.rng = random.Random(args.seed)
        self.slack = FakeSlack()
        self.slack.chaos = (RATE_LIMITED, BROKEN)
        self.slack.rng = random.Random(args.seed + 1)
        self.login = FakeLogin(args.workdir)
        self.connector = FakeConnector()
        self.connector.chaos = (RATE_LIMITED, BROKEN)
        self.connector.rng = random.Random(args.seed + 2)
        self.ports = [free_port(), free_port()]
        self.servers: list[subprocess.Popen[bytes]] = []
        self.requests: list[Request] = []
        self.by_key: dict[str, Request] = {}
        self.numbers = itertools.count(1)
        self.answers: dict[str, list[tuple[float, dict[str, Any]]]] = defaultdict(list)
        self.pool: list[dict[str, Any]] = []  # who-knows answers with buttons to press
        self.used_topics: set[tuple[str, str]] = set()
        self.roots: dict[int, tuple[str, str]] = {}  # huddle → (channel, thread ts)
        self.invited: dict[int, list[str]] = defaultdict(list)  # huddle → Slack users
        self.tasks: set[asyncio.Task[None]] = set()
        self.seen_slack = 0
        self.seen_teams = 0
        self.restart: dict[str, float] = {}
        self.memory: dict[str, list[dict[str, float]]] = {}
        self.phase = "warmup"
        self.load: list[float] = []  # the machine's 1-minute load average, every 30 s
        self.next_load = 0.0
        self.session: ClientSession | None = None
        self.started = time.monotonic()

    # --- lifecycle ---
    async def start_fakes(self) -> None:
        await self.slack.start()
        answer = self.slack._answer

        def keep_ts(method: str, call_args: dict[str, Any]) -> dict[str, Any]:
            # The ts Slack gave a post, kept on the recorded call (for thread replies).
            result = answer(method, call_args)
            if method == "chat.postMessage":
                call_args["_ts"] = result.get("ts")
            return result

        self.slack._answer = keep_ts  # type: ignore[method-assign]
        await self.login.start()
        await self.connector.start()

    def worker_env(self) -> dict[str, str]:
        assert self.login.ca_file is not None
        return {
            **os.environ,
            "WHOKNOWS_DATABASE_URL": self.pg.url,
            "WHOKNOWS_HOME": str(self.args.workdir),
            "WHOKNOWS_SECRET": "soak-dashboard-secret",
            "WHOKNOWS_SEMANTIC": "off" if self.args.lexical else "on",
            "WHOKNOWS_ESCALATION_TIMEOUT": str(self.args.escalation),
            "WHOKNOWS_LOG_LEVEL": "INFO",
            "WHOKNOWS_COMMAND_PROCESSES": "1",
            "SLACK_BOT_TOKEN": "xoxb-soak",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": self.slack.api_url,
            "MICROSOFT_APP_ID": APP_ID,
            "MICROSOFT_APP_PASSWORD": APP_PASSWORD,
            "MICROSOFT_LOGIN_URL": self.login.url,
            "MICROSOFT_OPENID_METADATA_URL": self.login.metadata_url,
            "REQUESTS_CA_BUNDLE": str(self.login.ca_file),
        }

    async def start_workers(self) -> None:
        env = self.worker_env()
        for i, port in enumerate(self.ports):
            log = open(self.args.workdir / f"worker-{i + 1}.log", "wb")  # noqa: SIM115
            self.servers.append(
                subprocess.Popen(
                    [sys.executable, "-m", "adapters.cli", "serve", "--port", str(port)],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        assert self.session is not None
        deadline = time.monotonic() + 180
        for port in self.ports:
            while True:
                try:
                    async with self.session.get(f"http://127.0.0.1:{port}/readyz") as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"worker on {port} did not start; see the worker logs")
                await asyncio.sleep(0.3)

    def stop_workers(self) -> None:
        for process in self.servers:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.servers:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()

    def spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    # --- sending ---
    def new(self, kind: str, platform: str, user: str, **fields: Any) -> Request:
        request = Request(
            next(self.numbers), kind, platform, user, self.phase, time.monotonic(), time.time()
        )
        for name, value in fields.items():
            setattr(request, name, value)
        self.requests.append(request)
        return request

    def key(self, request: Request, suffix: str = "") -> str:
        key = f"r{request.n}{suffix}"
        request.keys.append(key)
        self.by_key[key] = request
        return key

    async def post(
        self,
        request: Request,
        worker: int,
        path: str,
        body: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> int | str:
        assert self.session is not None
        all_headers = {"Content-Type": content_type, **(headers or {})}
        if path == "/slack/events":
            all_headers.update(sign(SECRET, body, int(time.time())))
        url = f"http://127.0.0.1:{self.ports[worker]}{path}"
        started = time.monotonic()
        status: int | str
        try:
            async with self.session.post(
                url, data=body, headers=all_headers, timeout=HTTP_TIMEOUT
            ) as response:
                await response.read()
                status = response.status
        except Exception as error:  # a refused connection, a timeout
            status = type(error).__name__
        request.deliveries.append(
            {
                "worker": worker + 1,
                "at": round(started - self.started, 3),
                "ack_s": round(time.monotonic() - started, 4),
                "status": status,
                "retry": (headers or {}).get("X-Slack-Retry-Num"),
            }
        )
        return status

    async def post_event(self, request: Request, worker: int, body: bytes) -> None:
        """An Events API delivery, retried by "Slack" until it gets a 2xx."""
        status = await self.post(request, worker, "/slack/events", body, "application/json")
        for retry, delay in enumerate(EVENT_RETRIES_S, start=1):
            if status == 200:
                return
            await asyncio.sleep(delay)
            worker = 1 - worker
            headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_error"}
            status = await self.post(
                request, worker, "/slack/events", body, "application/json", headers
            )

    def slash_body(self, user: str, text: str, key: str) -> bytes:
        return urlencode(
            {
                "token": "legacy",
                "team_id": TEAM,
                "channel_id": "CSOAK",
                "user_id": user,
                "command": "/whoknows",
                "text": text,
                "response_url": self.slack.response_url(key),
                "trigger_id": f"trigger-{uuid.uuid4().hex}",
            }
        ).encode()

    def question(self) -> str:
        prefix = self.rng.choice(PREFIXES)
        return f"{prefix} {self.rng.choice(self.org.topics)}".strip()

    async def slash(self, kind: str, user: str, text: str, **fields: Any) -> Request:
        request = self.new(kind, "slack", user, **fields)
        key = self.key(request)
        worker = self.rng.randrange(2)
        await self.post(
            request,
            worker,
            "/slack/events",
            self.slash_body(user, text, key),
            "application/x-www-form-urlencoded",
        )
        return request

    async def whoknows(self) -> None:
        await self.slash("slash.whoknows", self.user().slack, self.question())

    async def kb(self) -> None:
        word = self.rng.choice(self.org.kb_words or self.org.topics)
        await self.slash("slash.kb", self.user().slack, f"kb {word}")

    async def huddle_command(self) -> None:
        for _ in range(20):
            user, topic = self.user().slack, self.rng.choice(self.org.topics)
            if (user, topic) not in self.used_topics:
                break
        else:
            await self.whoknows()
            return
        self.used_topics.add((user, topic))
        group = f"huddle:{user}:{topic}"
        await self.slash("slash.huddle", user, f"huddle {topic}", group=group, topic=topic)

    def user(self) -> Member:
        return self.rng.choice(self.org.members)

    def press_body(
        self, user: str, key: str, pressed: dict[str, Any], answer: dict[str, Any]
    ) -> bytes:
        values: dict[str, Any] = {}
        picker = answer.get("picker")
        if picker is not None and pressed["action_id"].startswith("huddle.start"):
            values[picker["block_id"]] = {
                picker["action_id"]: {
                    "type": "multi_static_select",
                    "selected_options": [{"value": v} for v in picker["selected"]],
                }
            }
        payload = {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "team_id": TEAM},
            "api_app_id": "ASOAK",
            "token": "legacy",
            "team": {"id": TEAM, "domain": "soak"},
            "channel": {"id": "CSOAK", "name": "soak"},
            "container": {
                "type": "message",
                "message_ts": answer["ts"],
                "channel_id": "CSOAK",
                "is_ephemeral": True,
            },
            "trigger_id": f"trigger-{uuid.uuid4().hex}",
            "response_url": self.slack.response_url(key),
            "state": {"values": values},
            "actions": [
                {
                    "type": "button",
                    "action_id": pressed["action_id"],
                    "block_id": pressed["block_id"],
                    "value": pressed["value"],
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        return urlencode({"payload": json.dumps(payload)}).encode()

    async def click(self, kind: str) -> None:
        """Press Helpful or Start on a recent who-knows answer: once, twice, or re-delivered."""
        button = "kb.helpful" if kind == "click.helpful" else "huddle.start"
        recent = [
            a
            for a in self.pool[-200:]
            if any(b["action_id"].startswith(button) for b in a["buttons"])
            and (button != "huddle.start" or (a["user"], a["topic"]) not in self.used_topics)
        ]
        if not recent:
            await self.whoknows()
            return
        answer = self.rng.choice(recent)
        pressed = self.rng.choice(
            [b for b in answer["buttons"] if b["action_id"].startswith(button)]
        )
        user = answer["user"]
        double, retried = (0.25, 0.15) if button == "huddle.start" else (0.10, 0.10)
        roll = self.rng.random()
        how = "double" if roll < double else "retried" if roll < double + retried else "single"
        fields: dict[str, Any] = {"how": how}
        if button == "huddle.start":
            self.used_topics.add((user, answer["topic"]))
            fields |= {"group": f"start:{user}:{answer['topic']}", "topic": answer["topic"]}
        request = self.new(kind, "slack", user, **fields)
        worker = self.rng.randrange(2)
        form = "application/x-www-form-urlencoded"
        key = self.key(request)
        body = self.press_body(user, key, pressed, answer)
        if how == "double":
            second = self.press_body(user, self.key(request, "b"), pressed, answer)
            await asyncio.gather(
                self.post(request, worker, "/slack/events", body, form),
                self._later(0.15, self.post(request, 1 - worker, "/slack/events", second, form)),
            )
            return
        await self.post(request, worker, "/slack/events", body, form)
        if how == "retried":
            await asyncio.sleep(1.0)
            headers = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
            await self.post(request, 1 - worker, "/slack/events", body, form, headers)

    @staticmethod
    async def _later(delay: float, work: Any) -> Any:
        await asyncio.sleep(delay)
        return await work

    async def reply_in_thread(self, huddle: int) -> None:
        """An invited expert answers in the huddle's thread, before the first escalation."""
        await asyncio.sleep(self.rng.uniform(1.0, 3.0))
        for _ in range(50):
            if self.invited.get(huddle):
                break
            await asyncio.sleep(0.1)
        else:
            return
        channel, thread = self.roots[huddle]
        user = self.rng.choice(self.invited[huddle])
        how = "retried" if self.rng.random() < 0.15 else "single"
        request = self.new("slack.reply", "slack", user, expects=False, huddle=huddle, how=how)
        ts = f"{time.time():.6f}"
        body = json.dumps(
            {
                "token": "legacy",
                "team_id": TEAM,
                "api_app_id": "ASOAK",
                "type": "event_callback",
                "event_id": f"Ev{request.n:08d}",
                "event_time": int(time.time()),
                "event": {
                    "type": "message",
                    "channel": channel,
                    "channel_type": "channel",
                    "user": user,
                    "text": "Raise a reversal ticket, then refund the top-up.",
                    "ts": ts,
                    "event_ts": ts,
                    "thread_ts": thread,
                },
            }
        ).encode()
        worker = self.rng.randrange(2)
        await self.post_event(request, worker, body)
        if how == "retried":
            await asyncio.sleep(1.0)
            headers = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
            await self.post(request, 1 - worker, "/slack/events", body, "application/json", headers)

    async def teams_message(self) -> None:
        member = self.user()
        words = self.org.kb_words or self.org.topics
        text = self.question() if self.rng.random() < 0.7 else f"kb {self.rng.choice(words)}"
        how = "retried" if self.rng.random() < 0.10 else "single"
        request = self.new("teams.message", "teams", member.slack, how=how)
        activity_id = f"soak-{request.n}"
        request.keys.append(activity_id)
        self.by_key[activity_id] = request
        service_url = self.connector.url + "/"
        activity = {
            "type": "message",
            "id": activity_id,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "channelId": "msteams",
            "serviceUrl": service_url,
            "from": {"id": member.teams_id, "name": member.name, "aadObjectId": member.aad},
            "recipient": {"id": BOT, "name": "whoknows"},
            "conversation": {
                "id": f"a:chat-{member.teams_id}",
                "conversationType": "personal",
                "tenantId": TENANT,
            },
            "channelData": {"tenant": {"id": TENANT}},
            "text": text,
            "localTimezone": "Europe/London",
        }
        body = json.dumps(activity).encode()
        worker = self.rng.randrange(2)
        attempts = 1 + len(EVENT_RETRIES_S)
        for attempt in range(attempts):
            headers = {"Authorization": f"Bearer {self.login.token(service_url)}"}
            status = await self.post(
                request, worker, "/api/messages", body, "application/json", headers
            )
            if status == 200 and how == "retried" and attempt == 0:
                await asyncio.sleep(0.5)  # the connector sends it again
                headers = {"Authorization": f"Bearer {self.login.token(service_url)}"}
                await self.post(
                    request, 1 - worker, "/api/messages", body, "application/json", headers
                )
                return
            if status == 200 or attempt == attempts - 1:
                return
            await asyncio.sleep(EVENT_RETRIES_S[attempt])
            worker = 1 - worker

    # --- watching what the fakes receive ---
    def watch(self) -> None:
        calls = self.slack.calls
        while self.seen_slack < len(calls):
            call = calls[self.seen_slack]
            self.seen_slack += 1
            if call.method == "response_url":
                self.answers[call.key].append((call.at, call.args))
                request = self.by_key.get(call.key)
                if request is not None and request.kind == "slash.whoknows":
                    self.keep_buttons(request, call.args)
            elif call.method == "chat.postMessage":
                text = str(call.args.get("text", ""))
                channel = str(call.args.get("channel", ""))
                if call.args.get("thread_ts"):
                    continue
                if channel.startswith("D") and (found := DM_INVITE.search(text)):
                    self.invited[int(found.group(1))].append(channel[1:])
                elif (found := ROOT_POST.match(text)) and call.args.get("_ts"):
                    huddle = int(found.group(1))
                    self.roots[huddle] = (channel, str(call.args["_ts"]))
                    if self.rng.random() < self.args.reply_share:
                        self.spawn(self.reply_in_thread(huddle))
        teams = self.connector.calls
        while self.seen_teams < len(teams):
            call = teams[self.seen_teams]
            self.seen_teams += 1
            if call.method == "POST" and isinstance(call.body, dict) and call.body.get("replyToId"):
                self.answers[str(call.body["replyToId"])].append((call.at, call.body))

    def keep_buttons(self, request: Request, body: dict[str, Any]) -> None:
        buttons, picker = [], None
        for block in body.get("blocks") or []:
            if block.get("type") != "actions":
                continue
            for element in block.get("elements", []):
                if element.get("type") == "button" and element.get("value"):
                    buttons.append(
                        {
                            "action_id": element["action_id"],
                            "value": element["value"],
                            "block_id": block.get("block_id", "b"),
                        }
                    )
                elif element.get("type") == "multi_static_select":
                    picker = {
                        "block_id": block.get("block_id", "b"),
                        "action_id": element["action_id"],
                        "selected": [o["value"] for o in element.get("initial_options", [])],
                    }
        topic = None
        for button in buttons:
            if button["action_id"].startswith("huddle.start"):
                topic = json.loads(button["value"]).get("topic")
        if buttons:
            self.pool.append(
                {
                    "user": request.user,
                    "ts": f"{time.time():.6f}",
                    "buttons": buttons,
                    "picker": picker,
                    "topic": topic,
                }
            )

    async def watcher(self) -> None:
        while True:
            self.watch()
            await asyncio.sleep(0.05)

    # --- the run ---
    async def traffic(self, seconds: float, rate: float) -> None:
        kinds, weights = list(MIX), list(MIX.values())
        actions = {
            "slash.whoknows": self.whoknows,
            "slash.kb": self.kb,
            "slash.huddle": self.huddle_command,
            "click.helpful": lambda: self.click("click.helpful"),
            "click.start": lambda: self.click("click.start"),
            "teams.message": self.teams_message,
        }
        start = time.monotonic()
        due = start
        restart_at = start + seconds / 2 if self.phase == "run" else None
        while time.monotonic() - start < seconds:
            if self.phase == "run" and time.monotonic() >= self.next_load:
                self.next_load = time.monotonic() + 30
                self.load.append(round(os.getloadavg()[0], 1))
            due += self.rng.expovariate(rate)
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if restart_at is not None and time.monotonic() >= restart_at:
                restart_at = None
                self.spawn(self.restart_postgres())
            kind = self.rng.choices(kinds, weights)[0]
            self.spawn(actions[kind]())

    async def restart_postgres(self) -> None:
        self.restart["began"] = time.monotonic() - self.started
        print(f"[{self.clock()}] restarting PostgreSQL (pg_ctl restart -m fast)", flush=True)
        await asyncio.to_thread(self.pg._pg_ctl, "restart", "-l", str(self.pg._log), "-m", "fast")
        self.restart["ended"] = time.monotonic() - self.started
        took = self.restart["ended"] - self.restart["began"]
        print(f"[{self.clock()}] PostgreSQL is back after {took:.1f} s", flush=True)

    def clock(self) -> str:
        seconds = int(time.monotonic() - self.started)
        return f"{seconds // 60:02d}:{seconds % 60:02d}"

    def escalated_everywhere(self) -> bool:
        with self.database.unit_of_work() as session:
            fired = set(
                session.scalars(
                    select(Job.fired_by).where(Job.kind == "escalate", Job.state == JobState.DONE)
                )
            )
        pids = {str(by or "").rpartition(":")[2] for by in fired}
        return all(str(process.pid) in pids for process in self.servers)

    def backlog(self) -> dict[str, int]:
        database = self.database
        with database.unit_of_work() as session:
            outbox = session.scalar(
                select(func.count()).where(Outbox.state == DeliveryState.PENDING)
            )
            inbound = session.scalar(
                select(func.count()).where(
                    Inbound.state.in_((InboundState.PENDING, InboundState.ANSWERED))
                )
            )
            timers = session.scalar(
                select(func.count()).where(Job.state == JobState.PENDING, Job.kind == "escalate")
            )
        waiting = sum(
            1 for r in self.requests if r.expects and not any(self.answers.get(k) for k in r.keys)
        )
        return {
            "outbox": outbox or 0,
            "inbound": inbound or 0,
            "timers": timers or 0,
            "unanswered": waiting,
            "tasks": len(self.tasks),
        }

    async def drain(self, timeout: float) -> dict[str, int]:
        """Wait until nothing is left to deliver, and the missing answers stop arriving."""
        deadline = time.monotonic() + timeout
        left: dict[str, int] = {}
        still = (-1, time.monotonic())
        while time.monotonic() < deadline:
            try:
                left = await asyncio.to_thread(self.backlog)
            except Exception as error:
                left = {"error": 1}
                print(f"[{self.clock()}] backlog unreadable: {type(error).__name__}", flush=True)
            if left.get("unanswered") != still[0]:
                still = (left.get("unanswered", -1), time.monotonic())
            quiet = time.monotonic() - still[1] > 15
            if not any(v for k, v in left.items() if k != "unanswered" or not quiet):
                break
            await asyncio.sleep(2)
        await asyncio.sleep(5)  # an answer sent twice would arrive by now
        self.watch()
        return left

    async def main(self) -> dict[str, Any]:
        await self.start_fakes()
        self.database = open_database(self.pg.url, upgrade=False)
        async with ClientSession(connector=TCPConnector(limit=200)) as session:
            self.session = session
            await self.start_workers()
            print(f"[{self.clock()}] workers up on ports {self.ports}", flush=True)
            watcher = asyncio.get_running_loop().create_task(self.watcher())
            # Warm-up: every kind of request on both workers, then the first memory reading.
            await self.traffic(self.args.warmup, self.args.rate)
            await self.drain(120)
            # A worker loads the ranking index itself when it first fires an escalation:
            # warm up until each has, so the first memory reading is not before that.
            for _ in range(12):
                if await asyncio.to_thread(self.escalated_everywhere):
                    break
                await self.traffic(5, self.args.rate)
                await self.drain(60)
            self.memory["start"] = [memory(p.pid) for p in self.servers]
            print(f"[{self.clock()}] warmed up; memory {self.memory['start']}", flush=True)
            self.phase = "run"
            run_started = time.monotonic()
            await self.traffic(self.args.minutes * 60, self.args.rate)
            self.run_seconds = time.monotonic() - run_started
            print(f"[{self.clock()}] traffic over; draining", flush=True)
            left = await self.drain(self.args.drain)
            self.memory["end"] = [memory(p.pid) for p in self.servers]
            alive = [p.poll() is None for p in self.servers]
            ready = []
            for port in self.ports:
                try:
                    async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                        ready.append(response.status == 200)
                except OSError:
                    ready.append(False)
            watcher.cancel()
            for task in list(self.tasks):
                task.cancel()
        return {"left": left, "alive": alive, "ready": ready}


# --- accounting -----------------------------------------------------------------------------


def dump_tables(session: Any, path: Path) -> None:
    """The outbox, huddles, jobs and kept requests as they ended, one JSON row a line."""
    with open(path, "w") as out:
        for model in (Outbox, Huddle, HuddleParticipant, Job, Inbound):
            for row in session.scalars(select(model)):
                values = {c.key: getattr(row, c.key) for c in model.__table__.columns}
                values["table"] = model.__tablename__
                out.write(json.dumps(values, default=str) + "\n")


def error_kind(body: dict[str, Any]) -> str | None:
    text = json.dumps(body, ensure_ascii=False)
    return next((name for name, start in ERRORS.items() if start in text), None)


def account(soak: Soak, state: dict[str, Any]) -> dict[str, Any]:
    requests = soak.requests
    run = [r for r in requests if r.phase == "run"]
    statuses = Counter(d["status"] for r in requests for d in r.deliveries)
    http_failed = [
        r for r in requests if r.deliveries and all(d["status"] != 200 for d in r.deliveries)
    ]
    faults: dict[str, list[int]] = defaultdict(list)
    for status, call in soak.slack.faults:
        faults[call.key or call.method].append(status)
    for status, call in soak.connector.faults:
        if isinstance(call.body, dict) and call.body.get("replyToId"):
            faults[str(call.body["replyToId"])].append(status)

    for request in requests:
        request.faults = [s for k in request.keys for s in faults.get(k, [])]
        start = request.sent_wall if request.platform == "teams" else request.sent
        request.answered_s = sorted(
            round(at - start, 3) for k in request.keys for at, _ in soak.answers.get(k, [])
        )
    expected = [r for r in requests if r.expects and r not in http_failed]
    ok, duplicated, lost, errored = [], [], [], Counter()
    for request in expected:
        got = [len(soak.answers.get(k, [])) for k in request.keys]
        if any(n > 1 for n in got):
            duplicated.append(request)
        if not any(got):
            lost.append(request)
        else:
            ok.append(request)
            for key in request.keys:
                for _, body in soak.answers.get(key, []):
                    if kind := error_kind(body):
                        errored[kind] += 1
    lost_causes = Counter()
    examples = []
    for request in lost:
        seen = request.faults
        where = "Teams connector" if request.platform == "teams" else "response_url"
        cause = f"{'/'.join(map(str, sorted(set(seen))))} at {where}" if seen else "no fault seen"
        lost_causes[cause] += 1
        examples.append(
            {
                "request": request.n,
                "kind": request.kind,
                "how": request.how,
                "at_s": round(request.sent - soak.started, 1),
                "keys": request.keys,
                "deliveries": request.deliveries,
                "cause": cause,
            }
        )

    with soak.database.unit_of_work() as session:
        huddles = session.execute(
            select(Huddle.id, Huddle.requester_id, Huddle.topic, Huddle.ladder_step)
        ).all()
        participants = session.execute(
            select(
                HuddleParticipant.huddle_id,
                HuddleParticipant.person_id,
                HuddleParticipant.first_reply_at,
            )
        ).all()
        rows = session.execute(
            select(
                Outbox.huddle_id,
                Outbox.kind,
                Outbox.person_id,
                Outbox.channel,
                Outbox.body,
                Outbox.state,
                Outbox.error,
            )
        ).all()
        dump_tables(session, soak.args.workdir / "tables.jsonl")
        jobs = session.execute(select(Job.kind, Job.state, Job.fired_by, Job.huddle_id)).all()
        inbound = Counter(str(s) for s in session.scalars(select(Inbound.state)))
    person_of = {m.slack: m.person_id for m in soak.org.members}

    # Huddles per click or command: at most one.
    per_group: Counter[tuple[int, str]] = Counter(
        (requester, " ".join(topic.split()).lower()) for _, requester, topic, _ in huddles
    )
    groups = {r.group: r for r in requests if r.group}
    huddle_dups = []
    for group, request in groups.items():
        topic = " ".join((request.topic or "").split()).lower()
        count = per_group[(person_of[request.user], topic)]
        if count > 1:
            huddle_dups.append({"group": group, "huddles": count, "how": request.how})

    # Thread replies: recorded on the huddle for the expert who wrote.
    replied = {(h, p) for h, p, first in participants if first is not None}
    replies = [r for r in requests if r.kind == "slack.reply"]
    unrecorded = [
        r for r in replies if r not in http_failed and (r.huddle, person_of[r.user]) not in replied
    ]

    # Jobs fired twice: the same message written twice for one huddle (outbox), or
    # the same note posted twice in one thread (what Slack received).
    written = Counter(
        (h, kind, to, channel, body)
        for h, kind, to, channel, body, _, _ in rows
        if h is not None and kind != "update"
    )
    written_twice = [k for k, n in written.items() if n > 1]
    posted: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for call in soak.slack.calls:
        if call.method == "chat.postMessage":
            where = (
                str(call.args.get("channel")),
                str(call.args.get("thread_ts") or ""),
                str(call.args.get("text")),
            )
            posted[where].append(round(call.at - soak.started, 2))
    posted_twice = [(*k, v) for k, v in posted.items() if len(v) > 1]
    thread_twice = [k for k in posted_twice if k[1]]
    outbox_states = Counter(str(row.state) for row in rows)
    outbox_failed = Counter(
        (row.error or "")[:80] for row in rows if row.state == DeliveryState.FAILED
    )
    fired = Counter(
        (by or "?").rpartition(":")[2]
        for kind, state, by, _ in jobs
        if kind == "escalate" and state == JobState.DONE
    )

    def acks(rs: list[Request]) -> list[float]:
        return [r.deliveries[0]["ack_s"] for r in rs if r.deliveries]

    def e2e(rs: list[Request]) -> list[float]:
        values = []
        for r in rs:
            arrivals = [at for k in r.keys for at, _ in soak.answers.get(k, [])]
            if r.expects and arrivals:
                start = r.sent_wall if r.platform == "teams" else r.sent
                values.append(min(arrivals) - start)
        return values

    slack_run = [r for r in run if r.platform == "slack"]
    teams_run = [r for r in run if r.platform == "teams"]
    memory_growth = []
    for start, end in zip(soak.memory["start"], soak.memory["end"], strict=True):
        memory_growth.append(round(100 * (end["total"] - start["total"]) / start["total"], 1))
    kinds = Counter(r.kind for r in requests)
    hows = Counter(f"{r.kind}:{r.how}" for r in requests if r.how != "single")
    summary = {
        "minutes": round(soak.run_seconds / 60, 2),
        "rate": soak.args.rate,
        "restart": soak.restart,
        "load_average": soak.load,
        "requests": len(requests),
        "requests_by_kind": dict(kinds),
        "pressed_twice_or_redelivered": dict(hows),
        "http_deliveries": sum(len(r.deliveries) for r in requests),
        "http_statuses": {str(k): v for k, v in statuses.items()},
        "http_failed": len(http_failed),
        "answers_expected": len(expected),
        "answers_delivered": len(ok),
        "answered_with_error": dict(errored),
        "duplicates": len(duplicated),
        "lost": len(lost),
        "lost_by_cause": dict(lost_causes),
        "lost_examples": examples[:12],
        "duplicate_examples": [
            {"request": r.n, "kind": r.kind, "how": r.how, "keys": r.keys} for r in duplicated[:12]
        ],
        "thread_replies": len(replies),
        "thread_replies_unrecorded": len(unrecorded),
        "thread_replies_unrecorded_examples": [
            {"request": r.n, "huddle": r.huddle, "user": r.user, "deliveries": r.deliveries}
            for r in unrecorded[:12]
        ],
        "huddles_opened": len(huddles),
        "huddle_keys": len(groups),
        "huddles_duplicated": len(huddle_dups),
        "huddle_duplicate_examples": huddle_dups[:12],
        "outbox": dict(outbox_states),
        "outbox_failed": dict(outbox_failed),
        "messages_posted_twice": len(posted_twice),
        "jobs_fired_twice": len(written_twice) + len(thread_twice),
        "outbox_rows_written_twice": len(written_twice),
        "written_twice_examples": [[*where[:4], where[4][:300]] for where in written_twice[:8]],
        "thread_notes_posted_twice": len(thread_twice),
        "posted_twice_examples": [list(k) for k in posted_twice[:8]],
        "escalations_fired_by_worker_pid": dict(fired),
        "inbound": dict(inbound),
        "ack_ms": {
            "slack": {"p50": pct(acks(slack_run), 0.5), "p95": pct(acks(slack_run), 0.95)},
            "teams": {"p50": pct(acks(teams_run), 0.5), "p95": pct(acks(teams_run), 0.95)},
        },
        "end_to_end_ms": {
            "slack": {"p50": pct(e2e(slack_run), 0.5), "p95": pct(e2e(slack_run), 0.95)},
            "teams": {"p50": pct(e2e(teams_run), 0.5), "p95": pct(e2e(teams_run), 0.95)},
        },
        "memory_mb": soak.memory,
        "memory_growth_pct": memory_growth,
        "faults_injected": {
            "slack": dict(Counter(s for s, _ in soak.slack.faults)),
            "teams": dict(Counter(s for s, _ in soak.connector.faults)),
        },
        "workers_alive": state["alive"],
        "workers_ready": state["ready"],
        "left_after_drain": state["left"],
    }
    return summary


def report(summary: dict[str, Any]) -> bool:
    restart = summary["restart"]
    took = restart.get("ended", 0) - restart.get("began", 0)
    injected = summary["faults_injected"]
    load = summary["load_average"] or [0.0]
    lines = [
        f"soak: {summary['minutes']} min at {summary['rate']} requests/s on two workers; "
        f"faults {RATE_LIMITED:.0%} 429 + {BROKEN:.0%} 500 (injected: Slack {injected['slack']}, "
        f"Teams {injected['teams']}); PostgreSQL restarted at "
        f"{restart.get('began', 0):.0f} s, back in {took:.1f} s; machine load average "
        f"{min(load)}–{max(load)} on {os.cpu_count()} cores",
        f"requests              {summary['requests']} "
        f"({', '.join(f'{k} {v}' for k, v in sorted(summary['requests_by_kind'].items()))})",
        f"  pressed twice / re-delivered {summary['pressed_twice_or_redelivered']}",
        f"  HTTP deliveries     {summary['http_deliveries']}, statuses {summary['http_statuses']}",
        f"  failed at HTTP level {summary['http_failed']}",
        f"answers expected      {summary['answers_expected']}",
        f"  delivered           {summary['answers_delivered']}"
        f" (answered with an error: {summary['answered_with_error'] or 0})",
        f"  duplicates          {summary['duplicates']}",
        f"  lost                {summary['lost']} {summary['lost_by_cause'] or ''}",
        f"thread replies        {summary['thread_replies']}, "
        f"not recorded {summary['thread_replies_unrecorded']}",
        f"huddles               {summary['huddles_opened']} opened for "
        f"{summary['huddle_keys']} clicks/commands; more than one per click/command: "
        f"{summary['huddles_duplicated']}",
        f"proactive messages    outbox {summary['outbox']}; failed for good "
        f"{summary['outbox_failed'] or 0}; posted twice {summary['messages_posted_twice']}",
        f"jobs fired twice      {summary['jobs_fired_twice']} (outbox rows written twice "
        f"{summary['outbox_rows_written_twice']}, thread notes posted twice "
        f"{summary['thread_notes_posted_twice']}); escalations fired per worker pid "
        f"{summary['escalations_fired_by_worker_pid']}",
        f"kept requests         {summary['inbound']}",
        f"ack ms p50/p95        Slack {summary['ack_ms']['slack']}, "
        f"Teams {summary['ack_ms']['teams']}",
        f"end-to-end ms p50/p95 Slack {summary['end_to_end_ms']['slack']}, "
        f"Teams {summary['end_to_end_ms']['teams']}",
    ]
    for i, (start, end) in enumerate(
        zip(summary["memory_mb"]["start"], summary["memory_mb"]["end"], strict=True), start=1
    ):
        lines.append(
            f"memory worker {i} MB    start {start} → end {end} "
            f"({summary['memory_growth_pct'][i - 1]:+} %)"
        )
    lines.append(
        f"workers alive {summary['workers_alive']}, ready {summary['workers_ready']}; "
        f"left after drain {summary['left_after_drain']}"
    )
    targets = {
        "0 lost": summary["lost"] == 0 and summary["thread_replies_unrecorded"] == 0,
        "0 duplicated": summary["duplicates"] == 0
        and summary["huddles_duplicated"] == 0
        and summary["messages_posted_twice"] == 0,
        "0 jobs fired twice": summary["jobs_fired_twice"] == 0,
        "memory growth ≤ 10 %": all(g <= 10 for g in summary["memory_growth_pct"]),
        "workers up": all(summary["workers_alive"]) and all(summary["workers_ready"]),
    }
    lines.append("targets: " + ", ".join(f"{k} {'✓' if v else '✗'}" for k, v in targets.items()))
    print("\n".join(lines))
    for name in (
        "lost_examples",
        "duplicate_examples",
        "huddle_duplicate_examples",
        "thread_replies_unrecorded_examples",
        "posted_twice_examples",
        "written_twice_examples",
    ):
        if summary[name]:
            print(f"{name}:")
            for example in summary[name][:6]:
                print("  " + json.dumps(example, ensure_ascii=False, default=str)[:400])
    return all(targets.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rate", type=float, default=12, help="requests a second, both workers")
    parser.add_argument("--warmup", type=float, default=20, help="seconds of warm-up traffic")
    parser.add_argument("--drain", type=float, default=300, help="seconds to wait for the backlog")
    parser.add_argument("--escalation", type=int, default=5, help="WHOKNOWS_ESCALATION_TIMEOUT")
    parser.add_argument("--reply-share", type=float, default=0.5, help="threads an expert answers")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--lexical", action="store_true", help="rank without sentence vectors")
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    args.workdir = args.workdir or Path(tempfile.mkdtemp(prefix="whoknows-soak-"))
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"working in {args.workdir}", flush=True)
    pg = TemporaryPostgres()
    pg.start()
    soak: Soak | None = None
    try:
        env = {**os.environ, "WHOKNOWS_SEMANTIC": "off" if args.lexical else "on"}
        org = seed(pg.url, env)
        print(
            f"demo org on PostgreSQL: {len(org.members)} people, {len(org.topics)} topics",
            flush=True,
        )
        soak = Soak(args, org, pg)
        state = asyncio.run(soak.main())
        summary = account(soak, state)
    finally:
        if soak is not None:
            soak.stop_workers()
        pg.stop()
    with open(args.workdir / "requests.jsonl", "w") as out:
        for request in soak.requests:
            out.write(json.dumps(asdict(request), default=str) + "\n")
    (args.workdir / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    passed = report(summary)
    raise SystemExit(0 if passed else 1)


if __name__ == "__main__":
    main()
