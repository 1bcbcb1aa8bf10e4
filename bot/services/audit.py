"""The audit log: every privileged change, and every refused attempt at one."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from bot.db.models import AuditEntry, Person


class Denied(Exception):
    """A refused privileged action; whoever catches it audits it in a transaction of
    its own (`audit`), since the refused one rolls back."""

    def __init__(
        self,
        message: str,
        *,
        actor_id: int | None,
        action: str,
        target: str,
        actor_label: str | None = None,
        **detail: Any,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.actor_id = actor_id
        self.action = action
        self.target = target
        self.actor_label = actor_label
        self.detail = detail

    def audit(self, session: Session) -> AuditEntry:
        return record(
            session,
            self.actor_id,
            self.action,
            self.target,
            allowed=False,
            actor_label=self.actor_label,
            **self.detail,
        )


def record(
    session: Session,
    actor_id: int | None,
    action: str,
    target: str,
    *,
    allowed: bool = True,
    actor_label: str | None = None,
    **detail: Any,
) -> AuditEntry:
    if actor_label is None:
        actor = session.get(Person, actor_id) if actor_id is not None else None
        actor_label = actor.key if actor is not None else "system"
    entry = AuditEntry(
        actor_id=actor_id,
        actor_label=actor_label,
        action=action,
        target=target,
        allowed=allowed,
        detail=json.dumps(detail, sort_keys=True, default=str) if detail else "",
    )
    session.add(entry)
    return entry


def entry(
    actor_id: int | None,
    action: str,
    target: str,
    *,
    actor_label: str,
    allowed: bool = True,
    **detail: Any,
) -> dict[str, Any]:
    """An audit row as values, for `record_many`: what `record` writes, without a flush."""
    return {
        "actor_id": actor_id,
        "actor_label": actor_label,
        "action": action,
        "target": target,
        "allowed": allowed,
        "detail": json.dumps(detail, sort_keys=True, default=str) if detail else "",
    }


def record_many(session: Session, entries: list[dict[str, Any]]) -> None:
    """Many audit rows in one statement (an import's, a row or two for each person)."""
    if entries:
        session.execute(insert(AuditEntry), entries)
