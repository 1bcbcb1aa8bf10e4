"""Evidence on top of the demo org, made the way people make it: huddle threads opened,
answered and resolved through the huddle service, answers written, helpful votes."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update

from bot.db.models import HelpfulVote, Skill, Tag
from bot.services import Services, expertise, huddles, knowledge, people
from bot.types import Where

TOPICS = (
    "customer says the bank took back a payment we already refunded",
    "chargeback letter arrived but the bill was correct",
    "chargeback on a top-up paid by card from abroad",
    "second chargeback on the same account this month",
    "chargeback deadline passed while the case was open",
)


def resolve_huddles(
    services: Services,
    *,
    helper: str = "omar",
    asker: str = "alex",
    tag: str = "chargebacks",
    count: int = 3,
    first: int = 0,
) -> list[int]:
    """`count` huddle threads `asker` opens with `helper`, who replies, each resolved with a
    conclusion tagged `tag`, an hour apart on the services' clock; their ids."""
    ids = []
    for n in range(first, first + count):
        with services.db.unit_of_work() as session:
            who, expert = people.by_key(session, asker), people.by_key(session, helper)
            assert who is not None and expert is not None
            opened = huddles.open_huddle(
                services,
                session,
                who,
                TOPICS[n % len(TOPICS)],
                [expert],
                platform="console",
                where=Where(channel="general"),
            )
            huddles.record_reply(services, session, opened.huddle, expert, services.clock())
            huddles.resolve(
                services,
                session,
                opened.huddle,
                who,
                f"Conclusion {n} on {tag}",
                f"What {helper} said, the {n}th time, about {tag}.",
                [expertise.require_tag(session, tag)],
            )
            ids.append(opened.huddle.id)
        services.clock.advance(3600)  # type: ignore[attr-defined]
    return ids


def write_answer(
    services: Services, author: str, tag: str, title: str, *, at: datetime | None = None
) -> int:
    with services.db.unit_of_work() as session:
        entry, _ = knowledge.add_entry(
            session,
            title,
            f"The answer to {title.lower()}.",
            [expertise.require_tag(session, tag)],
            [people.by_key(session, author)],
        )
        session.flush()
        if at is not None:
            entry.created_at = entry.updated_at = at
        return entry.id


def vote(services: Services, voter: str, entry_id: int) -> None:
    """`voter` finds the entry helpful, as of the services' clock."""
    with services.db.unit_of_work() as session:
        person = people.by_key(session, voter)
        knowledge.mark_helpful(session, knowledge.get(session, entry_id), person)
        # Votes are stamped by the database's clock; the tests stand at their own.
        session.execute(
            update(HelpfulVote)
            .where(HelpfulVote.entry_id == entry_id, HelpfulVote.person_id == person.id)
            .values(created_at=services.clock())
        )


def skill_of(services: Services, key: str, tag: str) -> Skill | None:
    with services.db.unit_of_work() as session:
        person = people.by_key(session, key)
        skill = session.scalar(
            select(Skill).join(Tag).where(Skill.person_id == person.id, Tag.name == tag)
        )
        if skill is not None:
            session.expunge(skill)
        return skill


def age_skill(
    services: Services, key: str, tag: str, days: float, *, verified: bool | None = None
) -> None:
    """The skill as if declared (or verified, with `verified`) `days` before the clock."""
    then = services.clock() - timedelta(days=days)
    with services.db.unit_of_work() as session:
        person = people.by_key(session, key)
        skill = session.scalar(
            select(Skill).join(Tag).where(Skill.person_id == person.id, Tag.name == tag)
        )
        assert skill is not None, f"{key} holds no {tag}"
        skill.updated_at = then
        if verified:
            skill.verified_at = then
