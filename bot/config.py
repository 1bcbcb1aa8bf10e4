"""Settings: read once from the environment, passed in explicitly."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

DB_FILE_NAME = "whoknows.db"


@dataclass(frozen=True)
class Settings:
    database_url: str
    home: Path
    # Seconds an invited expert has to answer before the huddle escalates.
    escalation_timeout_s: int = 180
    # Channel for huddle threads when a team has none configured.
    huddle_channel: str | None = None
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
            semantic=env.get("WHOKNOWS_SEMANTIC", "on").lower() not in {"0", "off", "false", "no"},
        )


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
