"""Forgetting a person: everything whoknows holds about them, table by table.

`forget` removes a person's profile, e-mail, accounts, skills and presence, the
questions they asked the bot (their own words), and every message that names
them once it has been delivered; it replaces their handle, name, e-mail and
account ids wherever they still appear (the audit log, others' suggestions,
messages still waiting to go out). What they did for the team stays: answers
they wrote and huddle threads they were in (posted in a team channel) remain,
credited to an anonymous former colleague, and the audit log keeps the fact
of each change, not the person.

`TABLES` says what forgetting does to every table of the schema, and
`NO_PERSON_DATA` lists the tables that hold nothing about anyone; a test lists
the schema and fails on a table in neither, so a new table holding person data
cannot be forgotten about.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import column, delete, false, func, or_, select, table, update
from sqlalchemy.orm import Session

from bot.db.models import (
    AccountConflict,
    AuditEntry,
    DeliveryState,
    HuddleObserver,
    Identity,
    LabelledExample,
    LearningGoal,
    Mentorship,
    Outbox,
    Person,
    Presence,
    QueryLog,
    Role,
    Skill,
    SkillDecision,
    TeamsUser,
)
from bot.services.audit import record

FORGOTTEN_NAME = "Former colleague"

TABLES = {
    "person": "kept as an anonymous former colleague: handle, name, e-mail, id as given, "
    "team, role, time zone and hours reset; their dashboard sessions end (removed)",
    "identity": "deleted",
    "skill": "deleted",
    "presence": "deleted",
    "query_log": "their questions deleted; their handle in others' suggestions replaced",
    "audit_log": "their handle, name, e-mail and account ids replaced in actor, target, detail",
    "outbox": "messages to them deleted; delivered ones naming them deleted; waiting ones "
    "rewritten without their name",
    "account_conflict": "doubts about their accounts or e-mail deleted",
    "teams_user": "their Teams user (ids for mentions and 1:1 chats) deleted",
    "slack_directory": "which workspace their Slack accounts are in: deleted",
    "slack_installations": "an installation they made keeps no user id or user token of theirs",
    "huddle": "kept (a thread in a team channel), asked and closed by the anonymous person",
    "huddle_participant": "kept, as the anonymous person",
    "knowledge_entry": "kept: the team's knowledge",
    "knowledge_author": "kept: their answers credited to the anonymous person",
    "helpful_vote": "kept, as the anonymous person's",
    "learning_goal": "deleted",
    "labelled_example": "kept (what a topic's questions look like, for its model): no "
    "longer theirs as asker, their name replaced in the text; as the one who helped, "
    "the anonymous person's",
    "mentorship": "deleted, as learner or mentor",
    "huddle_observer": "deleted: which threads they observed is their learning",
    "skill_decision": "decisions on their own skills deleted; decisions they made as a lead "
    "kept, as the anonymous person's",
    "inbound": "transient: a request's content is dropped once answered, rows pruned "
    "after a week (bot.runtime.retention)",
}
NO_PERSON_DATA = frozenset(
    {
        "alembic_version",
        "team",
        "tag",
        "tag_alias",
        "knowledge_tag",
        "job",
        "platform_event",  # event ids only
        "embedding",  # vectors of tags and knowledge
        "revision",
        "index_change",  # which knowledge entries changed
        "team_digest",  # a team's digest settings
        "teams_channel",
        "home_workspace",  # the workspace or tenant served: its id and name
        "slack_bots",  # the bot's own tokens and user
        "slack_oauth_states",  # random states
    }
)
# SQLite's full-text tables: copies of knowledge_entry's text, kept as it is.
COPIES_OF_KNOWLEDGE = "knowledge_fts"

# Tables the adapters own (migrations 0007 and 0008): the core names only what it uses.
_SLACK_DIRECTORY = table("slack_directory", column("slack_id"))
_SLACK_INSTALLATIONS = table(
    "slack_installations",
    column("user_id"),
    column("user_token"),
    column("user_refresh_token"),
    column("user_scopes"),
    column("user_token_expires_at"),
)
_ENCODED = {"Mention", "PersonCard"}  # reply elements that carry a person_id


class _Traces:
    """A person's identifiers, found and replaced in free text."""

    def __init__(self, person: Person, accounts: list[tuple[str, str]], anonymous: str) -> None:
        self.person_id, self.anonymous = person.id, anonymous
        self.name = person.display_name
        words = {person.key, person.given_id or "", person.email or "", self.name}
        words |= {external_id for _, external_id in accounts}
        self.words = sorted((w for w in words if len(w.strip()) >= 2), key=len, reverse=True)
        self._pattern = (
            re.compile(
                r"(?<!\w)(?:" + "|".join(re.escape(w) for w in self.words) + r")(?!\w)",
                re.IGNORECASE,
            )
            if self.words
            else None
        )

    def _replacement(self, found: re.Match[str]) -> str:
        return FORGOTTEN_NAME if found.group(0).lower() == self.name.lower() else self.anonymous

    def text(self, value: str) -> str:
        return value if self._pattern is None else self._pattern.sub(self._replacement, value)

    def walk(self, value: Any) -> Any:
        """JSON as loaded, with every trace replaced; a reply element about the person
        (a mention, a card) names the former colleague."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.walk(item) for item in value]
        if not isinstance(value, dict):
            return value
        walked = {key: self.walk(item) for key, item in value.items()}
        fields = walked.get("fields")
        about = isinstance(fields, dict) and fields.get("person_id") == self.person_id
        if walked.get("type") in _ENCODED and about:
            fields["name"] = FORGOTTEN_NAME
            if "key" in fields:
                fields["key"] = self.anonymous
            if "handle" in fields:
                fields["handle"] = None
        return walked

    def like(self, *columns: Any) -> Any:
        """Rows whose columns may hold a trace (the caller checks each for sure): as
        written, or as JSON writes it (`\\u00eb` for ë, in the audit log's detail)."""
        spelled = {form for w in self.words for form in (w, json.dumps(w)[1:-1])}
        if not spelled:
            return false()
        return or_(
            *(c.ilike(f"%{_escaped(word)}%", escape="\\") for c in columns for word in spelled)
        )


def _escaped(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def forget(session: Session, person: Person, now: datetime, actor_label: str) -> str:
    """Forget `person` (see the module); returns their anonymous handle."""
    old_key = person.key
    anonymous = f"forgotten-{person.id}"
    accounts = [
        (platform, external_id)
        for platform, external_id in session.execute(
            select(Identity.platform, Identity.external_id).where(Identity.person_id == person.id)
        )
    ]
    traces = _Traces(person, accounts, anonymous)
    _forget_accounts(session, person, accounts, traces)
    _forget_messages(session, person, traces)
    _forget_questions(session, person, old_key, traces)
    _forget_in_audit(session, person, traces)
    session.execute(delete(Identity).where(Identity.person_id == person.id))
    session.execute(delete(Presence).where(Presence.person_id == person.id))
    session.execute(delete(Skill).where(Skill.person_id == person.id))
    # What they set out to learn, and with whom, is their profile too.
    session.execute(delete(LearningGoal).where(LearningGoal.person_id == person.id))
    session.execute(delete(HuddleObserver).where(HuddleObserver.person_id == person.id))
    session.execute(delete(SkillDecision).where(SkillDecision.person_id == person.id))
    session.execute(
        delete(Mentorship).where(
            (Mentorship.learner_id == person.id) | (Mentorship.mentor_id == person.id)
        )
    )
    session.expire(person)
    person.key, person.display_name, person.timezone = anonymous, FORGOTTEN_NAME, "UTC"
    person.given_id, person.email, person.email_key = None, None, None
    person.role, person.team_id = Role.AGENT, None
    person.work_start_min, person.work_end_min, person.work_days = 9 * 60, 17 * 60, "12345"
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


def _ids_on(accounts: list[tuple[str, str]], platform: str) -> list[str]:
    found = [external_id for p, external_id in accounts if p == platform]
    return sorted({*found, *(i.lower() for i in found), *(i.upper() for i in found)})


def _forget_accounts(
    session: Session, person: Person, accounts: list[tuple[str, str]], traces: _Traces
) -> None:
    teams, slack = _ids_on(accounts, "teams"), _ids_on(accounts, "slack")
    if teams:
        session.execute(delete(TeamsUser).where(TeamsUser.aad_object_id.in_(teams)))
    if slack:
        session.execute(delete(_SLACK_DIRECTORY).where(_SLACK_DIRECTORY.c.slack_id.in_(slack)))
        session.execute(
            update(_SLACK_INSTALLATIONS)
            .where(_SLACK_INSTALLATIONS.c.user_id.in_(slack))
            .values(
                user_id="",
                user_token=None,
                user_refresh_token=None,
                user_scopes=None,
                user_token_expires_at=None,
            )
        )
    about = [AccountConflict.holder_id == person.id, AccountConflict.claimant_id == person.id]
    if person.email:
        about.append(func.lower(AccountConflict.email) == person.email.lower())
    for platform, external_id in accounts:
        about.append(
            (AccountConflict.platform == platform)
            & (func.lower(AccountConflict.external_id) == external_id.lower())
        )
    session.execute(delete(AccountConflict).where(or_(*about)))
    # A doubt an import raised before the person existed names them only by line and id.
    for row in session.scalars(
        select(AccountConflict).where(traces.like(AccountConflict.claimed_by))
    ):
        if traces.text(row.claimed_by or "") != row.claimed_by:
            session.delete(row)


def _forget_messages(session: Session, person: Person, traces: _Traces) -> None:
    session.execute(delete(Outbox).where(Outbox.person_id == person.id))
    mentioned = or_(
        traces.like(Outbox.body),
        Outbox.body.like(f'%"person_id":{person.id}%'),
    )
    for row in session.scalars(select(Outbox).where(mentioned)):
        body = json.dumps(
            traces.walk(json.loads(row.body)), ensure_ascii=False, separators=(",", ":")
        )
        if body == row.body:
            continue
        if row.state == DeliveryState.SENT:
            session.delete(row)  # delivered: nothing left to do with it
        else:
            row.body = body  # still to go out (or failed): without their name


def _forget_questions(session: Session, person: Person, old_key: str, traces: _Traces) -> None:
    session.execute(delete(QueryLog).where(QueryLog.person_id == person.id))
    session.execute(
        update(LabelledExample).where(LabelledExample.asker_id == person.id).values(asker_id=None)
    )
    for example in session.scalars(
        select(LabelledExample).where(traces.like(LabelledExample.text))
    ):
        example.text = traces.text(example.text)
    rows = session.scalars(select(QueryLog).where(traces.like(QueryLog.suggested, QueryLog.text)))
    for row in rows:
        keys = [traces.anonymous if key == old_key else key for key in row.suggested.split(",")]
        row.suggested = ",".join(keys)
        if row.first_suggested == old_key:
            row.first_suggested = traces.anonymous
        row.text = traces.text(row.text)


def _forget_in_audit(session: Session, person: Person, traces: _Traces) -> None:
    rows = session.scalars(
        select(AuditEntry).where(
            or_(
                AuditEntry.actor_id == person.id,
                traces.like(AuditEntry.target, AuditEntry.detail, AuditEntry.actor_label),
            )
        )
    )
    for row in rows:
        if row.actor_id == person.id:
            row.actor_label = traces.anonymous
        else:
            row.actor_label = traces.text(row.actor_label)
        row.target = traces.text(row.target)
        if row.detail:
            row.detail = _rewritten_json(row.detail, traces.walk)


def _rewritten_json(text: str, walk: Callable[[Any], Any]) -> str:
    try:
        loaded = json.loads(text)
    except ValueError:
        return text
    return json.dumps(walk(loaded), sort_keys=True, default=str)
