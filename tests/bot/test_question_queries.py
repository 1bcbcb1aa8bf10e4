"""The SELECTs every question runs read only the rows they need."""

from __future__ import annotations

from typing import Any

import pytest

import bot.matching as matching
from bot.router import _LIVE_PERSON
from bot.services import Services
from bot.services.people import _HANDLES
from tests.conftest import NOW
from tests.helpers import query_plan


@pytest.mark.parametrize(
    ("query", "params", "access"),
    [
        (matching._SHORTLIST, {"ids": [1, 2], "since": NOW}, "person USING INTEGER PRIMARY KEY"),
        (
            matching._VERIFIERS,
            {"ids": [1, 2]},
            "skill USING INDEX sqlite_autoindex_skill_1 (person_id=?)",
        ),
        (matching._ENTRIES, {"ids": [1, 2]}, "knowledge_entry USING INTEGER PRIMARY KEY"),
        # Not (platform=?), which reads every identity the platform has.
        (
            _HANDLES,
            {"platform": "slack", "ids": [1, 2]},
            "identity USING INDEX identity_person_idx (person_id=? AND platform=?)",
        ),
        (_LIVE_PERSON, {"person": 1}, "person USING INTEGER PRIMARY KEY"),
    ],
    ids=["shortlist", "verifiers", "entries", "handles", "asker"],
)
def test_every_question_query_goes_straight_to_its_rows(
    services: Services, query: Any, params: dict[str, object], access: str
) -> None:
    """Each question runs these: none may read a table or an index range that grows
    with the org, whatever SQLite guesses without statistics."""
    if services.db.backend != "sqlite":
        pytest.skip("the query plan checked is SQLite's")
    steps = query_plan(services, query, params)
    assert f"SEARCH {access}" in steps[0], steps
    assert not any(step.startswith("SCAN") for step in steps), steps
