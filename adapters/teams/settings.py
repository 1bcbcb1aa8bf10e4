"""Microsoft Teams settings, under the Bot Framework's and Graph's customary variable names."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from bot.services.tenants import parse_ids

APP_TYPES = ("MultiTenant", "SingleTenant")
LOGIN_URL = "https://login.microsoftonline.com"
# Where Bot Framework publishes the keys that sign the tokens on inbound activities.
OPENID_METADATA_URL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
GRAPH_API_URL = "https://graph.microsoft.com/v1.0"
# The issuer of inbound tokens and the audience of the bot's own outbound tokens.
BOT_FRAMEWORK = "https://api.botframework.com"
# A multi-tenant bot gets its outbound tokens from this tenant.
BOT_FRAMEWORK_TENANT = "botframework.com"


class TeamsConfigError(ValueError):
    """Settings that cannot work together; the message names the variable to fix."""


def _seconds(env: Mapping[str, str], name: str, default: int) -> int:
    text = (env.get(name) or "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise TeamsConfigError(f"{name}: {text[:40]!r} is not a number of seconds")
    return int(text)


@dataclass(frozen=True)
class TeamsSettings:
    app_id: str | None = None
    app_password: str | None = None
    app_type: str = "MultiTenant"
    app_tenant_id: str | None = None
    # Without an app id Bot Framework tokens cannot be checked: only for local
    # development (the endpoint then answers only requests over loopback).
    local: bool = False
    graph_tenant_id: str | None = None
    graph_client_id: str | None = None
    graph_client_secret: str | None = None
    graph_api_url: str = GRAPH_API_URL
    presence_interval_s: int = 60
    # How often every team's roster is read again (one worker of many reads each).
    roster_interval_s: int = 86_400
    login_url: str = LOGIN_URL
    openid_metadata_url: str = OPENID_METADATA_URL
    # The Microsoft 365 tenants served; None: a single-tenant bot's own, or the first
    # whose activity arrives with a valid token (bot/services/tenants.py).
    tenants: frozenset[str] | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TeamsSettings:
        env = os.environ if env is None else env
        app_type = env.get("MICROSOFT_APP_TYPE") or "MultiTenant"
        canonical = {t.lower(): t for t in APP_TYPES}.get(app_type.lower())
        if canonical is None:
            raise TeamsConfigError(
                f"MICROSOFT_APP_TYPE: {app_type!r} is not one of {', '.join(APP_TYPES)}"
            )
        settings = cls(
            app_id=env.get("MICROSOFT_APP_ID") or None,
            app_password=env.get("MICROSOFT_APP_PASSWORD") or None,
            app_type=canonical,
            app_tenant_id=env.get("MICROSOFT_APP_TENANT_ID") or None,
            local=(env.get("WHOKNOWS_TEAMS_LOCAL") or "").lower() in {"1", "on", "true", "yes"},
            # Graph may use its own app registration, or the bot's.
            graph_tenant_id=env.get("GRAPH_TENANT_ID") or None,
            graph_client_id=env.get("GRAPH_CLIENT_ID") or env.get("MICROSOFT_APP_ID") or None,
            graph_client_secret=(
                env.get("GRAPH_CLIENT_SECRET") or env.get("MICROSOFT_APP_PASSWORD") or None
            ),
            graph_api_url=(env.get("GRAPH_API_URL") or GRAPH_API_URL).rstrip("/"),
            presence_interval_s=int(env.get("GRAPH_PRESENCE_INTERVAL") or "60"),
            roster_interval_s=_seconds(env, "WHOKNOWS_TEAMS_ROSTER_INTERVAL", 86_400),
            login_url=(env.get("MICROSOFT_LOGIN_URL") or LOGIN_URL).rstrip("/"),
            openid_metadata_url=env.get("MICROSOFT_OPENID_METADATA_URL") or OPENID_METADATA_URL,
            tenants=parse_ids(env.get("WHOKNOWS_TEAMS_TENANTS")),
        )
        settings.check()
        return settings

    def check(self) -> None:
        if self.app_id and not self.app_password:
            raise TeamsConfigError("MICROSOFT_APP_PASSWORD is needed with MICROSOFT_APP_ID")
        if self.app_id and self.app_type == "SingleTenant" and not self.app_tenant_id:
            raise TeamsConfigError("MICROSOFT_APP_TENANT_ID is needed for a SingleTenant app")

    @property
    def enabled(self) -> bool:
        return bool(self.app_id) or self.local

    @property
    def graph_enabled(self) -> bool:
        return bool(self.graph_tenant_id and self.graph_client_id and self.graph_client_secret)

    @property
    def bot_authority(self) -> str:
        """Where the bot gets the tokens it sends to the Bot Framework connector."""
        tenant = self.app_tenant_id if self.app_type == "SingleTenant" else BOT_FRAMEWORK_TENANT
        return f"{self.login_url}/{tenant}"

    @property
    def graph_authority(self) -> str:
        return f"{self.login_url}/{self.graph_tenant_id}"

    def __repr__(self) -> str:  # never print a secret
        return (
            f"TeamsSettings(app_id={self.app_id!r}, app_type={self.app_type!r}, "
            f"tenant={self.app_tenant_id!r}, local={self.local}, graph={self.graph_enabled})"
        )
