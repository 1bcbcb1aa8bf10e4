"""Teams conversation references in the database: who can be messaged where.

Proactive messages (huddle invitations, thread posts) need what an inbound
activity carried: the service URL, the tenant, the bot's id and the
conversation id. Every activity refreshes them; writes are upserts, so two
workers seeing the same activity cannot collide.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from bot.db.engine import insert_for
from bot.db.models import TeamsChannel, TeamsUser

GENERAL = "General"  # Teams lists a team's first channel without a name


@dataclass(frozen=True)
class Reference:
    """Enough to send into a conversation without an inbound activity to answer."""

    conversation_id: str
    service_url: str
    tenant_id: str | None
    bot_id: str | None
    kind: str  # personal, channel, groupChat
    active: bool = True
    name: str | None = None


@dataclass(frozen=True)
class UserReference:
    """A user's ids and, once there is one, their 1:1 chat with the bot."""

    aad_object_id: str
    user_id: str
    service_url: str
    tenant_id: str | None
    bot_id: str | None
    conversation_id: str | None
    active: bool


def _upsert(
    session: Session,
    model: type,
    values: dict[str, Any] | list[dict[str, Any]],
    key: str,
    keep: set[str],
    fixed: frozenset[str] = frozenset(),
) -> None:
    """Insert, or update the row (rows, each key once): `keep` columns only with a new
    value, `fixed` never."""
    insert = insert_for(session.get_bind().dialect.name)
    statement = insert(model).values(values)
    table = model.__table__  # type: ignore[attr-defined]
    names = values[0] if isinstance(values, list) else values
    changes = {
        name: (
            func.coalesce(statement.excluded[name], table.c[name])
            if name in keep
            else statement.excluded[name]
        )
        for name in names
        if name != key and name not in fixed
    }
    session.execute(statement.on_conflict_do_update(index_elements=[key], set_=changes))


def remember_user(
    session: Session,
    *,
    aad_object_id: str,
    user_id: str,
    service_url: str,
    tenant_id: str | None,
    bot_id: str | None,
    now: datetime,
    conversation_id: str | None = None,
) -> None:
    """A user seen in an activity or a roster; with their 1:1 chat when it is that chat."""
    values: dict[str, Any] = {
        "aad_object_id": aad_object_id,
        "user_id": user_id,
        "service_url": service_url,
        "tenant_id": tenant_id,
        "bot_id": bot_id,
        "conversation_id": conversation_id,
        "updated_at": now,
        "active": True,
    }
    keep = {"tenant_id", "bot_id", "conversation_id"}
    # Writing to the bot lifts whatever blocked it before; a roster listing does not.
    fixed = frozenset() if conversation_id is not None else frozenset({"active"})
    _upsert(session, TeamsUser, values, "aad_object_id", keep, fixed)


def remember_listed(
    session: Session,
    users: list[tuple[str, str, str | None]],
    *,
    service_url: str,
    bot_id: str | None,
    now: datetime,
) -> None:
    """Users a roster lists, (AAD object id, 29: id, tenant) each once: one statement
    for a page. A listing does not lift a block, nor forget a 1:1 chat."""
    if not users:
        return
    rows = [
        {
            "aad_object_id": aad,
            "user_id": user_id,
            "service_url": service_url,
            "tenant_id": tenant,
            "bot_id": bot_id,
            "conversation_id": None,
            "updated_at": now,
            "active": True,
        }
        for aad, user_id, tenant in users
    ]
    keep = {"tenant_id", "bot_id", "conversation_id"}
    _upsert(session, TeamsUser, rows, "aad_object_id", keep, frozenset({"active"}))


def remember_channel(
    session: Session,
    *,
    conversation_id: str,
    kind: str,
    service_url: str,
    tenant_id: str | None,
    bot_id: str | None,
    now: datetime,
    team_id: str | None = None,
    name: str | None = None,
) -> None:
    values = {
        "conversation_id": conversation_id,
        "kind": kind,
        "team_id": team_id,
        "name": name,
        "tenant_id": tenant_id,
        "service_url": service_url,
        "bot_id": bot_id,
        "active": True,
        "updated_at": now,
    }
    _upsert(session, TeamsChannel, values, "conversation_id", {"team_id", "name", "bot_id"})


def user(session: Session, aad_object_id: str) -> TeamsUser | None:
    return session.scalar(select(TeamsUser).where(TeamsUser.aad_object_id == aad_object_id))


