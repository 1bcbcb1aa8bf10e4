"""Fixtures: Microsoft's validators in Node, and the replies of a newcomer's session."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.config import Settings
from bot.db import open_database
from bot.router import Router
from bot.services import Services
from tests.conformance.corpus import Sample, newcomers_session
from tests.conformance.microsoft import microsoft_fixture  # noqa: F401  (the `microsoft` fixture)
from tests.conftest import NOW
from tests.helpers import Clock


@pytest.fixture(scope="session")
def samples(
    sqlite_templates: dict[str, Path], tmp_path_factory: pytest.TempPathFactory, router: Router
) -> Iterator[list[Sample]]:
    """Every reply of the session, once for all the conformance tests.

    On SQLite alone: the renderers read no database, and the replies are the same on both."""
    folder = tmp_path_factory.mktemp("corpus")
    path = folder / "whoknows.db"
    shutil.copy(sqlite_templates["demo"], path)
    url = f"sqlite:///{path}"
    database = open_database(url)
    try:
        services = Services(database, Settings(database_url=url, home=folder), clock=Clock(NOW))
        yield newcomers_session(services, router)
    finally:
        database.dispose()
