"""Signed, expiring tokens: the dashboard's sign-in links and session cookies.

A token carries JSON claims and an HMAC-SHA256 over them, with a purpose
mixed into the signature so a token made for one use never passes for
another. The secret is WHOKNOWS_SECRET, or one made once and kept (mode
0600) in WHOKNOWS_HOME; the links point at WHOKNOWS_PUBLIC_URL. Both are read
once, with every other setting, in `bot.config.Settings`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bot import logs
from bot.config import Settings

LINK_TTL = timedelta(minutes=10)
DEFAULT_PUBLIC_URL = "http://127.0.0.1:3000"
SECRET_FILE = "dashboard.secret"
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


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, purpose: str, body: str) -> str:
    return _b64(hmac.new(secret, f"{purpose}.{body}".encode(), hashlib.sha256).digest())


def sign(secret: bytes, purpose: str, claims: dict[str, Any]) -> str:
    body = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    return f"{body}.{_mac(secret, purpose, body)}"


class BadToken(ValueError):
    """Forged, damaged or expired; `expired` tells the last apart."""

    def __init__(self, expired: bool = False) -> None:
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


def unsign(secret: bytes, purpose: str, token: str, now: datetime) -> dict[str, Any]:
    """The claims of a token this secret signed for this purpose and not yet expired."""
    body, _, mac = token.partition(".")
    expected = _mac(secret, purpose, body).encode()
    if not body or not hmac.compare_digest(mac.encode(errors="replace"), expected):
        raise BadToken()
    try:
        claims = json.loads(_unb64(body))
    except (binascii.Error, ValueError):
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
