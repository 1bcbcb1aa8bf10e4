"""What the demo org did in the weeks before today: huddle threads people helped resolve,
helpful votes, and skills that have gone quiet.

Enough for a first run to show expertise that grows (bot/services/earned.py): skills
the evidence suggests to each team's lead, a self-declared skill that counts less
for having no answers in months, and verified skills old enough to re-verify.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db.models import (
    HelpfulVote,
    Huddle,
    HuddleParticipant,
    HuddleState,
    KnowledgeEntry,
    Person,
    Skill,
    Tag,
)
from bot.services import knowledge

# Resolved huddle threads: who asked, who helped, days ago, the topic and the conclusion
# saved as a knowledge entry (its tags and text).
HUDDLES: list[dict[str, Any]] = [
    # Omar keeps settling chargebacks, a skill he is not tagged with.
    {
        "asker": "alex",
        "helper": "omar",
        "days": 16,
        "topic": "customer says the bank took back a payment we already refunded",
        "tags": ["chargebacks"],
        "title": "Chargeback on a payment we had already refunded",
        "body": "Check the payments history for both the refund and the chargeback. If both "
        "went through, the customer was paid twice: reply to the chargeback with the refund "
        "reference as evidence so the bank reverses it, and never claw the refund back by hand.",
    },
    {
        "asker": "ewa",
        "helper": "omar",
        "days": 9,
        "topic": "chargeback letter arrived but the bill was correct",
        "tags": ["chargebacks"],
        "title": "Defending a chargeback on a correct bill",
        "body": "Upload the bill, the itemised usage and the call notes to the chargeback case "
        "within 7 days. Tell the customer the disputed amount stays on hold meanwhile, so no "
        "late fee is added; the bank decides within 30 days.",
    },
    {
        "asker": "alex",
        "helper": "omar",
        "days": 2,
        "topic": "chargeback on a top-up paid by card from abroad",
        "tags": ["chargebacks", "card payments"],
        "title": "Chargeback on a card top-up made abroad",
        "body": "Foreign card top-ups are often disputed by mistake when the statement shows our "
        "name in another currency. Send the customer the top-up receipt and ask them to withdraw "
        "the dispute with their bank; if they will not, defend it with the receipt.",
    },
    # Maria's card payments answers add up, with a huddle thread on top.
    {
        "asker": "grace.o",
        "helper": "maria",
        "days": 5,
        "topic": "card payment declined three times but the bank says it is fine",
        "tags": ["card payments"],
        "title": "Card declined by us although the bank approves it",
        "body": "Three failed attempts in an hour lock card payments on the account for 24 "
        "hours as a fraud guard. Unlock it in the payments console (Security → Card lock) after "
        "confirming the cardholder, then ask the customer to try once more.",
    },
    # Zoe answers Wi-Fi calling, a topic nobody in the org holds.
    {
        "asker": "marco",
        "helper": "zoe",
        "days": 20,
        "topic": "wifi calling will not switch on for an iPhone customer",
        "tags": ["wifi calling"],
        "title": "Wi-Fi calling will not switch on (iPhone)",
        "body": "Wi-Fi calling needs an emergency address on the account: add it under Services → "
        "Wi-Fi calling. Then the customer turns it on in Settings → Phone → Wi-Fi Calling and "
        "restarts the phone; it can take 15 minutes to show.",
    },
    {
        "asker": "thabo",
        "helper": "zoe",
        "days": 11,
        "topic": "calls drop when the phone moves from wifi to mobile data",
        "tags": ["wifi calling"],
        "title": "Calls drop when moving from Wi-Fi to mobile",
        "body": "Hand-over from Wi-Fi calling to 4G needs VoLTE on the line. Check VoLTE is on in "
        "the network console; if it is, the handset's software is usually out of date.",
    },
    {
        "asker": "nina.p",
        "helper": "zoe",
        "days": 3,
        "topic": "customer wants wifi calling on a Samsung bought abroad",
        "tags": ["wifi calling", "devices"],
        "title": "Wi-Fi calling on a handset bought abroad",
        "body": "Imported handsets often lack our carrier profile, so the Wi-Fi calling switch "
        "is missing. A software update usually brings the profile; if not, the model is not "
        "supported and the customer can use the app instead.",
    },
    # Diego outgrows the upgrades level he gave himself.
    {
        "asker": "rachel",
        "helper": "diego",
        "days": 24,
        "topic": "early upgrade fee for a customer in month 20",
        "tags": ["upgrades"],
        "title": "Early upgrade fee from month 18",
        "body": "From month 18 of a 24-month plan the early upgrade fee is the remaining device "
        "balance only, no airtime. Quote it from the upgrade console, which includes any "
        "loyalty discount already applied.",
    },
    {
        "asker": "sam.k",
        "helper": "diego",
        "days": 15,
        "topic": "upgrade while a porting request is open",
        "tags": ["upgrades", "porting"],
        "title": "Upgrading a line with an open porting request",
        "body": "An upgrade cannot be ordered while a port-in or port-out is pending: the order "
        "fails at credit check. Wait for the port to complete (up to one working day) and place "
        "the upgrade afterwards.",
    },
    {
        "asker": "liam",
        "helper": "diego",
        "days": 8,
        "topic": "customer wants to upgrade and keep the old handset's insurance",
        "tags": ["upgrades"],
        "title": "Insurance after an upgrade",
        "body": "Device insurance covers one handset: on upgrade it moves to the new device only "
        "if the customer confirms it in the upgrade journey. Otherwise it ends with the old "
        "device and a new policy starts from the upgrade date.",
    },
    {
        "asker": "paolo",
        "helper": "diego",
        "days": 1,
        "topic": "upgrade eligibility says no but the plan is 22 months old",
        "tags": ["upgrades"],
        "title": "Upgrade refused before month 24",
        "body": "Eligibility also needs the account up to date: an unpaid bill blocks upgrades "
        "whatever the plan's age. Once the balance is cleared the upgrade console refreshes "
        "within an hour.",
    },
]

# Helpful votes from colleagues: (voter, the title of the entry they found helpful).
VOTES = [
    ("kwame", "Wi-Fi calling will not switch on (iPhone)"),
    ("ben", "Wi-Fi calling will not switch on (iPhone)"),
    ("fatima", "Early upgrade fee from month 18"),
    ("rachel", "Upgrading a line with an open porting request"),
    ("alex", "Top-up failed but the customer's card was still charged"),
]

# Self-declared skills nobody has answered on since they were declared (days ago), and
# verified skills verified long ago with no evidence since (days ago): freshness.
QUIET_DECLARED = [("tomasz", "refunds", 230), ("mei", "chargebacks", 300)]
OLD_VERIFIED = [
    ("hannah", "refunds", 400),
    ("kasia", "international calls", 420),
    ("rachel", "loyalty offers", 390),
]


def seed_history(session: Session, now: datetime) -> None:
    people = {p.key: p for p in session.scalars(select(Person))}
    tags = {t.name: t for t in session.scalars(select(Tag))}
    for spec in HUDDLES:
        asker, helper = people[spec["asker"]], people[spec["helper"]]
        opened = now - timedelta(days=spec["days"], hours=3)
        replied, closed = opened + timedelta(minutes=4), opened + timedelta(minutes=25)
        team = asker.team
        huddle = Huddle(
            topic=spec["topic"],
            requester=asker,
            team=team,
            state=HuddleState.RESOLVED,
            platform="console",
            channel_ref=team.huddle_channel if team else None,
            created_at=opened,
            first_reply_at=replied,
            closed_at=closed,
            closed_by_id=asker.id,
        )
        huddle.participants.append(
            HuddleParticipant(person=helper, invited_at=opened, first_reply_at=replied)
        )
        session.add(huddle)
        session.flush()
        entry, _ = knowledge.add_entry(
            session, spec["title"], spec["body"], [tags[n] for n in spec["tags"]], [helper]
        )
        entry.huddle_id, entry.created_at, entry.updated_at = huddle.id, closed, closed
    session.flush()
    entries = {e.title: e for e in session.scalars(select(KnowledgeEntry))}
    for n, (voter, title) in enumerate(VOTES):
        entry = entries[title]
        session.add(
            HelpfulVote(
                entry_id=entry.id,
                person_id=people[voter].id,
                created_at=now - timedelta(days=1, hours=n),
            )
        )
        entry.helpful_count += 1
    for key, tag, days in QUIET_DECLARED:
        _skill(session, people[key], tags[tag]).updated_at = now - timedelta(days=days)
    for key, tag, days in OLD_VERIFIED:
        skill = _skill(session, people[key], tags[tag])
        skill.verified_at = skill.updated_at = now - timedelta(days=days)
    session.flush()


def _skill(session: Session, person: Person, tag: Tag) -> Skill:
    skill = session.scalar(
        select(Skill).where(Skill.person_id == person.id, Skill.tag_id == tag.id)
    )
    assert skill is not None, f"{person.key} holds no {tag.name}"
    return skill
