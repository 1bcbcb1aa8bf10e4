"""App-only access tokens (client credentials) through msal, off the event loop.

msal talks HTTP with `requests`, which blocks: every call runs in a thread.
It caches a token until shortly before it expires, so most calls return at once.
"""

from __future__ import annotations

import asyncio
import threading

import msal


class TokenError(Exception):
    """The identity platform refused to issue a token (wrong secret, tenant, consent …)."""


class AppToken:
    def __init__(self, client_id: str, secret: str, authority: str, scope: str) -> None:
        self.client_id = client_id
        self._secret = secret
        self.authority = authority
        self.scope = scope
        self._app: msal.ConfidentialClientApplication | None = None
        self._lock = threading.Lock()

    def _acquire(self) -> str:
        with self._lock:
            if self._app is None:
                self._app = msal.ConfidentialClientApplication(
                    self.client_id,
                    client_credential=self._secret,
                    authority=self.authority,
                    # The host is Entra's (or a stand-in in tests): no discovery call.
                    instance_discovery=False,
                )
            app = self._app
        result = app.acquire_token_for_client(scopes=[self.scope])
        if "access_token" not in result:
            raise TokenError(f"{result.get('error')}: {result.get('error_description', '')[:300]}")
        return str(result["access_token"])

    async def get(self) -> str:
        return await asyncio.to_thread(self._acquire)

    def __repr__(self) -> str:  # never print the secret
        return f"AppToken(client_id={self.client_id!r}, authority={self.authority!r})"
