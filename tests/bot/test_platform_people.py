"""People arriving from a platform, and platform events acted on once."""

from __future__ import annotations

from bot.runtime import events
from bot.services import Services, accounts, people


def test_a_platform_account_becomes_a_person_once_and_stays_in_step(services: Services) -> None:
    now = services.clock()
    with services.db.unit_of_work() as session:
        first = accounts.provision(
            session, "slack", "U1", name="Maria  Santos", timezone="Europe/Lisbon", key_hint="maria"
        )
        clash = accounts.provision(session, "slack", "U2", name="Maria Other", key_hint="maria")
        session.flush()
        assert (first.key, first.display_name, first.timezone) == (
            "maria",
            "Maria Santos",
            "Europe/Lisbon",
        )
        assert clash.key == "maria2"
    with services.db.unit_of_work() as session:
        again = accounts.provision(
            session, "slack", "U1", name="Maria S.", timezone="Not/AZone", deleted=True, now=now
        )
        assert again.id == first.id
        assert again.display_name == "Maria S." and again.timezone == "Europe/Lisbon"
        assert again.deleted_at == now
    with services.db.unit_of_work() as session:
        assert people.by_identity(session, "slack", "U1") is None  # no longer suggested
        back = accounts.provision(session, "slack", "U1", name="Maria S.")
        assert back.deleted_at is None


def test_an_event_acts_only_on_its_first_delivery(services: Services) -> None:
    now = services.clock()
    with services.db.unit_of_work() as session:
        assert events.first_delivery(session, "slack", "T1:Ev1", now)
        assert not events.first_delivery(session, "slack", "T1:Ev1", now)
        assert events.first_delivery(session, "teams", "T1:Ev1", now)
    with services.db.unit_of_work() as session:
        assert not events.first_delivery(session, "slack", "T1:Ev1", now)


def test_forget_removes_a_person_and_anonymises_what_stays(demo: Services, router) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from bot.db.models import AuditEntry, Identity, KnowledgeEntry, Person, QueryLog, Skill
    from tests.helpers import cards, say

    say(demo, router, "tomasz", "whoknows", "refund for a prepaid top-up")
    say(demo, router, "tomasz", "status", "busy 30m")
    say(demo, router, "tomasz", "expertise", "tag @maria refunds:2")  # refused, audited
    with demo.db.unit_of_work() as session:
        tomasz = people.by_key(session, "tomasz")
        tomasz_id = tomasz.id
        written = [e.id for e in session.scalars(select(KnowledgeEntry)) if tomasz in e.authors]
        assert written
        audited = session.scalars(select(AuditEntry).where(AuditEntry.actor_id == tomasz_id)).all()
        assert [row.actor_label for row in audited] == ["tomasz"]
        anonymous = people.forget(session, tomasz, demo.clock(), "cli:ops")
    with demo.db.unit_of_work() as session:
        person = session.get(Person, tomasz_id)
        assert (person.key, person.display_name, person.deleted_at is not None) == (
            anonymous,
            "Former colleague",
            True,
        )
        assert people.by_key(session, "tomasz") is None
        assert not session.scalars(select(Identity).where(Identity.person_id == tomasz_id)).all()
        assert not session.scalars(select(Skill).where(Skill.person_id == tomasz_id)).all()
        assert person.presence is None
        assert not session.scalars(select(QueryLog).where(QueryLog.person_id == tomasz_id)).all()
        # The knowledge stays, credited to the anonymous former colleague.
        for entry_id in written:
            assert person in session.get(KnowledgeEntry, entry_id).authors
        labels = {row.actor_label for row in session.scalars(select(AuditEntry))}
        assert "tomasz" not in labels
        last = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc())).first()
        assert (last.action, last.actor_label, last.target) == (
            "forget_person",
            "cli:ops",
            f"person:{anonymous}",
        )
    # Nobody is suggested who is not there any more.
    answer = say(demo, router, "alex", "whoknows", "refund for a prepaid top-up")
    shown = cards(answer)
    assert shown and tomasz_id not in {card.person_id for card in shown}


def test_old_questions_and_spent_event_keys_are_pruned(services: Services) -> None:
    from datetime import timedelta

    from sqlalchemy import func, select

    from bot.db.models import PlatformEvent, QueryLog
    from bot.runtime import retention

    now = services.clock()
    days = services.settings.query_log_days
    with services.db.unit_of_work() as session:
        for age in (timedelta(days=days + 1), timedelta(days=days - 1)):
            session.add(QueryLog(platform="test", text="q", confident=False, created_at=now - age))
        events.first_delivery(session, "slack", "old", now - timedelta(days=8))
        events.first_delivery(session, "slack", "recent", now - timedelta(minutes=5))
    assert retention.prune(services) == retention.Pruned(questions=1, event_keys=1)
    with services.db.unit_of_work() as session:
        assert session.scalar(select(func.count()).select_from(QueryLog)) == 1
        assert session.scalars(select(PlatformEvent.key)).all() == ["recent"]
        # A retry of the recent event is still recognised.
        assert not events.first_delivery(session, "slack", "recent", now)
