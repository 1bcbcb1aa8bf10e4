"""A local HTTP server that speaks the Slack Web API (and response_url), recording every call.

It stands where Slack's servers would, on port 0; errors and 429s with
Retry-After can be queued per method, or thrown in at random (`chaos`).
"""

from __future__ import annotations

import asyncio
import base64
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
# The app's OAuth credentials, as oauth.v2.access expects them (HTTP Basic).
CLIENT_ID = "1111.2222"
CLIENT_SECRET = "fake-client-secret"
DIRECTORY_METHODS = {"auth.test", "users.list"}


@dataclass
class Call:
    method: str
    args: dict[str, Any]
    at: float
    key: str = ""  # a response_url's key
    # The bearer token the call carried (None: no token, or the app's client credentials).
    token: str | None = None


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
    # Answered first, in order, by response_url posts: (status, Retry-After or None).
    response_failures: list[tuple[int, int | None]] = field(default_factory=list)
    # Random faults on any call, response_url too: (share answered 429 with Retry-After,
    # share answered 500). Faulted calls go to `faults` with their status, not to `calls`.
    chaos: tuple[float, float] = (0.0, 0.0)
    chaos_retry_after: int = 1
    rng: random.Random = field(default_factory=random.Random)
    faults: list[tuple[int, Call]] = field(default_factory=list)
    _ts: itertools.count = field(default_factory=lambda: itertools.count(1))
    # OAuth installs. Once the fake has issued a token, every call must carry one it
    # issued, and a channel or user of another workspace is "not found" there.
    grants: dict[str, dict[str, Any]] = field(default_factory=dict)  # code → workspace
    tokens: dict[str, str] = field(default_factory=dict)  # access token → team id
    refresh_tokens: dict[str, str] = field(default_factory=dict)  # unspent → team id
    channels: dict[str, str] = field(default_factory=dict)  # channel → team id
    refresh_delay: float = 0.0
    revoked: set[str] = field(default_factory=set)  # tokens Slack took back
    _minted: itertools.count = field(default_factory=lambda: itertools.count(1))
    # method → {n: (status, body, headers)}: the n-th call of method (from 1) answered so.
    scheduled: dict[str, dict[int, tuple[int, dict[str, Any], dict[str, str]]]] = field(
        default_factory=dict
    )
    _counted: dict[str, int] = field(default_factory=dict)

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

    def besides_the_directory(self) -> list[Call]:
        """Every call but the directory read's (auth.test, users.list), which runs on
        its own from the server's start."""
        return [c for c in self.calls if c.method not in DIRECTORY_METHODS]

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

    def rate_limit(self, method: str, *, retry_after: int, on_call: int) -> None:
        """Answer the `on_call`-th call of `method` (counting from 1) with a 429 and
        Retry-After, as Slack does past a method's tier."""
        body = {"ok": False, "error": "ratelimited"}
        headers = {"Retry-After": str(retry_after)}
        self.scheduled.setdefault(method, {})[on_call] = (429, body, headers)

    def add_users(self, *users: dict[str, Any]) -> None:
        """Members of the workspace, listed by users.list in the order added."""
        for user in users:
            self.users[str(user["id"])] = user

    # --- OAuth installs ---
    def grant(
        self,
        code: str,
        team: str,
        name: str = "",
        *,
        expires_in: int | None = None,
        enterprise: str | None = None,
    ) -> None:
        """Slack will hand `code` to the redirect once an admin of `team` approves;
        with `expires_in` the workspace's tokens rotate (a refresh token comes with each);
        `enterprise`: the Enterprise Grid org the workspace belongs to."""
        self.grants[code] = {
            "team": team,
            "name": name or team,
            "expires_in": expires_in,
            "enterprise": enterprise,
        }

    def revoke(self, team: str) -> None:
        """The app is uninstalled from `team`: its tokens answer token_revoked from now on."""
        for token in [t for t, owner in self.tokens.items() if owner == team]:
            del self.tokens[token]
            self.revoked.add(token)

    def _mint(self, team: str, expires_in: int | None) -> dict[str, Any]:
        n = next(self._minted)
        token = f"xoxb-{team}-{n}" if expires_in is None else f"xoxe.xoxb-{team}-{n}"
        self.tokens[token] = team
        answer: dict[str, Any] = {"access_token": token, "token_type": "bot"}
        if expires_in is not None:
            refresh = f"xoxe-1-{team}-{n}"
            self.refresh_tokens[refresh] = team
            answer |= {"refresh_token": refresh, "expires_in": expires_in}
        return answer

    async def _oauth_v2_access(self, request: web.Request, args: dict[str, Any]) -> dict[str, Any]:
        basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {basic}":
            return {"ok": False, "error": "invalid_client"}
        if args.get("grant_type") == "refresh_token":
            await asyncio.sleep(self.refresh_delay)
            # A refresh token works once: spending it again is refused.
            team = self.refresh_tokens.pop(str(args.get("refresh_token")), None)
            if team is None:
                return {"ok": False, "error": "invalid_refresh_token"}
            return {"ok": True, **self._mint(team, 43200)}
        grant = self.grants.pop(str(args.get("code")), None)
        if grant is None:
            return {"ok": False, "error": "invalid_code"}
        team = grant["team"]
        return {
            "ok": True,
            "app_id": "A1",
            "scope": "commands,chat:write",
            "bot_user_id": f"UBOT{team}",
            "team": {"id": team, "name": grant["name"]},
            "enterprise": (
                {"id": grant["enterprise"], "name": f"{grant['enterprise']} org"}
                if grant.get("enterprise")
                else None
            ),
            "is_enterprise_install": False,
            "authed_user": {"id": f"UADMIN{team}"},
            **self._mint(team, grant["expires_in"]),
        }

    def _as_workspace(self, method: str, args: dict[str, Any], token: str | None) -> Any:
        """Once installs are on: Slack's answer for this token, if it is not the usual one."""
        if not self.tokens and not self.revoked:
            return None
        team = self.tokens.get(token or "")
        if token in self.revoked:
            return {"ok": False, "error": "token_revoked"}
        if team is None:
            return {"ok": False, "error": "not_authed" if token is None else "invalid_auth"}
        if method == "auth.test":
            return {"ok": True, "user_id": f"UBOT{team}", "bot_id": f"B{team}", "team_id": team}
        channel = self.channels.get(str(args.get("channel", "")))
        if channel is not None and channel != team:
            return {"ok": False, "error": "channel_not_found"}
        for key in ("user", "users"):
            user = self.users.get(str(args.get(key, "")))
            if user is not None and user.get("team_id", team) != team:
                return {"ok": False, "error": "user_not_found"}
        return None

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
        bearer = request.headers.get("Authorization", "")
        call.token = bearer.removeprefix("Bearer ") if bearer.startswith("Bearer ") else None
        if (fault := self._chaos(call)) is not None:
            return fault
        self.calls.append(call)
        if method == "oauth.v2.access":
            return web.json_response(await self._oauth_v2_access(request, args))
        if (answer := self._as_workspace(method, args, call.token)) is not None:
            return web.json_response(answer)
        self._counted[method] = n = self._counted.get(method, 0) + 1
        if (planned := self.scheduled.get(method, {}).pop(n, None)) is not None:
            status, body, headers = planned
            return web.json_response(body, status=status, headers=headers)
        if method == "apps.uninstall" and call.token in self.tokens:
            self.revoke(self.tokens[call.token])  # every token of that installation
        queued = self.failures.get(method, [])
        for i, (channel, status, body, headers) in enumerate(queued):
            if channel is None or channel == args.get("channel"):
                del queued[i]
                return web.json_response(body, status=status, headers=headers)
        if method == "users.list":
            # The token's workspace: the install's, or the one bot token's (auth.test's).
            team = self.tokens.get(call.token or "") if self.tokens else TEAM
            return web.json_response(self._users_list(args, team))
        return web.json_response(self._answer(method, args))

    def _users_list(self, args: dict[str, Any], team: str | None) -> dict[str, Any]:
        """Slack's cursor pagination: `limit` members at most (all without one), and
        response_metadata.next_cursor naming where the next page starts ("" at the end).
        Only the token's workspace's members, as Slack lists them."""
        members = [u for u in self.users.values() if u.get("team_id", team) == team]
        start = 0
        cursor = str(args.get("cursor") or "")
        if cursor:
            try:
                first = base64.b64decode(cursor.encode(), validate=True).decode()
            except ValueError:
                return {"ok": False, "error": "invalid_cursor"}
            ids = [str(u["id"]) for u in members]
            if not first.startswith("user:") or first[5:] not in ids:
                return {"ok": False, "error": "invalid_cursor"}
            start = ids.index(first[5:])
        limit = int(args.get("limit") or 0)
        end = min(len(members), start + min(limit, 1000)) if limit > 0 else len(members)
        page = members[start:end]
        after = ""
        if end < len(members):
            after = base64.b64encode(f"user:{members[end]['id']}".encode()).decode()
        return {
            "ok": True,
            "members": page,
            "cache_ts": int(time.time()),
            "response_metadata": {"next_cursor": after},
        }

    async def _response_url(self, request: web.Request) -> web.Response:
        call = Call(
            "response_url", await request.json(), time.monotonic(), request.match_info["key"]
        )
        if (fault := self._chaos(call)) is not None:
            return fault
        if self.response_failures:
            status, retry_after = self.response_failures.pop(0)
            self.calls.append(Call("response_url.refused", call.args, call.at))
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            return web.Response(status=status, text="rate_limited", headers=headers)
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


def member(
    user_id: str,
    name: str,
    real_name: str,
    *,
    email: str | None = None,
    tz: str = "Europe/London",
    team: str = TEAM,
    **flags: Any,
) -> dict[str, Any]:
    """A user object as users.list, users.info and team_join give it (is_bot,
    is_restricted, deleted… as `flags`); the e-mail shows with users:read.email."""
    profile: dict[str, Any] = {"real_name": real_name, "display_name": name}
    if email is not None:
        profile["email"] = email
    return {
        "id": user_id,
        "team_id": team,
        "name": name,
        "real_name": real_name,
        "tz": tz,
        "deleted": False,
        "is_bot": False,
        "is_app_user": False,
        "is_restricted": False,
        "is_ultra_restricted": False,
        "profile": profile,
        **flags,
    }
