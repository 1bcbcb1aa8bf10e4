"""The rosters of the teams the app is in, as accounts linked to the people whoknows knows.

A member's e-mail (`email`, else a `userPrincipalName` that is one) links their
Teams account to the person a lead imported with that e-mail, before anyone is
created (bot/services/accounts.py). Guests (`userRole` "guest", or a `#EXT#`
user principal name: an account from another tenant) and anonymous users are
linked by their AAD object id alone: an e-mail a guest brings says nothing about
who they are here.

Each page of a roster is one unit of work: its members' conversation references
(for mentions and 1:1 chats) and their accounts, linked in one batch.

When rosters are read: on install (that team's), on start and once a day (every
team the app is in). Several workers share a database, and only one of them
reads a team's roster in each period: it claims the period with a key in
`platform_event` (an insert that does nothing on conflict, as for a redelivered
activity), so the claim is atomic on SQLite and PostgreSQL alike and the keys
expire with the other event keys (bot/runtime/retention.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, selectinload

from adapters.teams import store, translate
from bot.db.models import Person, PlatformEvent
from bot.runtime import events
from bot.services import accounts

PLATFORM = translate.PLATFORM
SEEN_IN = "teams roster"
# Roles whose e-mail is not taken as proof of who they are.
UNLINKED_ROLES = frozenset({"guest", "anonymous"})
EXTERNAL = "#ext#"  # in the UPN of an account invited from another tenant
# Workers starting together read each roster once; a restart later reads it again.
AT_START = timedelta(minutes=10)


@dataclass(frozen=True)
class Place:
    """A team (or group chat) whose roster is read, and how to reach its connector."""

    conversation_id: str
    service_url: str
    tenant_id: str | None = None
    bot_id: str | None = None


@dataclass
class Progress:
    """How far a roster read went."""

    pages: int = 0
    members: int = 0


def is_guest(member: Mapping[str, Any]) -> bool:
    role = str(member.get("userRole") or "").lower()
    names = f"{member.get('userPrincipalName') or ''} {member.get('email') or ''}".lower()
    return role in UNLINKED_ROLES or EXTERNAL in names


def email_of(member: Mapping[str, Any]) -> str | None:
    """The member's work e-mail, when it may link them: never a guest's."""
    if is_guest(member):
        return None
    for name in ("email", "userPrincipalName"):
        value = member.get(name)
        if isinstance(value, str) and value.strip():
            try:
                return accounts.valid_email(value)
            except ValueError:
                continue
    return None


def account(
    member: Mapping[str, Any], *, deleted: bool = False, timezone: str | None = None
) -> accounts.Account:
    """A roster member (or an activity's sender) as an account; its id is the AAD object id."""
    who = translate.account(member)
    upn = str(member.get("userPrincipalName") or member.get("email") or "")
    given = " ".join(str(member.get(f) or "") for f in ("givenName", "surname")).strip()
    hint = upn.partition("@")[0].replace("#EXT#", "").replace("#ext#", "")
    return accounts.Account(
        platform=PLATFORM,
        external_id=who.key,
        # No name (a removal names only ids): the person keeps theirs.
        name=who.name or given or upn,
        email=None if deleted else email_of(member),
        timezone=timezone,
        key_hint=hint or None,
        deleted=deleted,
    )


def is_person(member: Mapping[str, Any]) -> bool:
    """A user, not a bot (28:…) or an entry without ids."""
    who = translate.account(member)
    return bool(who.id) and not who.id.startswith("28:")


def link_page(
    session: Session,
    members: Sequence[Mapping[str, Any]],
    place: Place,
    now: datetime,
    *,
    removed: bool = False,
) -> dict[str, int]:
    """One page of a roster: references kept, accounts linked; AAD object id → person id.

    Removed members are no longer suggested (their person is kept, with what they
    wrote, and is back when they are seen again); only people whoknows knows are
    touched.
    """
    users = {}
    for member in members:
        if is_person(member):
            users.setdefault(translate.account(member).key, member)
    if removed:
        known = accounts.find_identities(session, PLATFORM, list(users))
        users = {key: m for key, m in users.items() if key.lower() in known}
    if not users:
        return {}
    if not removed:
        store.remember_listed(
            session,
            [(key, str(m["id"]), m.get("tenantId") or place.tenant_id) for key, m in users.items()],
            service_url=place.service_url,
            bot_id=place.bot_id,
            now=now,
        )
    batch = [account(member, deleted=removed) for member in users.values()]
    linked = accounts.link_accounts(session, batch, now, seen_in=SEEN_IN)
    _note_late_emails(session, batch, linked, now)
    return {a.external_id: person.id for a, person in zip(batch, linked, strict=True)}


def _note_late_emails(
    session: Session,
    batch: Sequence[accounts.Account],
    linked: Sequence[Person],
    now: datetime,
) -> None:
    """An account linked before its e-mail was known (its person made from Teams alone)
    whose e-mail is another person's: two records of one person, listed for an admin
    to merge, never merged here."""
    late = {
        accounts.email_key(a.email): (a, person)
        for a, person in zip(batch, linked, strict=True)
        if a.email and person.email_key != accounts.email_key(a.email)
    }
    if not late:
        return
    holders = session.scalars(
        select(Person).where(Person.email_key.in_(late)).options(selectinload(Person.identities))
    )
    for holder in holders:
        item, claimant = late[holder.email_key or ""]
        # A holder with a Teams account of their own was refused as such when linked.
        on_teams = any(i.platform == PLATFORM for i in holder.identities)
        if holder.id != claimant.id and claimant.email is None and not on_teams:
            accounts.conflict(
                session,
                accounts.EMAIL_TAKEN,
                seen_in=SEEN_IN,
                now=now,
                platform=PLATFORM,
                external_id=item.external_id,
                email=item.email,
                holder=holder,
                claimant=claimant,
            )


# --- who reads which roster when ---------------------------------------------------------


def known_teams(session: Session) -> list[Place]:
    """Every team the app is in, from its channels' references."""
    return [
        Place(r.conversation_id, r.service_url, r.tenant_id, r.bot_id)
        for r in store.active_teams(session)
    ]


def _claim_key(team_id: str, now: datetime, every: timedelta, kind: str) -> str:
    seconds = max(int(every.total_seconds()), 1)
    period = int(now.timestamp()) // seconds
    digest = hashlib.sha256(team_id.encode()).hexdigest()[:24]
    return f"roster.{kind}.{seconds}:{digest}:{period}"


def claim(session: Session, team_id: str, now: datetime, every: timedelta, kind: str) -> bool:
    """Whether this worker reads the team's roster in the current period of `every`:
    True for the first to ask, False for every other worker until the next period."""
    return events.first_delivery(session, PLATFORM, _claim_key(team_id, now, every, kind), now)


def release(session: Session, team_id: str, now: datetime, every: timedelta, kind: str) -> None:
    """Give back a claim whose read failed, so that the next check reads the roster."""
    key = _claim_key(team_id, now, every, kind)
    session.execute(
        delete(PlatformEvent).where(PlatformEvent.platform == PLATFORM, PlatformEvent.key == key)
    )
