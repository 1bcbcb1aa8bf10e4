"""Local servers that play Microsoft's side of a Teams bot, on port 0, recording every call.

- `FakeLogin` (HTTPS, a self-signed certificate the test trusts through
  REQUESTS_CA_BUNDLE): the Bot Framework's OpenID metadata and signing keys,
  an Entra tenant's OpenID configuration and token endpoint (for msal), and
  `token()` to sign activity JWTs with its RSA key, as the Bot Connector would.
- `FakeConnector` (HTTP): the Bot Framework connector REST API (conversations
  create / send / reply / update, members, team channels) and Graph's
  `getPresencesByUserId`; failures can be queued per call (a 429 for the third
  page of a roster, say), or thrown in at random on connector calls (`chaos`).
  Rosters come a page at a time, as Teams gives them: at most `page_limit`
  members a page whatever the `pageSize`, and an opaque continuation token.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import ipaddress
import itertools
import json
import random
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from jwt.algorithms import RSAAlgorithm

APP_ID = "6a1f0c2e-9b1d-4c55-a8f3-2d7e1b0c9a11"
APP_PASSWORD = "test-app-password"
BOT = f"28:{APP_ID}"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
ISSUER = "https://api.botframework.com"
TEAM = "19:team-general@thread.tacv2"
HUDDLES = "19:billing-huddles@thread.tacv2"
CHANNELS = [{"id": TEAM, "name": None}, {"id": HUDDLES, "name": "billing-huddles"}]


DOMAIN = "northwind-mobile.example"  # the demo org's (bot/data/demo/data.py)


@dataclass(frozen=True)
class User:
    key: str
    name: str
    aad: str
    teams_id: str
    email: str = ""
    role: str = "user"  # Teams' userRole: user, guest, anonymous
    upn: str = ""  # the e-mail unless given (a guest's: `…#EXT#@tenant.onmicrosoft.com`)

    def account(self) -> dict[str, Any]:
        return {"id": self.teams_id, "name": self.name, "aadObjectId": self.aad}

    def member(self) -> dict[str, Any]:
        """As a roster lists them (a TeamsChannelAccount)."""
        given, _, surname = self.name.partition(" ")
        return {
            **self.account(),
            "givenName": given,
            "surname": surname,
            "email": self.email or None,
            "userPrincipalName": self.upn or self.email or f"{self.key}@{DOMAIN}",
            "userRole": self.role,
            "tenantId": TENANT,
        }


def demo_user(handle: str, n: int, **fields: Any) -> User:
    """Someone of the demo org (bot/data/demo/data.py) as Teams lists them: its name and
    e-mail, and made-up ids (`n` tells them apart) that whoknows never saw."""
    from bot.data.demo.data import PEOPLE

    person = next(p for p in PEOPLE if p["handle"] == handle)
    values: dict[str, Any] = {
        "name": person["name"],
        "aad": f"{n:08x}-0000-4000-8000-{n:012x}",
        "teams_id": f"29:{handle}",
        "email": person["email"],
        **fields,
    }
    return User(handle, **values)


USERS = {
    u.key: u
    for u in (
        User(
            "alex",
            "Alex Turner",
            "aaaaaaaa-0000-4000-8000-00000000a1e0",
            "29:alex",
            f"alex.turner@{DOMAIN}",
        ),
        User(
            "maria",
            "Maria Santos",
            "bbbbbbbb-0000-4000-8000-0000000000b1",
            "29:maria",
            f"maria.santos@{DOMAIN}",
        ),
        User(
            "omar",
            "Omar Haddad",
            "cccccccc-0000-4000-8000-0000000000c1",
            "29:omar",
            f"omar.haddad@{DOMAIN}",
        ),
        User(
            "priya",
            "Priya Sharma",
            "dddddddd-0000-4000-8000-0000000000d1",
            "29:priya",
            f"priya.sharma@{DOMAIN}",
        ),
    )
}


def self_signed(folder: Path) -> tuple[ssl.SSLContext, Path]:
    """A certificate for 127.0.0.1, and the file a client trusts it by."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "login.crt", folder / "login.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context, cert_file


