"""Settings: read once from the environment, passed in explicitly."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DB_FILE_NAME = "whoknows.db"
# The dashboard's signing key, when none is given, is made once and kept in this file
# of WHOKNOWS_HOME (bot/signing.py makes it; bot/ops/logs.py keeps it out of logs).
SECRET_FILE = "dashboard.secret"
# The escalation ladder's steps: the next experts, the team's channel, the team lead.
LADDER_STEPS = ("experts", "channel", "lead")


@dataclass(frozen=True)
class Settings:
    database_url: str
    home: Path
    # Seconds an invited expert has to answer before the huddle escalates.
    escalation_timeout_s: int = 180
    # Channel for huddle threads when a team has none configured.
    huddle_channel: str | None = None
    # What happens, one step per timeout, while no invited expert has replied.
    escalation_ladder: tuple[str, ...] = LADDER_STEPS
    # Experts a huddle invites when nobody is named, and at each "experts" step.
    huddle_experts: int = 2
    # An open huddle with no activity for this long expires.
    huddle_expiry_s: int = 8 * 3600
    # Who-knows questions are kept this long (gap reports and KPIs), then deleted.
    query_log_days: int = 180
    # A request acked but not answered after this long is taken over by another worker.
    request_lease_s: int = 60
    # On SIGTERM: how long requests under way may take to finish before they are handed on.
    drain_timeout_s: int = 20
    # Signs dashboard links and sessions; None: one made once and kept in `home`.
    secret: str | None = field(default=None, repr=False)
    # Where people reach `whoknows serve` (the dashboard links point there).
    public_url: str = "http://127.0.0.1:3000"
    # Sentence-embedding signals, when the `semantic` extra is installed.
    semantic: bool = True

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, database_url: str | None = None
    ) -> Settings:
        env = os.environ if env is None else env
        home = Path(env.get("WHOKNOWS_HOME") or Path.cwd())
        url = database_url or env.get("WHOKNOWS_DATABASE_URL") or sqlite_url(home / DB_FILE_NAME)
        return cls(
            database_url=normalise_database_url(url),
            home=home,
            escalation_timeout_s=int(env.get("WHOKNOWS_ESCALATION_TIMEOUT", "180")),
            huddle_channel=env.get("WHOKNOWS_HUDDLE_CHANNEL") or None,
            escalation_ladder=parse_ladder(env.get("WHOKNOWS_ESCALATION_LADDER")),
            huddle_experts=int(env.get("WHOKNOWS_HUDDLE_EXPERTS", "2")),
            huddle_expiry_s=int(env.get("WHOKNOWS_HUDDLE_EXPIRY", str(8 * 3600))),
            query_log_days=int(env.get("WHOKNOWS_QUERY_LOG_DAYS", "180")),
            request_lease_s=int(env.get("WHOKNOWS_REQUEST_LEASE", "60")),
            drain_timeout_s=int(env.get("WHOKNOWS_DRAIN_TIMEOUT", "20")),
            secret=env.get("WHOKNOWS_SECRET") or None,
            public_url=env.get("WHOKNOWS_PUBLIC_URL") or "http://127.0.0.1:3000",
            semantic=env.get("WHOKNOWS_SEMANTIC", "on").lower() not in {"0", "off", "false", "no"},
        )


def parse_ladder(text: str | None) -> tuple[str, ...]:
    """`experts,experts,channel,lead`: any order, steps may repeat; empty = no escalation."""
    if text is None:
        return LADDER_STEPS
    steps = tuple(step.strip().lower() for step in text.split(",") if step.strip())
    unknown = [step for step in steps if step not in LADDER_STEPS]
    if unknown:
        raise ValueError(
            f"WHOKNOWS_ESCALATION_LADDER: unknown step {unknown[0]!r} "
            f"(use {', '.join(LADDER_STEPS)})"
        )
    return steps


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def normalise_database_url(url: str) -> str:
    """Accept the customary `postgres://` and `postgresql://` forms; we ship psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def redact_url(url: str) -> str:
    """A database URL fit for a log line or an error message: no password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)
