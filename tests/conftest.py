"""Fixtures: a fresh, migrated database per test on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from bot.config import Settings
from bot.data.demo import seed_demo
from bot.db import open_database
from bot.matching.embeddings import load_encoder
from bot.matching.vectors import index_all
from bot.router import Router
from bot.services import Services
from skills import build_router
from tests.helpers import Clock
from tests.pg_server import postgres_url_for_tests

# A Monday, 10:00 in London: the demo org's day shift is at work.
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
TEMPLATES = {"migrated": "whoknows_template", "demo": "whoknows_demo_template"}


def _seed(url: str) -> None:
    """The demo org with its vectors, so tests copy them instead of encoding again."""
    database = open_database(url)
    with database.unit_of_work() as session:
        seed_demo(session, NOW)
    encoder = load_encoder()
    if encoder is not None:
        index_all(database, encoder)
    database.dispose()


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(("WHOKNOWS_", "SLACK_", "MICROSOFT_", "GRAPH_")) and name not in {
            "WHOKNOWS_TEST_POSTGRES_URL",
            "WHOKNOWS_PG_BIN",
        }:
            monkeypatch.delenv(name)
    monkeypatch.setenv("WHOKNOWS_HOME", str(tmp_path))


@pytest.fixture(scope="session")
def postgres_server_url() -> Iterator[str | None]:
    url, server = postgres_url_for_tests()
    if url is None and os.environ.get("CI"):
        pytest.fail("CI must test on PostgreSQL: install Debian's postgresql package")
    try:
        yield url
    finally:
        if server is not None:
            server.stop()


def _admin_engine(url: str):  # type: ignore[no-untyped-def]
    return create_engine(url, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def postgres_templates(postgres_server_url: str | None) -> str | None:
    """Migrated databases (empty and demo) that each test's database is copied from."""
    if postgres_server_url is None:
        return None
    engine = _admin_engine(postgres_server_url)
    for name in TEMPLATES.values():
        with engine.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name}"))
            connection.execute(text(f"CREATE DATABASE {name}"))
        url = make_url(postgres_server_url).set(database=name)
        open_database(url.render_as_string(hide_password=False)).dispose()
    engine.dispose()
    _seed(
        make_url(postgres_server_url)
        .set(database=TEMPLATES["demo"])
        .render_as_string(hide_password=False)
    )
    return postgres_server_url


@pytest.fixture(scope="session")
def sqlite_templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("templates")
    files = {kind: folder / f"{kind}.db" for kind in TEMPLATES}
    open_database(f"sqlite:///{files['migrated']}").dispose()
    shutil.copy(files["migrated"], files["demo"])
    _seed(f"sqlite:///{files['demo']}")
    return files


@contextmanager
def _scratch_database(
    kind: str, tmp_path: Path, server: str | None, template: str, template_file: Path | None
) -> Iterator[str]:
    if kind == "sqlite":
        path = tmp_path / "whoknows.db"
        if template_file is not None:
            shutil.copy(template_file, path)
        yield f"sqlite:///{path}"
        return
    if server is None:
        pytest.skip("no PostgreSQL server binaries here (CI installs them)")
    name = f"t_{uuid.uuid4().hex[:12]}"
    engine = _admin_engine(server)
    with engine.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name} TEMPLATE {template} STRATEGY FILE_COPY"))
    try:
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_server_url: str | None
) -> Iterator[str]:
    with _scratch_database(request.param, tmp_path, postgres_server_url, "template0", None) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    postgres_templates: str | None,
    sqlite_templates: dict[str, Path],
) -> Iterator[str]:
    """A migrated, empty database."""
    with _scratch_database(
        request.param,
        tmp_path,
        postgres_templates,
        TEMPLATES["migrated"],
        sqlite_templates["migrated"],
    ) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def demo_database_url(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    postgres_templates: str | None,
    sqlite_templates: dict[str, Path],
) -> Iterator[str]:
    """A database holding the demo org, seeded at NOW."""
    with _scratch_database(
        request.param, tmp_path, postgres_templates, TEMPLATES["demo"], sqlite_templates["demo"]
    ) as url:
        yield url


def _services(url: str, tmp_path: Path) -> Iterator[Services]:
    database = open_database(url)
    yield Services(database, Settings(database_url=url, home=tmp_path), clock=Clock(NOW))
    database.dispose()


@pytest.fixture
def services(database_url: str, tmp_path: Path) -> Iterator[Services]:
    yield from _services(database_url, tmp_path)


@pytest.fixture
def demo(demo_database_url: str, tmp_path: Path) -> Iterator[Services]:
    yield from _services(demo_database_url, tmp_path)


@pytest.fixture(scope="session")
def router() -> Router:
    return build_router()
