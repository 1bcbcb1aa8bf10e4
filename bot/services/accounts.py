"""Platform accounts and the people behind them: one person, however many accounts.

An account seen on a platform (its directory, a first message, a roster) is
linked before anyone is created: to the person who already has that account,
else to the person with that account's e-mail, and only then to someone new.
Doubt is never settled silently: an account already linked to someone else, or
a person who already has an account on that platform, is refused, audited and
listed for admins (`AccountConflict`), who link or merge by hand.

Who may link and merge: admins in chat and on the dashboard; the operator at the
command line, as for imports (`require_linker`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Column, delete, func, select, update
from sqlalchemy.orm import Session, selectinload

from bot import messages
from bot.db import revision
from bot.db.engine import insert_for
from bot.db.models import (
    AccountConflict,
    Base,
    HelpfulVote,
    HuddleObserver,
    HuddleParticipant,
    Identity,
    KnowledgeAuthor,
    Person,
    Presence,
    QueryLog,
    utcnow,
)
from bot.services import permissions
from bot.services.audit import Denied, record
from bot.services.people import free_key
from bot.services.presence import valid_timezone
from bot.text import clean_name

# Chat platforms: an account there is a way to reach the person. The console's
# identities (one per imported person) are the local chat's, not a reachable account.
CHAT_PLATFORMS = ("slack", "teams")
PLATFORM_NAMES = {"slack": "Slack", "teams": "Microsoft Teams", "console": "the local chat"}
MAX_EMAIL_CHARS = 320
_EMAIL = re.compile(r"^[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+\.[^@\s<>()\[\],;:\"]+$")

# Why a link was refused.
LINKED_ELSEWHERE = "linked_elsewhere"  # the account is someone else's already
HAS_OTHER_ACCOUNT = "has_other_account"  # the e-mail's person has another account there
EMAIL_TAKEN = "email_taken"  # a second person claims an e-mail


class LinkError(Denied):
    """A link or merge refused: the message says why and what to do instead; the
    catcher audits it (`Denied.audit`), as the refused transaction rolls back."""

    def __init__(
        self,
        message: str,
        *,
        action: str,
        target: str,
        actor_id: int | None = None,
        actor_label: str | None = None,
        **detail: Any,
    ) -> None:
        super().__init__(
            message,
            actor_id=actor_id,
            action=action,
            target=target,
            actor_label=actor_label,
            **detail,
        )


@dataclass(frozen=True)
class Account:
    """A platform account as the platform describes it."""

    platform: str
    external_id: str
    name: str = ""
    # Only when the platform shows it for a full member: guests, bots and hidden
    # e-mails have None, and are linked by their id alone.
    email: str | None = None
    timezone: str | None = None
    key_hint: str | None = None
    deleted: bool = False


def email_key(email: str) -> str:
    return email.strip().casefold()


def valid_email(text: str) -> str:
    """The e-mail as given, trimmed; ValueError with a reason when it is not one."""
    email = text.strip()
    if len(email) > MAX_EMAIL_CHARS or not _EMAIL.match(email):
        raise ValueError(messages.BAD_EMAIL.format(email=email[:80]))
    return email


def set_email(person: Person, email: str | None) -> None:
    person.email = email
    person.email_key = email_key(email) if email else None


def platform_name(platform: str) -> str:
    return PLATFORM_NAMES.get(platform, platform)


def require_linker(actor: Person, target: Person | None = None) -> None:
    """Linking accounts and merging people rewrites who is who: admins only
    (`permissions.require_linker`, the rule every path asks)."""
    permissions.require_linker(actor, target)


# --- linking what a platform shows ------------------------------------------------------


def link_account(session: Session, account: Account, now: datetime, *, seen_in: str) -> Person:
    return link_accounts(session, [account], now, seen_in=seen_in)[0]


def provision(
    session: Session,
    platform: str,
    external_id: str,
    *,
    name: str,
    email: str | None = None,
    timezone: str | None = None,
    key_hint: str | None = None,
    deleted: bool = False,
    now: datetime | None = None,
) -> Person:
    """The person behind one platform account, linked or created, kept up to date.

    A deleted account (Slack's `deleted: true`) is no longer suggested, unless its
    person is still on another platform; their knowledge stays.
    """
    account = Account(platform, external_id, name, email, timezone, key_hint, deleted)
    return link_account(session, account, now or utcnow(), seen_in=platform)


def link_accounts(
    session: Session, accounts: Sequence[Account], now: datetime, *, seen_in: str
) -> list[Person]:
    """The person behind each account (all of one platform), linked or created, in a
    few queries for the lot: a directory page of 200 at a time."""
    if not accounts:
        return []
    platform = accounts[0].platform
    known = find_identities(session, platform, [a.external_id for a in accounts])
    wanted = {
        email_key(a.email)
        for a in accounts
        if a.email
        and not a.deleted
        and (
            a.external_id.lower() not in known
            or _takes_email(known[a.external_id.lower()].person, a)
        )
    }
    by_email: dict[str, Person] = {}
    if wanted:
        by_email = {
            p.email_key: p
            for p in session.scalars(
                select(Person)
                .where(Person.email_key.in_(wanted))
                .options(selectinload(Person.identities))
            )
            if p.email_key
        }
    keys = _Keys(session, [a for a in accounts if a.external_id.lower() not in known])
    found = []
    for account in accounts:
        identity = known.get(account.external_id.lower())
        if identity is not None:
            person = identity.person
            _refresh(person, account, now)
            if _takes_email(person, account):
                _take_email(session, person, account, by_email, now, seen_in)
        else:
            person = _link_or_create(session, account, by_email, keys, now, seen_in)
            known[account.external_id.lower()] = next(
                i for i in person.identities if i.external_id == account.external_id
            )
        found.append(person)
    session.flush()
    return found


def find_identities(session: Session, platform: str, ids: Iterable[str]) -> dict[str, Identity]:
    """Identities of these ids on the platform, by lower-cased id: the exact spelling
    first, and an id stored in another case (typed by a lead) when there is none."""
    ids = list(dict.fromkeys(ids))
    rows = list(
        session.scalars(
            select(Identity)
            .where(Identity.platform == platform, Identity.external_id.in_(ids))
            .options(selectinload(Identity.person).selectinload(Person.identities))
        )
    )
    exact = {i.external_id for i in rows}
    folded = [i.lower() for i in ids if i not in exact]
    if folded:
        rows += session.scalars(
            select(Identity)
            .where(
                Identity.platform == platform,
                func.lower(Identity.external_id).in_(folded),
                Identity.external_id.not_in(exact),
            )
            .options(selectinload(Identity.person).selectinload(Person.identities))
        )
    found: dict[str, Identity] = {}
    for identity in rows:
        found.setdefault(identity.external_id.lower(), identity)
    return found


def _refresh(person: Person, account: Account, now: datetime) -> None:
    """Keep a linked person in step with their account (`_changes`)."""
    for name, value in _changes(person, account, now).items():
        setattr(person, name, value)


def _changes(person: Person, account: Account, now: datetime) -> dict[str, Any]:
    """What a linked account changes of its person.

    Name and time zone follow the platform that brought the person; someone a lead
    imported keeps the name and zone the lead gave (their e-mail: `_takes_email`).
    """
    changes: dict[str, Any] = {}
    if person.origin in (None, account.platform):
        name = clean_name(account.name)[:200]
        if name and person.display_name != name:
            changes["display_name"] = name
        if (
            account.timezone
            and person.timezone != account.timezone
            and valid_timezone(account.timezone)
        ):
            changes["timezone"] = account.timezone
    if account.deleted:
        # Gone from this platform; still here if they have an account elsewhere.
        elsewhere = any(
            i.platform in CHAT_PLATFORMS and i.platform != account.platform
            for i in person.identities
        )
        if not elsewhere and person.deleted_at is None:
            changes["deleted_at"] = now
    elif person.deleted_at is not None and not person.key.startswith("forgotten-"):
        changes["deleted_at"] = None
    return changes


def is_current(session: Session, accounts: Sequence[Account], now: datetime) -> list[bool]:
    """For each account (all of one platform): already linked, and its person in step
    with it, so that `link_accounts` would change nothing. A directory read again
    daily finds most accounts so, and writes only for the others (a read needs no
    write lock on SQLite)."""
    if not accounts:
        return []
    known = find_identities(session, accounts[0].platform, [a.external_id for a in accounts])
    found = []
    for account in accounts:
        identity = known.get(account.external_id.lower())
        found.append(
            identity is not None
            and not _changes(identity.person, account, now)
            and not _takes_email(identity.person, account)
        )
    return found


def _takes_email(person: Person, account: Account) -> bool:
    """A linked account's e-mail becomes its person's when they have none, or when
    that platform brought them (their e-mail is the platform's, and follows it); a
    lead's e-mail for someone they imported stays."""
    if not account.email or account.deleted or person.email_key == email_key(account.email):
        return False
    return person.email_key is None or person.origin == account.platform


def _take_email(
    session: Session,
    person: Person,
    account: Account,
    by_email: dict[str, Person],
    now: datetime,
    seen_in: str,
) -> None:
    """The account's e-mail for its person, if nobody else has it; else a conflict
    for admins (two people, one e-mail: perhaps one person to merge). When the
    e-mail's person has another account there, it is the doubt listed when this
    account's person was made (`_link_or_create`), listed once."""
    assert account.email
    key = email_key(account.email)
    holder = by_email.get(key)
    if holder is None:
        if person.email_key:
            by_email.pop(person.email_key, None)
        set_email(person, account.email)
        by_email[key] = person
        return
    if holder is person:
        return
    other = any(i.platform == account.platform for i in holder.identities)
    _refuse(
        session, HAS_OTHER_ACCOUNT if other else EMAIL_TAKEN, account, holder, person, now, seen_in
    )


def _key_base(hint: str) -> str:
    """The handle `free_key` starts from (\"Maria Santos\" → maria.santos)."""
    base = re.sub(r"[^a-z0-9._-]+", ".", hint.strip().lower()).strip("._-")[:60] or "person"
    return base if base[0].isalnum() else "p" + base


def _key_hint(account: Account) -> str:
    return account.key_hint or account.name or account.external_id


class _Keys:
    """Handles for the people a batch creates: the handles their names suggest are
    looked up at once, and only one already taken is numbered (`free_key`, which sees
    the batch's new people too: its query flushes them first)."""

    def __init__(self, session: Session, accounts: Sequence[Account]) -> None:
        self.session = session
        bases = {_key_base(_key_hint(a)) for a in accounts}
        self.taken: set[str] = set()
        if bases:
            self.taken = set(session.scalars(select(Person.key).where(Person.key.in_(bases))))

    def free(self, hint: str) -> str:
        base = _key_base(hint)
        key = base if base not in self.taken else free_key(self.session, hint)
        self.taken.add(key)
        return key


def _link_or_create(
    session: Session,
    account: Account,
    by_email: dict[str, Person],
    keys: _Keys,
    now: datetime,
    seen_in: str,
) -> Person:
    key = email_key(account.email) if account.email and not account.deleted else None
    holder = by_email.get(key) if key else None
    if holder is not None:
        others = [i for i in holder.identities if i.platform == account.platform]
        if not others:
            holder.identities.append(
                Identity(platform=account.platform, external_id=account.external_id)
            )
            _refresh(holder, account, now)
            return holder
    person = Person(
        key=keys.free(_key_hint(account)),
        display_name=clean_name(account.name)[:200] or account.external_id,
        origin=account.platform,
    )
    if account.timezone and valid_timezone(account.timezone):
        person.timezone = account.timezone
    if account.deleted:
        person.deleted_at = now
    if key and holder is None:
        set_email(person, account.email)
        by_email[key] = person
    person.identities.append(Identity(platform=account.platform, external_id=account.external_id))
    session.add(person)
    # Written with the rest of the batch (one INSERT for them all), unless the
    # conflict below needs its id now.
    if holder is not None:
        _refuse(session, HAS_OTHER_ACCOUNT, account, holder, person, now, seen_in)
    return person


def _refuse(
    session: Session,
    reason: str,
    account: Account,
    holder: Person,
    claimant: Person,
    now: datetime,
    seen_in: str,
) -> None:
    """`account` (of `claimant`) cannot be linked because of `holder`: listed for admins."""
    session.flush()  # the claimant's id, for the conflict row
    conflict(
        session,
        reason,
        seen_in=seen_in,
        platform=account.platform,
        external_id=account.external_id,
        email=account.email,
        holder=holder,
        claimant=claimant,
        now=now,
    )


# --- doubt, recorded --------------------------------------------------------------------


def conflict(
    session: Session,
    reason: str,
    *,
    seen_in: str,
    now: datetime,
    platform: str | None = None,
    external_id: str | None = None,
    email: str | None = None,
    holder: Person | None = None,
    claimant: Person | None = None,
    claimed_by: str | None = None,
) -> bool:
    """List a refused link for admins and audit it, once however often it is seen;
    True when it is new."""
    key = ":".join([reason, platform or "", external_id or "", email_key(email or "")])[:600]
    insert = insert_for(session.get_bind().dialect.name)
    added = session.execute(
        insert(AccountConflict)
        .values(
            key=key,
            reason=reason,
            platform=platform,
            external_id=external_id,
            email=email,
            holder_id=holder.id if holder else None,
            claimant_id=claimant.id if claimant else None,
            claimed_by=(claimed_by or (claimant.key if claimant else None) or "")[:200] or None,
            seen_in=seen_in[:64],
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["key"])
        # RETURNING, not rowcount: psycopg counts a row that was not inserted.
        .returning(AccountConflict.id)
    )
    if added.first() is None:
        return False
    record(
        session,
        None,
        "link_account",
        f"person:{holder.key}" if holder else f"{platform}:{external_id}",
        allowed=False,
        actor_label=seen_in,
        reason=reason,
        platform=platform,
        account=external_id,
        email=email,
        claimant=claimed_by or (claimant.key if claimant else None),
    )
    return True


def open_conflicts(session: Session) -> list[AccountConflict]:
    return list(
        session.scalars(
            select(AccountConflict)
            .options(selectinload(AccountConflict.holder), selectinload(AccountConflict.claimant))
            .order_by(AccountConflict.created_at, AccountConflict.id)
        )
    )


def describe(row: AccountConflict) -> str:
    holder = row.holder.key if row.holder else "nobody"
    claimant = row.claimant.key if row.claimant else row.claimed_by or "nobody"
    where = platform_name(row.platform) if row.platform else ""
    return messages.CONFLICT_LINES[row.reason].format(
        account=row.external_id or "",
        platform=where,
        email=row.email or "",
        holder=holder,
        claimant=claimant,
    )


# --- by hand ---------------------------------------------------------------------------


def link_by_hand(
    session: Session,
    person: Person,
    platform: str,
    external_id: str,
    *,
    actor_label: str,
    actor_id: int | None = None,
) -> bool:
    """Link an account to a person an admin names; False when it already was.

    An account already linked to someone else is refused: merging the two people
    is the way (`merge`), so that nothing of the other one is left behind.
    """
    external_id = external_id.strip()
    refusal = {
        "action": "link_account",
        "target": f"person:{person.key}",
        "actor_id": actor_id,
        "actor_label": actor_label,
        "platform": platform,
        "account": external_id[:200],
    }
    if not external_id or len(external_id) > 200 or any(c.isspace() for c in external_id):
        raise LinkError(messages.BAD_ACCOUNT_ID.format(platform=platform_name(platform)), **refusal)
    identity = find_identities(session, platform, [external_id]).get(external_id.lower())
    if identity is not None and identity.person_id != person.id:
        raise LinkError(
            messages.ACCOUNT_LINKED_ELSEWHERE.format(
                account=external_id,
                platform=platform_name(platform),
                other=identity.person.key,
                person=person.key,
            ),
            linked_to=identity.person.key,
            **refusal,
        )
    if identity is not None:
        if identity.external_id == external_id:
            return False
        identity.external_id = external_id  # as the admin spelled it
    else:
        person.identities.append(Identity(platform=platform, external_id=external_id))
    _settle(session, platform=platform, external_id=external_id)
    record(
        session,
        actor_id,
        "link_account",
        f"person:{person.key}",
        actor_label=actor_label,
        platform=platform,
        account=external_id,
    )
    return True


def give_email(
    session: Session,
    person: Person,
    email: str,
    *,
    actor_label: str,
    actor_id: int | None = None,
) -> bool:
    """Set a person's e-mail by hand; one another person has is refused."""
    refusal = {
        "action": "set_email",
        "target": f"person:{person.key}",
        "actor_id": actor_id,
        "actor_label": actor_label,
        "email": email[:MAX_EMAIL_CHARS],
    }
    try:
        email = valid_email(email)
    except ValueError as error:
        raise LinkError(str(error), **refusal) from None
    holder = session.scalar(select(Person).where(Person.email_key == email_key(email)))
    if holder is not None and holder.id != person.id:
        raise LinkError(
            messages.EMAIL_TAKEN.format(email=email, other=holder.key),
            held_by=holder.key,
            **refusal,
        )
    if person.email == email:
        return False
    set_email(person, email)
    _settle(session, email=email)
    record(
        session, actor_id, "set_email", f"person:{person.key}", actor_label=actor_label, email=email
    )
    return True


def _settle(
    session: Session, *, platform: str | None = None, external_id: str | None = None, **by: str
) -> None:
    """Conflicts about an account (or an e-mail) an admin has now decided."""
    if external_id is not None:
        session.execute(
            delete(AccountConflict).where(
                AccountConflict.platform == platform,
                func.lower(AccountConflict.external_id) == external_id.lower(),
            )
        )
    if "email" in by:
        session.execute(
            delete(AccountConflict).where(
                func.lower(AccountConflict.email) == by["email"].lower(),
                AccountConflict.reason == EMAIL_TAKEN,
            )
        )


# --- merging ---------------------------------------------------------------------------


def person_references() -> list[Column]:
    """Every column that refers to a person: what a merge moves (a test keeps this
    list and the schema in step)."""
    return [
        column
        for table in Base.metadata.sorted_tables
        for column in table.columns
        for key in column.foreign_keys
        if key.column.table.name == "person"
    ]


def merge(
    session: Session,
    keep: Person,
    drop: Person,
    *,
    actor_label: str,
    actor_id: int | None = None,
) -> None:
    """Make two records of one person one: `drop`'s skills (the higher level, any
    verification), accounts, authorship, huddles, votes, questions and audit move to
    `keep`, and `drop` disappears."""
    if keep.id == drop.id:
        raise LinkError(
            messages.MERGE_SAME.format(person=keep.key),
            action="merge_people",
            target=f"person:{keep.key}",
            actor_id=actor_id,
            actor_label=actor_label,
        )
    _merge_skills(session, keep, drop)
    # Rows one person may hold once: drop's copy goes where keep has one.
    for model, other in (
        (KnowledgeAuthor, KnowledgeAuthor.entry_id),
        (HelpfulVote, HelpfulVote.entry_id),
        (HuddleObserver, HuddleObserver.huddle_id),
    ):
        held = select(other).where(model.person_id == keep.id)  # type: ignore[attr-defined]
        session.execute(
            delete(model).where(model.person_id == drop.id, other.in_(held))  # type: ignore[attr-defined]
        )
    _merge_participants(session, keep, drop)
    if keep.presence is not None:
        session.execute(delete(Presence).where(Presence.person_id == drop.id))
    if keep.email is None and drop.email is not None:
        email = drop.email
        set_email(drop, None)
        session.flush()
        set_email(keep, email)
    session.flush()
    for column in person_references():
        session.execute(
            update(column.table).where(column == drop.id).values({column.name: keep.id})
        )
    # Fairness and reports count people by key.
    session.execute(
        update(QueryLog)
        .where(QueryLog.first_suggested == drop.key)
        .values(first_suggested=keep.key)
    )
    pattern = f"%{drop.key}%"
    for row in session.scalars(select(QueryLog).where(QueryLog.suggested.like(pattern))):
        keys = row.suggested.split(",")
        if drop.key in keys:
            row.suggested = ",".join(dict.fromkeys(keep.key if k == drop.key else k for k in keys))
    # Conflicts between the two are settled; others now concern keep.
    session.execute(
        delete(AccountConflict).where(
            AccountConflict.holder_id == keep.id, AccountConflict.claimant_id == keep.id
        )
    )
    dropped = drop.key
    session.expire_all()
    session.execute(delete(Person).where(Person.id == drop.id))
    revision.bump(session, revision.PEOPLE)
    revision.bump(session, revision.KNOWLEDGE)
    revision.bump(session, revision.LEARNING)  # examples of who helped name keep now
    record(
        session,
        actor_id,
        "merge_people",
        f"person:{keep.key}",
        actor_label=actor_label,
        dropped=dropped,
    )


def _merge_skills(session: Session, keep: Person, drop: Person) -> None:
    held = {skill.tag_id: skill for skill in keep.skills}
    for skill in list(drop.skills):
        mine = held.get(skill.tag_id)
        if mine is None:
            continue
        if skill.level > mine.level:
            mine.level = skill.level
        if mine.verified_at is None and skill.verified_at is not None:
            mine.verified_at, mine.verified_by_id = skill.verified_at, skill.verified_by_id
        session.delete(skill)
    session.flush()


def _merge_participants(session: Session, keep: Person, drop: Person) -> None:
    mine = {
        p.huddle_id: p
        for p in session.scalars(
            select(HuddleParticipant).where(HuddleParticipant.person_id == keep.id)
        )
    }
    for theirs in session.scalars(
        select(HuddleParticipant).where(
            HuddleParticipant.person_id == drop.id, HuddleParticipant.huddle_id.in_(mine)
        )
    ):
        kept = mine[theirs.huddle_id]
        kept.invited = kept.invited or theirs.invited
        replies = [t for t in (kept.first_reply_at, theirs.first_reply_at) if t is not None]
        kept.first_reply_at = min(replies) if replies else None
        kept.invited_at = min(kept.invited_at, theirs.invited_at)
        # Still asked unless both records had stepped back.
        declined = (kept.declined_at, theirs.declined_at)
        both = all(declined) and kept.first_reply_at is None
        kept.declined_at = max(declined) if both else None  # type: ignore[type-var]
        session.delete(theirs)
    session.flush()
