"""Slack request signatures, checked strictly before anything else reads the request.

slack-bolt's own check answers a malformed timestamp (`abc`, empty, `1.5`, a
5,000-digit number) or a non-ASCII signature with 500; every one of those is a
request we did not get from Slack, so it gets 401 here.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

MAX_AGE_S = 300


def verify_signature(secret: str, headers: Mapping[str, str], body: bytes, now: float) -> bool:
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    signature = headers.get("X-Slack-Signature", "")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        return False
    if abs(now - int(timestamp)) > MAX_AGE_S:
        return False
    if not (signature.isascii() and signature.startswith("v0=")):
        return False
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.encode())


def sign(secret: str, body: bytes, timestamp: int) -> dict[str, str]:
    """The headers Slack would send with this body (for tests and the load bench)."""
    base = b"v0:" + str(timestamp).encode() + b":" + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": f"v0={digest}"}
