"""A local HTTP server that speaks the Slack Web API (and response_url), recording every call.

It stands where Slack's servers would, on port 0; errors and 429s with
Retry-After can be queued per method, or thrown in at random (`chaos`).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

BOT_USER = "UBOT"
TEAM = "T0001"


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    at: float
    key: str = ""  # a response_url's key


@dataclass
class FakeSlack:
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Slack user id → "away" (everyone else is "active"), and who is in Do Not Disturb.
    presence: dict[str, str] = field(default_factory=dict)
    dnd: set[str] = field(default_factory=set)
    calls: list[Call] = field(default_factory=list)
    # method → queued (channel or None for any, status, body, headers), answered first
    failures: dict[str, list[tuple[str | None, int, dict[str, Any], dict[str, str]]]] = field(
        default_factory=dict
    )
    server: TestServer | None = None
    # While set, response_url posts are recorded and then left hanging (a stuck network).
    hold_responses: bool = False
    # Random faults on any call, response_url too: (share answered 429 with Retry-After,
    # share answered 500). Faulted calls go to `faults` with their status, not to `calls`.
    chaos: tuple[float, float] = (0.0, 0.0)
    chaos_retry_after: int = 1
    rng: random.Random = field(default_factory=random.Random)
    faults: list[tuple[int, Call]] = field(default_factory=list)
    _ts: itertools.count = field(default_factory=lambda: itertools.count(1))

    # --- lifecycle ---
    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/response/{key}", self._response_url)
        self.server = TestServer(app, port=0)
        await self.server.start_server()

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    @property
    def api_url(self) -> str:
        assert self.server is not None
        return str(self.server.make_url("/api/"))

    def response_url(self, key: str = "r1") -> str:
        assert self.server is not None
        return str(self.server.make_url(f"/response/{key}"))

    # --- inspection ---
    def called(self, method: str) -> list[dict[str, Any]]:
        return [c.args for c in self.calls if c.method == method]

    async def wait_for(self, check: Callable[[FakeSlack], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not check(self):
            if time.monotonic() > deadline:
                methods = [c.method for c in self.calls]
                raise AssertionError(f"timed out; calls so far: {methods}")
            await asyncio.sleep(0.02)

    def fail(
        self,
        method: str,
        error: str,
        *,
        status: int = 200,
        retry_after: int | None = None,
        channel: str | None = None,
    ) -> None:
        """Answer the next call of `method` (to `channel`, if given) with an error."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        body = {"ok": False, "error": error}
        self.failures.setdefault(method, []).append((channel, status, body, headers))

    # --- handlers ---
    async def _args(self, request: web.Request) -> dict[str, Any]:
        args: dict[str, Any] = dict(request.query)
        if request.method == "GET":
            pass
        elif request.content_type == "application/json":
            args.update(await request.json())
        else:
            args.update(dict(await request.post()))
        for key in ("blocks", "view"):
            if isinstance(args.get(key), str):
                args[key] = json.loads(args[key])
        return args

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await self._args(request)
        call = Call(method, args, time.monotonic())
        if (fault := self._chaos(call)) is not None:
            return fault
        self.calls.append(call)
        queued = self.failures.get(method, [])
        for i, (channel, status, body, headers) in enumerate(queued):
            if channel is None or channel == args.get("channel"):
                del queued[i]
                return web.json_response(body, status=status, headers=headers)
        return web.json_response(self._answer(method, args))

    async def _response_url(self, request: web.Request) -> web.Response:
        call = Call(
            "response_url", await request.json(), time.monotonic(), request.match_info["key"]
        )
        if (fault := self._chaos(call)) is not None:
            return fault
        self.calls.append(call)
        while self.hold_responses:
            await asyncio.sleep(0.05)
        return web.Response(text="ok")

    def _chaos(self, call: Call) -> web.Response | None:
        rate_limited, broken = self.chaos
        roll = self.rng.random()
        if roll >= rate_limited + broken:
            return None
        status = 429 if roll < rate_limited else 500
        self.faults.append((status, call))
        if status == 429:
            headers = {"Retry-After": str(self.chaos_retry_after)}
            return web.json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers=headers
            )
        return web.json_response({"ok": False, "error": "internal_error"}, status=500)

    def _answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        if method == "auth.test":
            return {"ok": True, "user_id": BOT_USER, "bot_id": "BBOT", "team_id": TEAM}
        if method in {"chat.postMessage", "chat.update"}:
            ts = args.get("ts") or f"{1700000000 + next(self._ts)}.000100"
            return {"ok": True, "channel": args.get("channel"), "ts": ts}
        if method == "conversations.open":
            return {"ok": True, "channel": {"id": "D" + str(args.get("users", ""))}}
        if method == "users.info":
            user = self.users.get(str(args.get("user")))
            return {"ok": True, "user": user} if user else {"ok": False, "error": "user_not_found"}
        if method == "users.list":
            return {"ok": True, "members": list(self.users.values())}
        if method == "users.getPresence":
            return {"ok": True, "presence": self.presence.get(str(args.get("user")), "active")}
        if method == "dnd.teamInfo":
            now = time.time()
            users = str(args.get("users", "")).split(",")
            return {
                "ok": True,
                "users": {
                    u: {
                        "dnd_enabled": u in self.dnd,
                        "next_dnd_start_ts": now - 60 if u in self.dnd else 1,
                        "next_dnd_end_ts": now + 3600 if u in self.dnd else 1,
                    }
                    for u in users
                },
            }
        return {"ok": True}