class Served:
    """A local aiohttp server on port 0 (HTTPS when given an SSL context)."""

    server: TestServer | None = None

    async def serve(self, app: web.Application, context: ssl.SSLContext | None = None) -> None:
        self.server = TestServer(app, port=0)
        await self.server.start_server(ssl=context)

    async def close(self) -> None:
        if self.server is not None:
            await self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None, "not started"
        return str(self.server.make_url("")).rstrip("/")


@dataclass
class FakeLogin(Served):
    folder: Path
    # A fresh path per server: botbuilder caches signing keys by metadata URL.
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    kid: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    token_requests: list[dict[str, str]] = field(default_factory=list)
    ca_file: Path | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get(f"/{self.run}/openid", self._openid)
        app.router.add_get(f"/{self.run}/keys", self._keys)
        app.router.add_get("/{tenant}/v2.0/.well-known/openid-configuration", self._tenant)
        app.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        context, self.ca_file = self_signed(self.folder)
        await self.serve(app, context)

    @property
    def metadata_url(self) -> str:
        return f"{self.url}/{self.run}/openid"

    def token(
        self, service_url: str, *, signing_key: rsa.RSAPrivateKey | None = None, **claims: Any
    ) -> str:
        """A Bot Connector token for an activity from `service_url`; claims override."""
        now = int(time.time())
        payload = {
            "iss": ISSUER,
            "aud": APP_ID,
            "serviceurl": service_url,
            "nbf": now - 10,
            "iat": now - 10,
            "exp": now + 3600,
            **claims,
        }
        key = signing_key or self.key
        return jwt.encode(payload, key, algorithm="RS256", headers={"kid": self.kid})

    async def _openid(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": ISSUER,
                "jwks_uri": f"{self.url}/{self.run}/keys",
                "id_token_signing_alg_values_supported": ["RS256"],
            }
        )

    async def _keys(self, request: web.Request) -> web.Response:
        jwk = json.loads(RSAAlgorithm.to_jwk(self.key.public_key()))
        jwk.update({"kid": self.kid, "use": "sig", "endorsements": ["msteams"]})
        return web.json_response({"keys": [jwk]})

    async def _tenant(self, request: web.Request) -> web.Response:
        tenant = request.match_info["tenant"]
        return web.json_response(
            {
                "issuer": f"{self.url}/{tenant}/v2.0",
                "authorization_endpoint": f"{self.url}/{tenant}/oauth2/v2.0/authorize",
                "token_endpoint": f"{self.url}/{tenant}/oauth2/v2.0/token",
            }
        )

    async def _token(self, request: web.Request) -> web.Response:
        form = {k: str(v) for k, v in (await request.post()).items()}
        form["tenant"] = request.match_info["tenant"]
        self.token_requests.append(form)
        if form.get("client_secret") != APP_PASSWORD:
            return web.json_response(
                {"error": "invalid_client", "error_description": "wrong secret"}, status=401
            )
        scope = form.get("scope", "").split()[0]
        return web.json_response(
            {"token_type": "Bearer", "expires_in": 3600, "access_token": f"token:{scope}"}
        )


@dataclass
class Call:
    method: str
    path: str
    body: Any
    authorization: str | None
    at: float
    answer: Any = None
    query: dict[str, str] = field(default_factory=dict)


