"""Logging: one line per record, as text or JSON, never with a secret in it.

`configure()` puts one handler on the root logger, writing to stderr:

- WHOKNOWS_LOG_FORMAT=json: one JSON object a line (`time` in ISO-8601 UTC,
  `level`, `logger`, `message`, `exception` when there is one, and every
  field passed as `extra=`); otherwise text, `time level logger: message`.
- WHOKNOWS_LOG_LEVEL: DEBUG, INFO (the default), WARNING, ERROR.

Before a record is written its message, arguments, exception text and extra
fields are redacted: the values of the secret settings (tokens, signing
secrets, app passwords, the database password) wherever they appear, and
anything shaped like a credential (Slack tokens, bearer tokens, JWTs,
`user:password@` in a URL, `client_secret=…`, an OAuth `code=` in a URL).
Secrets learnt while running (the dashboard's key) are added with `add_secret`;
short-lived ones that arrive with requests (Slack's OAuth codes) with
`add_passing_secret`, which keeps only the latest PASSING_SECRETS of them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import IO, Any
from urllib.parse import quote

from bot.config import SECRET_FILE, Settings

REDACTED = "[REDACTED]"
# Settings whose whole value is a secret.
SECRET_VARIABLES = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_CLIENT_SECRET",
    "SLACK_APP_TOKEN",
    "MICROSOFT_APP_PASSWORD",
    "GRAPH_CLIENT_SECRET",
    "WHOKNOWS_SECRET",
    "WHOKNOWS_METRICS_TOKEN",
)
# Settings that are URLs with a password in them.
URL_VARIABLES = ("WHOKNOWS_DATABASE_URL",)
# Shorter values are not hunted for by value (they would blank out ordinary words);
# the patterns below still apply to them.
MIN_SECRET_CHARS = 6
# Short-lived secrets learnt from requests (OAuth codes), kept for redaction: the latest.
PASSING_SECRETS = 64
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FORMATS = ("text", "json")

# Values end at whitespace, quotes, a backslash and separators, so that a
# replacement never cuts a quoted or escaped string in two.
_VALUE = r"[^\s\"'\\&,;<>()\[\]{}]+"
PATTERNS = (
    # Slack: bot, user, app-level, refresh and configuration tokens.
    re.compile(r"\b(?:xox[abeoprs](?:\.xox[abeoprs])?|xapp)-[A-Za-z0-9-]+"),
    # JSON web tokens (Bot Framework and Graph access tokens).
    re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),
    # Authorization: Bearer … / Basic … (the scheme stays, the credential goes).
    re.compile(r"(?i)(?<=\bbearer )\s*" + _VALUE),
    re.compile(r"(?i)(?<=\bbasic )\s*" + _VALUE),
    # scheme://user:password@host: the password goes (up to the host's @).
    re.compile(r"(?<=://)([^\s/:@\"'\\]*:)[^\s/\"'\\]+(?=@)"),
    # An OAuth authorization code in a URL's query (a redirect, an access log line).
    re.compile(r"(?<=[?&]code=)" + _VALUE),
    # client_secret=…, "password": "…", token: …, api_key=… (key=value, JSON and headers).
    re.compile(
        r"(?i)(?P<key>\b[\w-]*(?:secret|password|passwd|token|api[_-]?key|signature)[\"']?"
        r"\s*[=:]\s*[\"']?)" + _VALUE
    ),
)


class Redactor:
    """Removes known secret values and credential-shaped text from strings."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._secrets: tuple[str, ...] = ()
        self._kept: set[str] = set()
        self._passing: deque[str] = deque(maxlen=PASSING_SECRETS)
        self.add(*secrets)

    def add(self, *secrets: str | bytes | None) -> None:
        with self._lock:
            self._kept.update(_usable(secrets))
            self._publish()

    def add_passing(self, *secrets: str | bytes | None) -> None:
        """Secrets that matter for minutes (an OAuth code): only the latest are kept, so a
        flood of made-up ones cannot grow the list without end."""
        with self._lock:
            self._passing.extend(_usable(secrets))
            self._publish()

    def _publish(self) -> None:
        # Longest first: a secret that contains another goes whole.
        values = self._kept | set(self._passing)
        self._secrets = tuple(sorted(values, key=len, reverse=True))

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, REDACTED)
            escaped = repr(secret)[1:-1]  # as it reads inside a repr() or a traceback
            if escaped != secret and escaped in text:
                text = text.replace(escaped, REDACTED)
        for pattern in PATTERNS:
            text = pattern.sub(_replacement, text)
        return text


def _usable(secrets: Iterable[str | bytes | None]) -> list[str]:
    found = []
    for secret in secrets:
        if isinstance(secret, bytes):
            secret = secret.decode(errors="replace")
        if secret and len(secret.strip()) >= MIN_SECRET_CHARS:
            found.append(secret.strip())
    return found


def _replacement(match: re.Match[str]) -> str:
    key = match.groupdict().get("key")
    if key is not None:
        return key + REDACTED
    if match.re.groups and match.group(1) is not None:
        return match.group(1) + REDACTED  # the user in user:password@
    return REDACTED


REDACT = Redactor()