def user_reference(session: Session, aad_object_id: str) -> UserReference | None:
    row = user(session, aad_object_id)
    if row is None:
        return None
    return UserReference(
        row.aad_object_id,
        row.user_id,
        row.service_url,
        row.tenant_id,
        row.bot_id,
        row.conversation_id,
        row.active,
    )


def user_by_teams_id(session: Session, user_id: str) -> TeamsUser | None:
    return session.scalar(select(TeamsUser).where(TeamsUser.user_id == user_id).limit(1))


def _channel_reference(row: TeamsChannel) -> Reference:
    return Reference(
        row.conversation_id,
        row.service_url,
        row.tenant_id,
        row.bot_id,
        row.kind,
        row.active,
        row.name or (GENERAL if row.conversation_id == row.team_id else None),
    )


def find_channel(session: Session, channel: str) -> Reference | None:
    """A channel by its id, or by its name (`billing-huddles`, `#billing-huddles`)."""
    name = channel.strip().lstrip("#").lower()
    rows = session.scalars(
        select(TeamsChannel)
        .where(
            or_(
                TeamsChannel.conversation_id == channel,
                func.lower(TeamsChannel.name) == name,
                # A team's General channel has the team's id and no name.
                (TeamsChannel.conversation_id == TeamsChannel.team_id) & (name == GENERAL.lower()),
            )
        )
        .order_by(TeamsChannel.active.desc(), TeamsChannel.updated_at.desc())
    ).all()
    exact = [r for r in rows if r.conversation_id == channel]
    return _channel_reference((exact or rows)[0]) if rows else None


def conversation(session: Session, conversation_id: str) -> Reference | None:
    """A stored channel, group chat or 1:1 chat by its conversation id."""
    channel = session.scalar(
        select(TeamsChannel).where(TeamsChannel.conversation_id == conversation_id)
    )
    if channel is not None:
        return _channel_reference(channel)
    row = session.scalar(
        select(TeamsUser).where(TeamsUser.conversation_id == conversation_id).limit(1)
    )
    if row is None:
        return None
    return Reference(
        conversation_id, row.service_url, row.tenant_id, row.bot_id, "personal", row.active
    )


def set_user_active(session: Session, aad_object_id: str, active: bool) -> None:
    session.execute(
        update(TeamsUser).where(TeamsUser.aad_object_id == aad_object_id).values(active=active)
    )


def set_conversation(session: Session, aad_object_id: str, conversation_id: str) -> None:
    session.execute(
        update(TeamsUser)
        .where(TeamsUser.aad_object_id == aad_object_id)
        .values(conversation_id=conversation_id)
    )


def forget_team(session: Session, team_id: str) -> None:
    """The app was removed from a team: its channels can no longer be posted in."""
    session.execute(
        update(TeamsChannel)
        .where(or_(TeamsChannel.team_id == team_id, TeamsChannel.conversation_id == team_id))
        .values(active=False)
    )


def forget_channel(session: Session, conversation_id: str) -> None:
    session.execute(
        update(TeamsChannel)
        .where(TeamsChannel.conversation_id == conversation_id)
        .values(active=False)
    )


def teams_people(session: Session) -> list[str]:
    """Every Teams user's AAD object id (for presence)."""
    return list(session.scalars(select(TeamsUser.aad_object_id).order_by(TeamsUser.id)))


def active_teams(session: Session) -> list[Reference]:
    """One reference per team the app is in (a team's id is its General channel's):
    where its roster is read, with the newest service URL its channels were seen at."""
    rows = session.scalars(
        select(TeamsChannel)
        .where(TeamsChannel.team_id.is_not(None), TeamsChannel.active.is_(True))
        .order_by(TeamsChannel.team_id, TeamsChannel.updated_at.desc(), TeamsChannel.id)
    )
    teams: dict[str, Reference] = {}
    for row in rows:
        team = str(row.team_id)
        if team not in teams:
            teams[team] = Reference(
                team, row.service_url, row.tenant_id, row.bot_id, "team", row.active, row.name
            )
    return list(teams.values())


def first_tenant(session: Session) -> str | None:
    """The tenant of the earliest reference kept (kept only from activities whose token
    was valid): the first tenant seen, when none was recorded as such."""
    for model in (TeamsChannel, TeamsUser):
        tenant = session.scalar(
            select(model.tenant_id).where(model.tenant_id.is_not(None)).order_by(model.id).limit(1)
        )
        if tenant:
            return tenant
    return None
