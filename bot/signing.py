"""Signed, expiring tokens: the dashboard's sign-in links and session cookies.

A token carries JSON claims signed by itsdangerous (HMAC-SHA256, URL-safe), with
its purpose as the salt, so a token made for one use never passes for another.
It expires at its `exp` claim, read against the clock the caller passes (the
services' clock), as each caller gives its tokens their own lifetime; a sign-in
link is spent once by the dashboard (adapters/dashboard/auth.py). The secret is
WHOKNOWS_SECRET, or one made once and kept (mode 0600) in WHOKNOWS_HOME; the
links point at WHOKNOWS_PUBLIC_URL. Both are read once, with every other
setting, in `bot.config.Settings`.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from itsdangerous import BadData, URLSafeSerializer

from bot.config import SECRET_FILE, Settings
from bot.ops import logs

LINK_TTL = timedelta(minutes=10)
DEFAULT_PUBLIC_URL = "http://127.0.0.1:3000"
MIN_SECRET_BYTES = 16
LOGIN_PATH = "/dashboard/login"


@dataclass(frozen=True)
class DashboardSettings:
    secret: bytes
    public_url: str

    @classmethod
    def from_settings(cls, settings: Settings) -> DashboardSettings:
        """WHOKNOWS_SECRET, else a secret made once and kept (mode 0600) in WHOKNOWS_HOME."""
        given = settings.secret
        secret = given.encode() if given else stored_secret(settings.home / SECRET_FILE)
        logs.add_secret(secret)  # never in a log line, even one about the dashboard
        return cls(secret, settings.public_url.rstrip("/"))

    @property
    def secure_cookies(self) -> bool:
        return self.public_url.startswith("https://")

    def __repr__(self) -> str:  # never print the secret
        return f"DashboardSettings(public_url={self.public_url!r})"


def stored_secret(path: Path) -> bytes:
    """The secret in `path`, made on first use; concurrent first uses agree on one.

    Written whole to a private temporary file, then linked into place (which
    fails if another process got there first), so nobody reads a half-written key.
    """
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(secrets.token_hex(32).encode())
        try:
            os.link(draft, path)
        except FileExistsError:
            pass  # another worker made it first: use theirs
        finally:
            draft.unlink()
    secret = path.read_bytes().strip()
    if len(secret) < MIN_SECRET_BYTES:
        raise RuntimeError(f"{path} holds no usable secret: delete it, or set WHOKNOWS_SECRET")
    return secret


SALT = "whoknows.{purpose}"  # itsdangerous' salt: one key per purpose, from one secret


def _serializer(secret: bytes, purpose: str) -> URLSafeSerializer:
    """Compact JSON, HMAC-SHA256 with a key derived per purpose (itsdangerous'
    default derivation), URL-safe base64: a token is a query value or a cookie as is.

    Not itsdangerous' timed serializer: its max_age reads the machine's clock, and
    expiry here follows the caller's clock and each token's own `exp`."""
    return URLSafeSerializer(
        secret,
        salt=SALT.format(purpose=purpose),
        signer_kwargs={"digest_method": hashlib.sha256},
    )


def sign(secret: bytes, purpose: str, claims: dict[str, Any]) -> str:
    return _serializer(secret, purpose).dumps(claims)


class BadToken(ValueError):
    """Forged, damaged or expired; `expired` tells the last apart."""

    def __init__(self, expired: bool = False) -> None:
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


def unsign(secret: bytes, purpose: str, token: str, now: datetime) -> dict[str, Any]:
    """The claims of a token this secret signed for this purpose and not yet expired."""
    try:
        claims = _serializer(secret, purpose).loads(token)
    except BadData:  # forged, damaged, or signed for another purpose
        raise BadToken() from None
    if not isinstance(claims, dict) or not isinstance(claims.get("exp"), int | float):
        raise BadToken()
    if claims["exp"] <= now.timestamp():
        raise BadToken(expired=True)
    return claims


def login_token(settings: DashboardSettings, person_id: int, now: datetime) -> str:
    claims = {
        "p": person_id,
        "exp": int((now + LINK_TTL).timestamp()),
        "n": secrets.token_urlsafe(16),
    }
    return sign(settings.secret, "login", claims)


def login_url(settings: DashboardSettings, person_id: int, now: datetime) -> str:
    return f"{settings.public_url}{LOGIN_PATH}?token={login_token(settings, person_id, now)}"