def add_secret(*secrets: str | bytes | None) -> None:
    """A secret learnt while running: from now on it is redacted from every log line."""
    REDACT.add(*secrets)


def add_passing_secret(*secrets: str | bytes | None) -> None:
    """A short-lived secret that came with a request (Slack's OAuth code): redacted from
    every log line from now on, while it is among the latest PASSING_SECRETS."""
    REDACT.add_passing(*secrets)


def redact(text: str) -> str:
    return REDACT(text)


def secrets_from(env: Mapping[str, str], settings: Settings | None = None) -> list[str]:
    """The secret values among the settings: whole values, and passwords in URLs."""
    from sqlalchemy.engine import make_url

    found = [env.get(name, "") for name in SECRET_VARIABLES]
    urls = [env.get(name, "") for name in URL_VARIABLES]
    if settings is not None:
        found.append(settings.secret or "")
        urls.append(settings.database_url)
    for url in urls:
        try:
            password = make_url(url).password if url else None
        except Exception:  # not a URL: hunt for the whole value
            password = url
        if password:
            found.extend([str(password), quote(str(password), safe="")])
    return [value for value in found if value]


# --- the handler's filter and formatters -------------------------------------------------

_RECORD_FIELDS = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """What the caller passed as `extra=`."""
    return {k: v for k, v in record.__dict__.items() if k not in _RECORD_FIELDS}


def _plain(value: Any, redactor: Redactor) -> Any:
    """A JSON-ready copy of an extra field's value, every string in it redacted."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redactor(value)
    if isinstance(value, Mapping):
        return {redactor(str(k)): _plain(v, redactor) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v, redactor) for v in value]
    return redactor(repr(value))


class RedactingFilter(logging.Filter):
    """Rewrites a record before any formatter sees it: message and arguments merged and
    redacted, the exception's text formatted and redacted, extra fields redacted."""

    def __init__(self, redactor: Redactor = REDACT) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # arguments that do not fit the format
            message = f"{record.msg!s} {record.args!r}"
        record.msg, record.args = self.redactor(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor(record.exc_text)
            # The exception object still holds the secret: no formatter may read it again.
            record.exc_info = None
        if record.stack_info:
            record.stack_info = self.redactor(record.stack_info)
        for key, value in extra_fields(record).items():
            setattr(record, key, _plain(value, self.redactor))
        return True


class TextFormatter(logging.Formatter):
    def __init__(self, redactor: Redactor = REDACT) -> None:
        super().__init__(TEXT_FORMAT)
        self.redactor = redactor

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return _iso_time(record)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extra = extra_fields(record)
        if extra:
            # After the message's first line, so that a traceback still starts a line.
            first, newline, rest = text.partition("\n")
            pairs = " ".join(
                f"{key}={json.dumps(_plain(value, self.redactor), ensure_ascii=False)}"
                for key, value in extra.items()
            )
            text = f"{first} {pairs}{newline}{rest}"
        return self.redactor(text)


class JsonFormatter(logging.Formatter):
    """One JSON object a line; every string in it redacted."""

    def __init__(self, redactor: Redactor = REDACT) -> None:
        super().__init__()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": _iso_time(record),
            "level": record.levelname,
            "logger": record.name,
            "message": self.redactor(record.getMessage()),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = self.redactor(record.exc_text)
        if record.stack_info:
            line["stack"] = self.redactor(record.stack_info)
        for key, value in extra_fields(record).items():
            if key not in line:
                line[key] = _plain(value, self.redactor)
        return json.dumps(line, ensure_ascii=False, default=str)


def _iso_time(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


# --- configure ---------------------------------------------------------------------------

_HANDLER_MARK = "_whoknows_handler"


def configure(
    source: Settings | Mapping[str, str] | None = None, *, stream: IO[str] | None = None
) -> logging.Handler:
    """Log to stderr (or `stream`) in the format and at the level the environment says.

    `source`: the process's Settings (the environment is read too) or an
    environment mapping; by default os.environ. Calling it again replaces the
    handler it installed before.
    """
    settings = source if isinstance(source, Settings) else None
    env = source if isinstance(source, Mapping) else os.environ
    form = (env.get("WHOKNOWS_LOG_FORMAT") or "text").strip().lower()
    if form not in FORMATS:
        raise ValueError(f"WHOKNOWS_LOG_FORMAT: {form!r} is not one of {', '.join(FORMATS)}")
    level_name = (env.get("WHOKNOWS_LOG_LEVEL") or "INFO").strip().upper()
    level = logging.getLevelName(level_name)
    if not isinstance(level, int):
        raise ValueError(f"WHOKNOWS_LOG_LEVEL: {level_name!r} is not a logging level")
    REDACT.add(*secrets_from(env, settings))
    if settings is not None:
        _add_stored_secret(settings)

    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if form == "json" else TextFormatter())
    handler.addFilter(RedactingFilter())
    setattr(handler, _HANDLER_MARK, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def _add_stored_secret(settings: Settings) -> None:
    """The dashboard's key, when it was made earlier and kept in WHOKNOWS_HOME."""
    # Not made yet: whoever makes it adds it (add_secret).
    with contextlib.suppress(OSError):
        add_secret((settings.home / SECRET_FILE).read_bytes().strip())