@dataclass
class FakeConnector(Served):
    members: list[dict[str, Any]] = field(
        default_factory=lambda: [u.member() for u in USERS.values()]
    )
    # The most members a roster page holds, whatever pageSize asks (Teams: 500).
    page_limit: int = 2
    channels: list[dict[str, Any]] = field(default_factory=lambda: list(CHANNELS))
    presences: dict[str, tuple[str, str]] = field(default_factory=dict)
    calls: list[Call] = field(default_factory=list)
    # [method, path ending, status, headers, matching calls to let through first],
    # each answered once
    failures: list[list[Any]] = field(default_factory=list)
    # Random faults on connector calls: (share answered 429 with Retry-After, share
    # answered 500). Faulted calls go to `faults` with their status, not to `calls`.
    chaos: tuple[float, float] = (0.0, 0.0)
    chaos_retry_after: int = 1
    rng: random.Random = field(default_factory=random.Random)
    faults: list[tuple[int, Call]] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1000))

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/v3/{tail:.*}", self._connector)
        app.router.add_post("/graph/v1.0/communications/getPresencesByUserId", self._presence)
        await self.serve(app)

    @property
    def graph_url(self) -> str:
        return f"{self.url}/graph/v1.0"

    # --- inspection ---
    def sent(self, method: str = "POST", fragment: str = "") -> list[Call]:
        return [c for c in self.calls if c.method == method and fragment in c.path]

    def fail(
        self,
        method: str,
        ending: str,
        status: int,
        retry_after: int | None = None,
        *,
        after: int = 0,
    ) -> None:
        """Answer a `method` call whose path ends with `ending` with `status`: the next
        one, or the one after `after` more such calls have been answered."""
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        self.failures.append([method, ending, status, headers, after])

    async def wait_for(self, check: Callable[[FakeConnector], bool], timeout: float = 15) -> None:
        """Poll until `check` holds; on time-out, say which calls did arrive."""
        for _ in range(int(timeout / 0.02)):
            if check(self):
                return
            await asyncio.sleep(0.02)
        seen = [f"{c.method} {c.path}" for c in self.calls]
        raise AssertionError(f"timed out; calls so far: {seen}")

    # --- handlers ---
    async def _connector(self, request: web.Request) -> web.Response:
        path = request.path  # decoded: `19:…;messageid=…` as the ids read
        body = await request.json() if request.can_read_body else None
        call = Call(request.method, path, body, request.headers.get("Authorization"), time.time())
        call.query = dict(request.query)
        rate_limited, broken = self.chaos
        roll = self.rng.random()
        if roll < rate_limited + broken:
            status = 429 if roll < rate_limited else 500
            self.faults.append((status, call))
            headers = {"Retry-After": str(self.chaos_retry_after)} if status == 429 else {}
            return web.json_response(
                {"error": {"code": str(status)}}, status=status, headers=headers
            )
        self.calls.append(call)
        for i, (method, ending, status, headers, after) in enumerate(self.failures):
            if method == request.method and path.endswith(ending):
                if after:
                    self.failures[i][4] -= 1
                    break
                del self.failures[i]
                error = {"error": {"code": str(status)}}
                return web.json_response(error, status=status, headers=headers)
        try:
            call.answer = self._answer(request.method, path, body, request.query)
        except web.HTTPException as error:
            return web.json_response({"error": {"code": error.reason}}, status=error.status)
        return web.json_response(call.answer)

    def _answer(self, method: str, path: str, body: Any, query: Any) -> Any:
        parts = path.split("/")[2:]  # after /v3/
        if parts[0] == "teams":
            return {"conversations": self.channels}
        if method == "POST" and parts == ["conversations"]:
            activity_id = str(next(self._ids))
            channel = ((body.get("channelData") or {}).get("channel") or {}).get("id")
            if body.get("isGroup") and channel:
                return {"id": f"{channel};messageid={activity_id}", "activityId": activity_id}
            return {"id": f"a:chat-{body['members'][0]['id']}"}
        if parts[-1] == "pagedmembers":
            return self._page(query)
        if len(parts) >= 3 and parts[2] == "members":
            found = [m for m in self.members if m["id"] == parts[3]]
            if not found:
                raise web.HTTPNotFound(reason="MemberNotFoundInConversation")
            return found[0]
        if method == "PUT":
            return {"id": parts[-1]}
        return {"id": str(next(self._ids))}

    def _page(self, query: Any) -> dict[str, Any]:
        """A page of the roster: pageSize (Teams takes 50 to 500) capped at page_limit."""
        size = min(max(int(query.get("pageSize") or 500), 1), self.page_limit)
        start = 0
        if query.get("continuationToken"):
            try:
                start = int(base64.urlsafe_b64decode(query["continuationToken"]).split(b":")[1])
            except (ValueError, IndexError):
                raise web.HTTPBadRequest(reason="BadContinuationToken") from None
        page: dict[str, Any] = {"members": self.members[start : start + size]}
        if start + size < len(self.members):
            token = base64.urlsafe_b64encode(f"roster:{start + size}".encode()).decode()
            page["continuationToken"] = token
        return page

    async def _presence(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append(
            Call("POST", request.path, body, request.headers.get("Authorization"), time.time())
        )
        value = [
            {"id": i, "availability": self.presences[i][0], "activity": self.presences[i][1]}
            for i in body["ids"]
            if i in self.presences
        ]
        return web.json_response({"value": value})
