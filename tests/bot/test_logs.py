"""Logs: text or JSON lines, and no secret in them wherever it hides in a record."""

from __future__ import annotations

import io
import json
import logging
import traceback
from collections.abc import Iterator
from datetime import datetime

import pytest

from bot.config import Settings
from bot.ops import logs

SLACK_TOKEN = "xoxb-2718281828-3141592653-Zk4uQ8wLrT1pVn0sYd7eHc3m"
SIGNING_SECRET = "8f14e45fceea167a5a36dedd4bea2543"
APP_PASSWORD = "Zq~8Q~kT.3vYw_nB2rXm-Lp9sDf"
DASHBOARD_SECRET = "d4shb0ard-k3y-91c2b7e0"
METRICS_TOKEN = "scrape-5b8e2f0c7a1d"
DB_PASSWORD = "s3cr@t-db-pw"
ENV = {
    "SLACK_BOT_TOKEN": SLACK_TOKEN,
    "SLACK_SIGNING_SECRET": SIGNING_SECRET,
    "MICROSOFT_APP_PASSWORD": APP_PASSWORD,
    "WHOKNOWS_SECRET": DASHBOARD_SECRET,
    "WHOKNOWS_METRICS_TOKEN": METRICS_TOKEN,
    "WHOKNOWS_DATABASE_URL": "postgresql://whoknows:s3cr%40t-db-pw@db.internal:5432/whoknows",
}
# Not in any setting: found by their shape.
APP_TOKEN = "xapp-1-A0123BCDE-4567890123-a1b2c3d4e5f6"
CLIENT_SECRET = "Yh7~Kq2.pW9vX"
BEARER = "ya29.a0AfB_byC-Zt8kLmNoP"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJib3QifQ.c2lnbmF0dXJlLXRoYXQtaXMtbG9uZw"
URL_PASSWORD = "hunter2-on-the-wire"
SECRETS = (
    SLACK_TOKEN,
    SIGNING_SECRET,
    APP_PASSWORD,
    DASHBOARD_SECRET,
    METRICS_TOKEN,
    DB_PASSWORD,
    "s3cr%40t-db-pw",
    APP_TOKEN,
    CLIENT_SECRET,
    BEARER,
    JWT,
    URL_PASSWORD,
)


@pytest.fixture
def restore_root() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def connect(url: str, password: str) -> None:
    # A message built from the frame's locals, as some libraries do.
    raise ConnectionError(f"could not connect with {locals()!r}")


def _log_everything(log: logging.Logger) -> None:
    log.warning("Slack said invalid_auth for %s", SLACK_TOKEN)
    log.warning(f"signing with {SIGNING_SECRET} failed")
    log.info("credentials %r and %s", {"password": APP_PASSWORD}, ("Bearer", METRICS_TOKEN))
    log.info("Authorization: Bearer %s", BEARER)
    log.info("socket mode with %s; token endpoint client_secret=%s&x=1", APP_TOKEN, CLIENT_SECRET)
    log.info("graph said %s", JWT)
    log.info("proxy https://bot:%s@proxy.example/ refused", URL_PASSWORD)
    try:
        raise ValueError(f"the app password {APP_PASSWORD!r} was refused")
    except ValueError:
        log.exception("token request failed")
    try:
        try:
            connect("postgresql://whoknows@db.internal/whoknows", DB_PASSWORD)
        except ConnectionError as error:
            raise RuntimeError("database unavailable") from error
    except RuntimeError:
        log.error("giving up", exc_info=True)
    try:
        connect("postgresql://whoknows@db.internal/whoknows", DB_PASSWORD)
    except ConnectionError as error:
        # A traceback with each frame's locals, as a debugging aid might log it.
        frames = traceback.TracebackException.from_exception(error, capture_locals=True)
        log.error("with locals: %s", "".join(frames.format()))
    try:
        raise KeyError("xoxp-1234567890-0987654321-abcdefabcdef")  # a literal in the source
    except KeyError:
        log.exception("lookup failed")
    log.info(
        "outgoing call",
        extra={
            "headers": {"Authorization": f"Bearer {BEARER}", "X-Request": "42"},
            "dashboard": DASHBOARD_SECRET,
            "attempt": 2,
        },
    )


