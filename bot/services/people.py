"""People, teams, platform identities and who may act on whom."""

from __future__ import annotations

import getpass
import re
import unicodedata
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from bot import messages
from bot.db.models import (
    AuditEntry,
    Identity,
    LabelledExample,
    Outbox,
    Person,
    Presence,
    QueryLog,
    Role,
    Skill,
    Team,
)
from bot.services.audit import record
from bot.types import Line, Mention, PersonCard, Reply

HANDLE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
# No id holds these: controls (NUL, tab, escape …), format characters (zero-width,
# bidirectional overrides), lone surrogates, private use, line and paragraph separators.
_NOT_IN_IDS = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp"})


def clean_id(text: str, what: str = "id") -> str:
    """An id as written (a person's, an account's, an author's), trimmed: what every check
    and every write sees. One with a control or invisible character is refused, never
    cleaned, so the id a check looks up is the id that is written (ValueError, naming the
    character and where it is)."""
    value = text.strip()
    for position, char in enumerate(value, start=1):
        if unicodedata.category(char) in _NOT_IN_IDS:
            raise ValueError(
                messages.BAD_ID_CHARACTER.format(
                    what=what, char=f"U+{ord(char):04X}", position=position
                )
            )
    return value


def person_key(text: str) -> str:
    """The key a person's id is looked up by: `clean_id`, lower-cased."""
    return clean_id(text).lower()


_HANDLES = select(Identity.__table__.c.person_id, Identity.__table__.c.external_id).where(
    Identity.__table__.c.platform == bindparam("platform"),
    Identity.__table__.c.person_id.in_(bindparam("ids", expanding=True)),
)


def handles(session: Session, platform: str, person_ids: Iterable[int]) -> dict[int, str]:
    """Each person's id on a platform (a Slack user id, an AAD object id), where known."""
    ids = list(set(person_ids))
    if not ids:
        return {}
    return dict(session.execute(_HANDLES, {"platform": platform, "ids": ids}).all())  # type: ignore[arg-type]


def mentioned_in(reply: Reply) -> set[int]:
    """The people a reply mentions in its lines."""
    return {
        part.person_id
        for e in reply.elements
        if isinstance(e, Line)
        for part in e.parts
        if isinstance(part, Mention)
    }


def named_in(reply: Reply) -> set[int]:
    """The people a reply shows on cards or mentions in its lines."""
    return {e.person_id for e in reply.elements if isinstance(e, PersonCard)} | mentioned_in(reply)


def by_key(session: Session, key: str) -> Person | None:
    try:
        wanted = person_key(key)
    except ValueError:
        return None  # no key holds a control character
    return session.scalar(select(Person).where(Person.key == wanted, Person.deleted_at.is_(None)))


def by_identity(session: Session, platform: str, external_id: str) -> Person | None:
    return session.scalar(
        select(Person)
        .join(Identity)
        .where(
            Identity.platform == platform,
            Identity.external_id == external_id,
            Person.deleted_at.is_(None),
        )
    )


def link_identity(session: Session, person: Person, platform: str, external_id: str) -> None:
    existing = session.scalar(
        select(Identity).where(Identity.platform == platform, Identity.external_id == external_id)
    )
    if existing is None:
        session.add(Identity(platform=platform, external_id=external_id, person=person))
    else:
        existing.person = person


def team_named(session: Session, name: str | None) -> Team | None:
    if not name or not name.strip():
        return None
    name = name.strip()
    team = session.scalar(select(Team).where(func.lower(Team.name) == name.lower()))
    if team is None:
        team = Team(name=name)
        session.add(team)
        session.flush()
    return team


def count_people(session: Session) -> int:
    return session.scalar(select(func.count(Person.id))) or 0


def ensure_console_person(session: Session) -> Person:
    """The person at this terminal when nobody is in the database: its first admin."""
    handle = re.sub(r"[^a-z0-9._-]", "", getpass.getuser().lower()) or "me"
    person = by_key(session, handle)
    if person is None:
        person = Person(key=handle, display_name=handle, role=Role.ADMIN)
        session.add(person)
        session.flush()
        link_identity(session, person, "console", handle)
    return person


def can_manage(actor: Person, target: Person) -> bool:
    """Admins manage everyone; leads manage the people of their own team."""
    if actor.role == Role.ADMIN:
        return True
    return actor.role == Role.LEAD and actor.team_id is not None and actor.team_id == target.team_id


def free_key(session: Session, hint: str) -> str:
    """A handle from a name ("Maria Santos" → maria.santos), numbered if taken."""
    base = re.sub(r"[^a-z0-9._-]+", ".", hint.strip().lower()).strip("._-")[:60] or "person"
    if not base[0].isalnum():
        base = "p" + base
    key, n = base, 1
    while session.scalar(select(Person.id).where(Person.key == key)) is not None:
        n += 1
        key = f"{base}{n}"
    return key


FORGOTTEN_NAME = "Former colleague"


def forget(session: Session, person: Person, now: datetime, actor_label: str) -> str:
    """Remove a person's profile, identities and presence; anonymise what stays.

    Answers they wrote and huddles they took part in stay (the team's
    knowledge), credited to an anonymous former colleague; the questions they
    asked lose their name; the audit log keeps the fact, not the person.
    Returns the anonymous handle.
    """
    old_key = person.key
    anonymous = f"forgotten-{person.id}"
    session.execute(delete(Identity).where(Identity.person_id == person.id))
    session.execute(delete(Presence).where(Presence.person_id == person.id))
    session.execute(delete(Skill).where(Skill.person_id == person.id))
    session.execute(delete(Outbox).where(Outbox.person_id == person.id))
    session.execute(update(QueryLog).where(QueryLog.person_id == person.id).values(person_id=None))
    session.execute(
        update(LabelledExample).where(LabelledExample.asker_id == person.id).values(asker_id=None)
    )
    session.execute(
        update(AuditEntry).where(AuditEntry.actor_id == person.id).values(actor_label=anonymous)
    )
    session.expire(person)
    person.key, person.display_name, person.timezone = anonymous, FORGOTTEN_NAME, "UTC"
    person.role, person.team_id = Role.AGENT, None
    person.deleted_at = person.deleted_at or now
    record(
        session,
        None,
        "forget_person",
        f"person:{anonymous}",
        actor_label=actor_label,
        forgotten=old_key != anonymous,
    )
    return anonymous
