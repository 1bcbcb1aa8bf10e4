"""People arriving from a platform, and platform events acted on once."""

from __future__ import annotations

from bot import events
from bot.services import Services, people


def test_a_platform_account_becomes_a_person_once_and_stays_in_step(services: Services) -> None:
    now = services.clock()
    with services.db.unit_of_work() as session:
        first = people.provision(
            session, "slack", "U1", name="Maria  Santos", timezone="Europe/Lisbon", key_hint="maria"
        )
        clash = people.provision(session, "slack", "U2", name="Maria Other", key_hint="maria")
        session.flush()
        assert (first.key, first.display_name, first.timezone) == (
            "maria",
            "Maria Santos",
            "Europe/Lisbon",
        )
        assert clash.key == "maria2"
    with services.db.unit_of_work() as session:
        again = people.provision(
            session, "slack", "U1", name="Maria S.", timezone="Not/AZone", deleted=True, now=now
        )
        assert again.id == first.id
        assert again.display_name == "Maria S." and again.timezone == "Europe/Lisbon"
        assert again.deleted_at == now
    with services.db.unit_of_work() as session:
        assert people.by_identity(session, "slack", "U1") is None  # no longer suggested
        back = people.provision(session, "slack", "U1", name="Maria S.")
        assert back.deleted_at is None


def test_an_event_acts_only_on_its_first_delivery(services: Services) -> None:
    now = services.clock()
    with services.db.unit_of_work() as session:
        assert events.first_delivery(session, "slack", "T1:Ev1", now)
        assert not events.first_delivery(session, "slack", "T1:Ev1", now)
        assert events.first_delivery(session, "teams", "T1:Ev1", now)
    with services.db.unit_of_work() as session:
        assert not events.first_delivery(session, "slack", "T1:Ev1", now)