@pytest.mark.parametrize("form", ["text", "json"])
def test_no_secret_reaches_the_log_in_either_format(restore_root: None, form: str) -> None:
    out = io.StringIO()
    logs.configure({**ENV, "WHOKNOWS_LOG_FORMAT": form, "WHOKNOWS_LOG_LEVEL": "info"}, stream=out)
    _log_everything(logging.getLogger("whoknows.test"))
    text = out.getvalue()
    for secret in SECRETS:
        assert secret not in text, secret
    assert "xoxp-" not in text and "invalid_auth" in text
    assert text.count(logs.REDACTED) >= len(SECRETS)
    # What is not secret stays readable.
    assert "db.internal" in text and "proxy.example" in text and "X-Request" in text
    assert "Traceback" in text and "database unavailable" in text
    assert "password = '[REDACTED]'" in text  # the captured locals
    if form == "text":
        assert "WARNING whoknows.test: Slack said invalid_auth for [REDACTED]" in text
        return
    lines = [json.loads(line) for line in text.splitlines()]
    assert len(lines) == 12
    first = lines[0]
    assert first["level"] == "WARNING" and first["logger"] == "whoknows.test"
    assert first["message"] == "Slack said invalid_auth for [REDACTED]"
    assert first["time"].endswith("Z")
    assert datetime.fromisoformat(first["time"]).utcoffset().total_seconds() == 0
    failed = next(line for line in lines if line["message"] == "giving up")
    assert "ConnectionError" in failed["exception"] and "RuntimeError" in failed["exception"]
    assert "exception" not in first
    call = lines[-1]
    assert call["headers"] == {"Authorization": "Bearer [REDACTED]", "X-Request": "42"}
    assert call["dashboard"] == logs.REDACTED and call["attempt"] == 2


def test_level_and_format_come_from_the_environment(restore_root: None) -> None:
    out = io.StringIO()
    logs.configure({"WHOKNOWS_LOG_LEVEL": "WARNING"}, stream=out)
    log = logging.getLogger("whoknows.test")
    log.info("quiet")
    log.warning("heard")
    assert "quiet" not in out.getvalue() and "heard" in out.getvalue()
    # Configured again: the earlier handler goes, not doubled lines.
    again = io.StringIO()
    logs.configure({}, stream=again)
    log.info("once")
    assert again.getvalue().count("once") == 1 and "once" not in out.getvalue()
    with pytest.raises(ValueError, match="WHOKNOWS_LOG_FORMAT"):
        logs.configure({"WHOKNOWS_LOG_FORMAT": "xml"})
    with pytest.raises(ValueError, match="WHOKNOWS_LOG_LEVEL"):
        logs.configure({"WHOKNOWS_LOG_LEVEL": "chatty"})


def test_settings_secrets_and_secrets_learnt_later(restore_root: None, tmp_path) -> None:
    (tmp_path / "dashboard.secret").write_text("kept-dashboard-key-0a1b2c3d\n")
    settings = Settings(
        database_url="postgresql+psycopg://who:from-the-cli-flag@db/whoknows", home=tmp_path
    )
    out = io.StringIO()
    logs.configure(settings, stream=out)
    logs.add_secret("runtime-workspace-key-77")
    log = logging.getLogger("whoknows.test")
    log.warning("%s %s %s", "from-the-cli-flag", "kept-dashboard-key-0a1b2c3d", "x")
    log.warning("runtime-workspace-key-77 in a message")
    text = out.getvalue()
    for secret in ("from-the-cli-flag", "kept-dashboard-key-0a1b2c3d", "runtime-workspace-key-77"):
        assert secret not in text


def test_the_redactor_leaves_ordinary_words_and_is_idempotent() -> None:
    redact = logs.Redactor(["abc", "longer-secret-value"])  # "abc" is too short to hunt
    assert redact("abc tokens: 5, max_tokens=3") == "abc tokens: 5, max_tokens=3"
    once = redact("token=zzz999 and longer-secret-value and xoxb-1-2-3 via ssh://a:bee@host")
    assert once == "token=[REDACTED] and [REDACTED] and [REDACTED] via ssh://a:[REDACTED]@host"
    assert redact(once) == once


def test_passing_secrets_are_redacted_and_only_the_latest_are_kept() -> None:
    redactor = logs.Redactor()
    codes = [f"code-{n:04d}-7f3a9c" for n in range(logs.PASSING_SECRETS + 1)]
    redactor.add_passing(*codes)
    assert redactor(f"exchanging {codes[-1]}") == f"exchanging {logs.REDACTED}"
    # The oldest made way: a flood of made-up codes cannot grow the list without end.
    assert redactor(f"exchanging {codes[0]}") == f"exchanging {codes[0]}"
    assert redactor("GET /slack/oauth_redirect?state=s1&code=4711.0815.ab12cd HTTP/1.1") == (
        f"GET /slack/oauth_redirect?state=s1&code={logs.REDACTED} HTTP/1.1"
    )
