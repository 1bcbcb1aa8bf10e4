"""The domain model. Every change to it comes with an Alembic migration."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    and_,
    event,
    func,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.orm.base import NEVER_SET, NO_VALUE

# Stable constraint names, so migrations can refer to them on every database.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Role(enum.StrEnum):
    AGENT = "agent"
    LEAD = "lead"
    ADMIN = "admin"


class SkillSource(enum.StrEnum):
    SELF = "self"
    LEAD = "lead"
    IMPORT = "import"
    EVIDENCE = "evidence"


class Status(enum.StrEnum):
    AVAILABLE = "available"
    BUSY = "busy"
    AWAY = "away"
    ON_CALL = "on_call"
    OFF = "off"


class HuddleState(enum.StrEnum):
    OPEN = "open"
    RESOLVED = "resolved"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    # Stored as plain strings (validated in Python), the same on SQLite and PostgreSQL.
    return Enum(
        cls,
        name=name,
        native_enum=False,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
        length=16,
    )


class Team(Base):
    __tablename__ = "team"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    huddle_channel: Mapped[str | None] = mapped_column(String(200))
    # The team's own channel: where a huddle nobody answers is announced.
    channel: Mapped[str | None] = mapped_column(String(200))

    people: Mapped[list[Person]] = relationship(back_populates="team")


class Person(Base):
    __tablename__ = "person"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The stable key leads use in imports and exports (an employee id or a handle),
    # lower-cased: what lookups and @handles match.
    key: Mapped[str] = mapped_column(String(120), unique=True)
    # The id as an import spelled it (`U0012` for the key `u0012`), given back by
    # exports; None when it is the key itself.
    given_id: Mapped[str | None] = mapped_column(String(120))
    display_name: Mapped[str] = mapped_column(String(200))
    # A work e-mail as given; `email_key`, its case-folded form, is what links a
    # platform account to the person and keeps one e-mail to one person.
    email: Mapped[str | None] = mapped_column(String(320))
    email_key: Mapped[str | None] = mapped_column(String(320), unique=True)
    # Where the person was first known: import, demo, console, slack or teams. A
    # platform's profile renames only the people it brought.
    origin: Mapped[str | None] = mapped_column(String(16))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id", ondelete="SET NULL"))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    # Local working hours as minutes after midnight; end < start means a night shift.
    work_start_min: Mapped[int] = mapped_column(Integer, default=9 * 60)
    work_end_min: Mapped[int] = mapped_column(Integer, default=17 * 60)
    # ISO weekdays worked, "12345" = Monday to Friday.
    work_days: Mapped[str] = mapped_column(String(7), default="12345")
    role: Mapped[Role] = mapped_column(_enum(Role, "role"), default=Role.AGENT)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A lead: when they were last asked to re-verify their team's skills (at most weekly).
    reverify_asked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Dashboard sessions carry the number they were started under: signing out, a
    # changed role or a removal moves it on, and every older session ends at once.
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    team: Mapped[Team | None] = relationship(back_populates="people")
    identities: Mapped[list[Identity]] = relationship(
        back_populates="person", cascade="all, delete-orphan"
    )
    skills: Mapped[list[Skill]] = relationship(
        back_populates="person", cascade="all, delete-orphan", foreign_keys="Skill.person_id"
    )
    presence: Mapped[Presence | None] = relationship(
        back_populates="person", cascade="all, delete-orphan"
    )

    def end_sessions(self) -> None:
        """Every dashboard session this person has ends (see `session_generation`)."""
        self.session_generation = (self.session_generation or 0) + 1


# Whatever path changes a role (chat, the dashboard, an import, the command line) or
# removes a person (forget, a merge, a deactivated account), their sessions end with it.
@event.listens_for(Person.role, "set", active_history=True)
def _role_changed(person: Person, role: Role, old: Any, _initiator: Any) -> None:
    if old not in (None, NO_VALUE, NEVER_SET) and role != old:
        person.end_sessions()


@event.listens_for(Person.deleted_at, "set", active_history=True)
def _removed(person: Person, deleted_at: datetime | None, old: Any, _initiator: Any) -> None:
    if deleted_at is not None and old in (None, NO_VALUE, NEVER_SET):
        person.end_sessions()


class Identity(Base):
    """One row per platform account, so a person can be on Slack, Teams and the console."""

    __tablename__ = "identity"
    __table_args__ = (
        UniqueConstraint("platform", "external_id"),
        # A reply's handles: some people's ids on one platform (migration 0011).
        Index("identity_person_idx", "person_id", "platform"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    external_id: Mapped[str] = mapped_column(String(200))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))

    person: Mapped[Person] = relationship(back_populates="identities")


# An id a lead typed in another case than the platform's own (migration 0012).
Index("identity_folded_idx", Identity.platform, func.lower(Identity.external_id))


class Tag(Base):
    __tablename__ = "tag"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("tag.id", ondelete="SET NULL"))
    description: Mapped[str | None] = mapped_column(Text)

    parent: Mapped[Tag | None] = relationship(remote_side=[id])
    aliases: Mapped[list[TagAlias]] = relationship(
        back_populates="tag", cascade="all, delete-orphan"
    )


class TagAlias(Base):
    __tablename__ = "tag_alias"

    id: Mapped[int] = mapped_column(primary_key=True)
    alias: Mapped[str] = mapped_column(String(120), unique=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tag.id", ondelete="CASCADE"), index=True)

    tag: Mapped[Tag] = relationship(back_populates="aliases")


class Skill(Base):
    """A person's expertise in one tag."""

    __tablename__ = "skill"
    __table_args__ = (
        UniqueConstraint("person_id", "tag_id"),
        CheckConstraint("level BETWEEN 1 AND 5", name="level_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    tag_id: Mapped[int] = mapped_column(ForeignKey("tag.id", ondelete="CASCADE"), index=True)
    level: Mapped[int] = mapped_column(Integer, default=3)
    source: Mapped[SkillSource] = mapped_column(_enum(SkillSource, "skill_source"))
    # verified_at without verified_by: verified by an import, not by a person in the app.
    verified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    verified_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    person: Mapped[Person] = relationship(back_populates="skills", foreign_keys=[person_id])
    tag: Mapped[Tag] = relationship()
    verified_by: Mapped[Person | None] = relationship(foreign_keys=[verified_by_id])

    @property
    def verified(self) -> bool:
        return self.verified_at is not None


class Presence(Base):
    """A status someone set (or a platform reported), valid until `until` when given."""

    __tablename__ = "presence"

    person_id: Mapped[int] = mapped_column(
        ForeignKey("person.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[Status] = mapped_column(_enum(Status, "status"))
    source: Mapped[str] = mapped_column(String(16), default="bot")
    until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    person: Mapped[Person] = relationship(back_populates="presence")


class Huddle(Base):
    __tablename__ = "huddle"

    id: Mapped[int] = mapped_column(primary_key=True)
    topic: Mapped[str] = mapped_column(Text)
    requester_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id", ondelete="SET NULL"))
    state: Mapped[HuddleState] = mapped_column(
        _enum(HuddleState, "huddle_state"), default=HuddleState.OPEN, index=True
    )
    platform: Mapped[str | None] = mapped_column(String(16))
    channel_ref: Mapped[str | None] = mapped_column(String(200))
    thread_ref: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    first_reply_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    # How far up the escalation ladder it has gone (0: only the first experts).
    ladder_step: Mapped[int] = mapped_column(Integer, default=0)

    participants: Mapped[list[HuddleParticipant]] = relationship(
        back_populates="huddle", cascade="all, delete-orphan", order_by="HuddleParticipant.id"
    )
    requester: Mapped[Person | None] = relationship(foreign_keys=[requester_id])
    team: Mapped[Team | None] = relationship()


class HuddleParticipant(Base):
    __tablename__ = "huddle_participant"
    __table_args__ = (UniqueConstraint("huddle_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    huddle_id: Mapped[int] = mapped_column(ForeignKey("huddle.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    invited_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    first_reply_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    declined_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # False for someone who joined the thread without being invited.
    invited: Mapped[bool] = mapped_column(Boolean, default=True)
    # 0 for the first experts, then the ladder step that invited them.
    round: Mapped[int] = mapped_column(Integer, default=0)

    huddle: Mapped[Huddle] = relationship(back_populates="participants")
    person: Mapped[Person] = relationship()


class KnowledgeEntry(Base):
    __tablename__ = "knowledge_entry"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    body: Mapped[str] = mapped_column(Text)
    # sha256 of the normalised title and body: what makes a re-import idempotent.
    content_key: Mapped[str] = mapped_column(String(64), unique=True)
    huddle_id: Mapped[int | None] = mapped_column(ForeignKey("huddle.id", ondelete="SET NULL"))
    helpful_count: Mapped[int] = mapped_column(Integer, default=0)
    # Bumped on every edit; an edit based on an older version is a conflict.
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    tags: Mapped[list[Tag]] = relationship(secondary="knowledge_tag", order_by="Tag.name")
    authors: Mapped[list[Person]] = relationship(
        secondary="knowledge_author", order_by="Person.key"
    )

    __mapper_args__: ClassVar[dict[str, Any]] = {"version_id_col": version}


class KnowledgeTag(Base):
    __tablename__ = "knowledge_tag"

    entry_id: Mapped[int] = mapped_column(
        ForeignKey("knowledge_entry.id", ondelete="CASCADE"), primary_key=True
    )
    tag_id: Mapped[int] = mapped_column(
        ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class KnowledgeAuthor(Base):
    __tablename__ = "knowledge_author"

    entry_id: Mapped[int] = mapped_column(
        ForeignKey("knowledge_entry.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("person.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class HelpfulVote(Base):
    """One person's "this helped" on an entry: counted once, however often clicked."""

    __tablename__ = "helpful_vote"

    entry_id: Mapped[int] = mapped_column(
        ForeignKey("knowledge_entry.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("person.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class JobState(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"
    CANCELLED = "cancelled"


class Job(Base):
    """A timer kept in the database: it survives restarts and fires once across workers."""

    __tablename__ = "job"
    # One job per step of one huddle's ladder: scheduling it twice is a no-op.
    # A team's job (a weekly digest) is one per (kind, team, step) the same way.
    __table_args__ = (
        UniqueConstraint("kind", "huddle_id", "step"),
        UniqueConstraint("kind", "team_id", "step", name="uq_job_kind_team_step"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    huddle_id: Mapped[int | None] = mapped_column(ForeignKey("huddle.id", ondelete="CASCADE"))
    # The team a team's job is for (migration 0015); None for a huddle's timers.
    team_id: Mapped[int | None] = mapped_column(ForeignKey("team.id", ondelete="CASCADE"))
    step: Mapped[int] = mapped_column(Integer, default=0)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    state: Mapped[JobState] = mapped_column(
        _enum(JobState, "job_state"), default=JobState.PENDING, index=True
    )
    fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    fired_by: Mapped[str | None] = mapped_column(String(64))


# A job of no huddle and no team (a recurring sweep) is one row per (kind, step), however
# many workers schedule it at once (migration 0017). A team's jobs are kept one by
# uq_job_kind_team_step.
Index(
    "job_unhuddled_uq",
    Job.kind,
    Job.step,
    unique=True,
    sqlite_where=and_(Job.huddle_id.is_(None), Job.team_id.is_(None)),
    postgresql_where=and_(Job.huddle_id.is_(None), Job.team_id.is_(None)),
)


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class Outbox(Base):
    """A message to deliver, written in the same transaction as the change it reports.

    Delivered after the commit, so a rolled-back command posts nothing and a
    crash between commit and delivery loses nothing.
    """

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    # post (to a channel), thread (into a huddle's thread), dm, update (a huddle's root).
    kind: Mapped[str] = mapped_column(String(16))
    huddle_id: Mapped[int | None] = mapped_column(ForeignKey("huddle.id", ondelete="CASCADE"))
    # The huddle's thread root: its reference is saved on the huddle once posted.
    is_root: Mapped[bool] = mapped_column(Boolean, default=False)
    channel: Mapped[str | None] = mapped_column(String(200))
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    body: Mapped[str] = mapped_column(Text)  # the Reply as JSON
    state: Mapped[DeliveryState] = mapped_column(
        _enum(DeliveryState, "delivery_state"), default=DeliveryState.PENDING, index=True
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    error: Mapped[str | None] = mapped_column(Text)


class InboundState(enum.StrEnum):
    PENDING = "pending"  # acked, the command not yet committed
    ANSWERED = "answered"  # the command committed; its answer is kept until delivered
    DONE = "done"
    FAILED = "failed"  # given up after MAX_ATTEMPTS


class Inbound(Base):
    """A request acknowledged to the platform and not yet fully answered.

    Written before the ack, so a process that dies after acking loses nothing:
    another worker picks the row up once its lease runs out and either runs the
    command (it had not committed) or delivers the answer it kept.
    """

    __tablename__ = "inbound"
    __table_args__ = (
        UniqueConstraint("platform", "key"),
        # Take-overs look for open requests whose lease ran out (migration 0010).
        Index("inbound_due_idx", "state", "lease_until"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(16))
    # What makes a delivery unique on its platform (a trigger id, an event id).
    key: Mapped[str] = mapped_column(String(200))
    # The platform's request as JSON: enough to run the command and answer it again.
    payload: Mapped[str | None] = mapped_column(Text)
    reply: Mapped[str | None] = mapped_column(Text)  # the answer as JSON, once committed
    state: Mapped[InboundState] = mapped_column(
        _enum(InboundState, "inbound_state"), default=InboundState.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class PlatformEvent(Base):
    """An inbound platform event already handled: retries and duplicates stop here."""

    __tablename__ = "platform_event"

    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    # Slack "team_id:event_id", a Teams activity id.
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


def _first_suggested(context: Any) -> str | None:
    first = (context.get_current_parameters().get("suggested") or "").split(",", 1)[0]
    return first or None


class QueryLog(Base):
    """Every who-knows question: the raw material of gap reports and KPIs."""

    __tablename__ = "query_log"
    # Fairness counts how often each shortlisted person came first lately.
    __table_args__ = (Index("query_log_first_idx", "first_suggested", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    platform: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    confident: Mapped[bool] = mapped_column(Boolean)
    # Comma-separated person keys in the order shown.
    suggested: Mapped[str] = mapped_column(Text, default="")
    # The first of them (filled in from `suggested`), or NULL when nobody was.
    first_suggested: Mapped[str | None] = mapped_column(String(120), default=_first_suggested)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class AuditEntry(Base):
    """Who changed what, including attempts that were refused."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    # Who acted when no person did (an import from the command line).
    actor_label: Mapped[str] = mapped_column(String(120))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(200))
    allowed: Mapped[bool] = mapped_column(Boolean)
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class Embedding(Base):
    """A stored sentence vector: computed once per text and model, reused by every worker."""

    __tablename__ = "embedding"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)  # "knowledge" or "tag"
    item_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model: Mapped[str] = mapped_column(String(64), primary_key=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class Revision(Base):
    """Change counters that tell each worker when its in-memory matching index is stale."""

    __tablename__ = "revision"

    part: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


class IndexChange(Base):
    """The knowledge entries each knowledge revision changed: a worker whose index is a
    few revisions behind applies just those, instead of reloading every entry."""

    __tablename__ = "index_change"

    id: Mapped[int] = mapped_column(primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, index=True)
    # No foreign key: a deleted entry is a change too. None: any entry may have
    # changed (a set-based write), and workers reload.
    entry_id: Mapped[int | None] = mapped_column(Integer)


class TeamsUser(Base):
    """A Microsoft Teams user the bot knows: the ids mentions and 1:1 chats need.

    `aad_object_id` is the person's `identity.external_id` on Teams; `user_id`
    (29:…) is what the Bot Framework uses for them; `conversation_id` is their 1:1
    chat with the bot once there is one, the reference proactive messages go to.
    """

    __tablename__ = "teams_user"

    id: Mapped[int] = mapped_column(primary_key=True)
    aad_object_id: Mapped[str] = mapped_column(String(200), unique=True)
    user_id: Mapped[str] = mapped_column(String(200), index=True)
    tenant_id: Mapped[str | None] = mapped_column(String(64))
    service_url: Mapped[str] = mapped_column(String(500))
    bot_id: Mapped[str | None] = mapped_column(String(200))
    conversation_id: Mapped[str | None] = mapped_column(String(500))
    # False once Teams refused a proactive message (the app blocked or uninstalled).
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class TeamsChannel(Base):
    """A Teams channel or group chat the bot is in: where huddle threads can be posted."""

    __tablename__ = "teams_channel"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The channel's id (19:…@thread.tacv2), or the group chat's conversation id.
    conversation_id: Mapped[str] = mapped_column(String(500), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # channel, groupChat
    team_id: Mapped[str | None] = mapped_column(String(500), index=True)
    name: Mapped[str | None] = mapped_column(String(200))
    tenant_id: Mapped[str | None] = mapped_column(String(64))
    service_url: Mapped[str] = mapped_column(String(500))
    bot_id: Mapped[str | None] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class HomeWorkspace(Base):
    """The Slack workspace (or Enterprise Grid org) or Teams tenant whoknows serves on a
    platform whose allow-list is not configured: the first installed or seen, kept
    (bot/services/tenants.py). One row a platform."""

    __tablename__ = "home_workspace"

    platform: Mapped[str] = mapped_column(String(16), primary_key=True)
    # A Slack team (T…) or enterprise (E…) id, a Teams tenant id.
    workspace_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(200))
    # "first install", "first seen", or "kept before" (what was stored before migration 0014).
    how: Mapped[str] = mapped_column(String(32))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AccountConflict(Base):
    """A link whoknows would not make on its own: an admin decides (link or merge).

    An account already linked to someone else, a person who already has an account
    on that platform, an e-mail two people claim. Kept until resolved; the same
    doubt seen again (a daily directory sync) is this row, not another.
    """

    __tablename__ = "account_conflict"

    id: Mapped[int] = mapped_column(primary_key=True)
    # reason:platform:external id:e-mail, so a doubt is recorded once.
    key: Mapped[str] = mapped_column(String(600), unique=True)
    reason: Mapped[str] = mapped_column(String(32))
    platform: Mapped[str | None] = mapped_column(String(16))
    external_id: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    # Who holds the account or e-mail now, and who else claims it.
    holder_id: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", ondelete="CASCADE"), index=True
    )
    claimant_id: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", ondelete="CASCADE"), index=True
    )
    # The claimant as the list shows them: a person's key, or an import's line.
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    # Where it was seen: "import", "slack directory", "teams roster", "cli".
    seen_in: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    holder: Mapped[Person | None] = relationship(foreign_keys=[holder_id])
    claimant: Mapped[Person | None] = relationship(foreign_keys=[claimant_id])


class LearningGoal(Base):
    """A topic someone wants to learn (`expertise learn`): huddle threads on it in their
    team invite them to observe. Ended, not deleted, by `unlearn`, so the growth
    timeline keeps it; learning it again is a new goal (one open goal a topic, kept so
    by the person's row lock, as a huddle's opening is)."""

    __tablename__ = "learning_goal"

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tag.id", ondelete="CASCADE"), index=True)
    set_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Their level on the topic when they set the goal (None: they did not hold it), so
    # progress can say what they earned since.
    start_level: Mapped[int | None] = mapped_column(Integer)

    person: Mapped[Person] = relationship()
    tag: Mapped[Tag] = relationship()


class HuddleObserver(Base):
    """A learner invited to watch a huddle thread: mentioned once, never asked to answer,
    never one of its experts (not a participant: escalation, authorisation and the
    time to the first expert do not see them)."""

    __tablename__ = "huddle_observer"
    __table_args__ = (UniqueConstraint("huddle_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    huddle_id: Mapped[int] = mapped_column(ForeignKey("huddle.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    # The goal's topic that brought them.
    tag_id: Mapped[int | None] = mapped_column(ForeignKey("tag.id", ondelete="SET NULL"))
    invited_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # When they first wrote in the thread (it is not an expert reply).
    replied_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    huddle: Mapped[Huddle] = relationship()
    person: Mapped[Person] = relationship()
    tag: Mapped[Tag | None] = relationship()


class Mentorship(Base):
    """A learner and a mentor for one topic, paired by a lead (ended, not deleted)."""

    __tablename__ = "mentorship"

    id: Mapped[int] = mapped_column(primary_key=True)
    learner_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    mentor_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"), index=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tag.id", ondelete="CASCADE"))
    paired_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    paired_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    learner: Mapped[Person] = relationship(foreign_keys=[learner_id])
    mentor: Mapped[Person] = relationship(foreign_keys=[mentor_id])
    paired_by: Mapped[Person | None] = relationship(foreign_keys=[paired_by_id])
    tag: Mapped[Tag] = relationship()


class TeamDigest(Base):
    """A team's weekly digest: when, in which time zone, on or off. A team without a row
    has the defaults (on, Monday 09:00 in its lead's time zone, no leaderboard)."""

    __tablename__ = "team_digest"

    team_id: Mapped[int] = mapped_column(
        ForeignKey("team.id", ondelete="CASCADE"), primary_key=True
    )
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    weekday: Mapped[int] = mapped_column(Integer, default=1)  # ISO: 1 = Monday
    minute: Mapped[int] = mapped_column(Integer, default=9 * 60)  # local, after midnight
    # An IANA zone; None: the team lead's.
    timezone: Mapped[str | None] = mapped_column(String(64))
    # Individual counts, ranked, only when the team chose to show them.
    leaderboard: Mapped[bool] = mapped_column(Boolean, default=False)
    # Where the team's channel is (slack, teams, console); None: where its huddles are.
    platform: Mapped[str | None] = mapped_column(String(16))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    team: Mapped[Team] = relationship()


class SkillDecision(Base):
    """A lead's word on a skill the evidence suggested (bot/services/earned.py).

    `accepted` (verified at the suggested level) and `changed` (verified at another)
    keep that suggestion from coming back until the evidence suggests more;
    `dismissed` keeps it out until `hidden_until`.
    """

    __tablename__ = "skill_decision"
    __table_args__ = (Index("skill_decision_pair_idx", "person_id", "tag_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    tag_id: Mapped[int] = mapped_column(ForeignKey("tag.id", ondelete="CASCADE"), index=True)
    decision: Mapped[str] = mapped_column(String(16))  # accepted, changed, dismissed
    suggested_level: Mapped[int] = mapped_column(Integer)
    level: Mapped[int | None] = mapped_column(Integer)  # the level set, when one was
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())
    hidden_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


class ExampleSource(enum.StrEnum):
    HELPFUL = "helpful"  # "this person helped" on an expert card
    HUDDLE = "huddle"  # a huddle thread resolved with the experts who replied
    CONTACT = "contact"  # a Message click not followed by the same question again
    LEAD = "lead"  # an example question a lead gave a tag, or its description


class LabelledExample(Base):
    """A question whoknows saw answered, kept to teach each tag's model what its
    questions look like. Never a knowledge entry: agents are never shown one.

    Labelled by a tag (a lead's example, a resolved huddle's tags) or by the person
    who helped, whose tags the model then chooses among.
    """

    __tablename__ = "labelled_example"

    id: Mapped[int] = mapped_column(primary_key=True)
    # What makes recording idempotent: one vote per question, voter and expert.
    key: Mapped[str] = mapped_column(String(200), unique=True)
    source: Mapped[ExampleSource] = mapped_column(_enum(ExampleSource, "example_source"))
    text: Mapped[str] = mapped_column(Text)
    tag_id: Mapped[int | None] = mapped_column(ForeignKey("tag.id", ondelete="CASCADE"), index=True)
    person_id: Mapped[int | None] = mapped_column(
        ForeignKey("person.id", ondelete="CASCADE"), index=True
    )
    asker_id: Mapped[int | None] = mapped_column(ForeignKey("person.id", ondelete="SET NULL"))
    query_id: Mapped[int | None] = mapped_column(ForeignKey("query_log.id", ondelete="SET NULL"))
    huddle_id: Mapped[int | None] = mapped_column(ForeignKey("huddle.id", ondelete="SET NULL"))
    # A Message click counts once this passes with no new question on the same topic.
    pending_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
