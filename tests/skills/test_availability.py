"""Status, its expiry, and working hours in each person's own time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.db.models import Person, Presence, Status
from bot.router import Router
from bot.services import Services, people, presence
from tests.conftest import NOW
from tests.helpers import notices, say


def _view(services: Services, key: str, at: datetime) -> str:
    with services.db.unit_of_work() as session:
        return presence.current(people.by_key(session, key), at).status


def test_busy_for_thirty_minutes_then_back_to_the_shift(demo: Services, router: Router) -> None:
    reply = say(demo, router, "maria", "busy", "30m")
    assert notices(reply)[0].text == "You are now busy until 10:30."  # Lisbon = UTC in November
    assert _view(demo, "maria", NOW + timedelta(minutes=29)) == "busy"
    assert _view(demo, "maria", NOW + timedelta(minutes=31)) == "available"


def test_status_words_and_errors(demo: Services, router: Router) -> None:
    assert "on a call" in notices(say(demo, router, "maria", "status", "on a call 1h"))[0].text
    assert _view(demo, "maria", NOW) == "on_call"
    assert "away" in notices(say(demo, router, "maria", "status", "away"))[0].text
    assert "not a duration" in notices(say(demo, router, "maria", "busy", "forever"))[0].text
    assert "Usage" in notices(say(demo, router, "maria", "status", "sleepy"))[0].text
    shown = notices(say(demo, router, "maria", "status", ""))[0].text
    assert shown.startswith("You are away") and "08:00–16:00 Europe/Lisbon" in shown


@pytest.mark.parametrize(
    ("text", "minutes"),
    [("30m", 30), ("2h", 120), ("1h30m", 90), ("45", 45), ("for 10 min", 10), ("1d", 1440)],
)
def test_parse_duration(text: str, minutes: int) -> None:
    assert presence.parse_duration(text) == timedelta(minutes=minutes)


@pytest.mark.parametrize("text", ["", "0m", "soon", "15d", "-5m", "1h 30x"])
def test_parse_duration_refuses_nonsense(text: str) -> None:
    assert presence.parse_duration(text) is None


def _person(tz: str, start: str, end: str, days: str = "12345") -> Person:
    h1, m1 = map(int, start.split(":"))
    h2, m2 = map(int, end.split(":"))
    return Person(
        key="p",
        display_name="P",
        timezone=tz,
        work_start_min=h1 * 60 + m1,
        work_end_min=h2 * 60 + m2,
        work_days=days,
    )


def test_working_hours_are_read_in_the_persons_own_time_zone() -> None:
    manila = _person("Asia/Manila", "08:00", "16:00")  # UTC+8
    assert presence.on_shift(manila, datetime(2026, 11, 23, 1, 0, tzinfo=UTC))  # 09:00 Manila
    assert not presence.on_shift(manila, datetime(2026, 11, 23, 10, 0, tzinfo=UTC))  # 18:00
    new_york = _person("America/New_York", "09:00", "17:00")
    assert not presence.on_shift(new_york, NOW)  # 05:00 in New York
    assert presence.current(new_york, NOW).status == "off_shift"


def test_a_night_shift_belongs_to_the_day_it_started() -> None:
    night = _person("Europe/London", "22:00", "06:00", days="12345")
    friday_late = datetime(2026, 11, 27, 23, 0, tzinfo=UTC)
    saturday_early = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
    sunday_early = datetime(2026, 11, 29, 3, 0, tzinfo=UTC)
    assert presence.on_shift(night, friday_late)
    assert presence.on_shift(night, saturday_early)  # Friday's shift
    assert not presence.on_shift(night, sunday_early)  # Saturday is not worked


def test_an_open_ended_available_does_not_outlast_the_shift() -> None:
    person = _person("Europe/London", "08:00", "16:00")
    person.presence = Presence(status=Status.AVAILABLE)
    assert presence.current(person, NOW).status == "available"
    assert presence.current(person, NOW.replace(hour=20)).status == "off_shift"
    person.presence = Presence(status=Status.BUSY)
    assert presence.current(person, NOW.replace(hour=20)).status == "busy"
