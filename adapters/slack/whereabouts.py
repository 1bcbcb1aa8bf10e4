"""Which Slack workspace a channel or user is in, so each call carries the right token.

With OAuth installs (installations.py) a delivery from the outbox or a presence
poll has no request to say whose token to use: `Whereabouts.tokens_for(channel or
user)` gives its workspace's when a request from there named it, otherwise each
installed workspace's in turn (a channel or user of another workspace is "not
found" there, ELSEWHERE).

What a request told us is kept in memory and in the table slack_directory
(migration 0008), written after the request (never before its ack) and read when
memory does not know: a restarted process, or another one on the same database,
knows what any of them learned. An uninstall forgets the workspace's channels and
users (`forget`, revocations.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import Boolean, Column, Index, MetaData, String, Table, select

from adapters.slack.installations import Workspace, Workspaces, error_code
from bot.db.engine import READING, insert_for

log = logging.getLogger(__name__)

# Channels and users whose workspace a request told us; past this, the oldest go.
DIRECTORY_SIZE = 50_000
# Slack's answer when a channel or user belongs to another workspace.
ELSEWHERE = {"channel_not_found", "user_not_found"}

# Which workspace a channel or user is in: migration 0008's table (a test compares them).
DIRECTORY = Table(
    "slack_directory",
    MetaData(),
    Column("slack_id", String(32), primary_key=True),
    Column("enterprise_id", String(32)),
    Column("team_id", String(32)),
    Column("is_enterprise_install", Boolean, nullable=False),
    Index("slack_directory_workspace_idx", "enterprise_id", "team_id"),
)
# Ids looked up, and rows written, in one statement (within SQLite's bound parameters).
LOOKUP_BATCH = 500
SAVE_BATCH = 200


class Whereabouts:
    """The workspace of each channel and user a request, a delivery or a poll told us,
    and the tokens of `workspaces` to reach them with."""

    def __init__(self, workspaces: Workspaces) -> None:
        self.workspaces = workspaces
        self.engine = workspaces.engine
        self._directory: OrderedDict[str, Workspace] = OrderedDict()
        self._unsaved: dict[str, Workspace] = {}  # learned, not yet in slack_directory
        self._saving: asyncio.Task[None] | None = None

    def remember(self, workspace: Workspace, *slack_ids: str | None) -> None:
        """`slack_ids` are in `workspace`. Known at once in this process; written to
        slack_directory, when new or changed, by a task of its own after the caller's
        work (a request's ack) rather than during it."""
        for slack_id in slack_ids:
            if slack_id:
                if self._directory.get(slack_id) != workspace:
                    self._unsaved[slack_id] = workspace
                self._directory[slack_id] = workspace
                self._directory.move_to_end(slack_id)
        self._trim()
        if not self._unsaved or (self._saving is not None and not self._saving.done()):
            return  # nothing new, or the running save takes it too
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop: write now
            batch, self._unsaved = self._unsaved, {}
            self._save(batch)
            return
        self._saving = loop.create_task(self._saving_all())

    def _trim(self) -> None:
        while len(self._directory) > DIRECTORY_SIZE:
            self._directory.popitem(last=False)

    async def _saving_all(self) -> None:
        while self._unsaved:
            batch, self._unsaved = self._unsaved, {}
            try:
                await asyncio.to_thread(self._save, batch)
            except Exception as error:
                log.warning(
                    "could not keep the workspaces of %d Slack channel(s) or user(s) (%s)",
                    len(batch),
                    error_code(error),
                )
                for slack_id, workspace in batch.items():  # learned again next time
                    if self._directory.get(slack_id) == workspace:
                        del self._directory[slack_id]

    def _save(self, batch: dict[str, Workspace]) -> None:
        """One upsert: each id's workspace, the latest told. In the order of the ids, so
        that two processes writing the same rows lock them in the same order."""
        rows = [
            {
                "slack_id": slack_id,
                "enterprise_id": workspace.enterprise_id,
                "team_id": workspace.team_id,
                "is_enterprise_install": workspace.org_wide,
            }
            for slack_id, workspace in sorted(batch.items(), key=lambda item: item[0])
        ]
        insert = insert_for(self.engine.dialect.name)
        with self.engine.begin() as connection:
            for start in range(0, len(rows), SAVE_BATCH):
                statement = insert(DIRECTORY).values(rows[start : start + SAVE_BATCH])
                excluded = statement.excluded
                connection.execute(
                    statement.on_conflict_do_update(
                        index_elements=[DIRECTORY.c.slack_id],
                        set_={
                            "enterprise_id": excluded.enterprise_id,
                            "team_id": excluded.team_id,
                            "is_enterprise_install": excluded.is_enterprise_install,
                        },
                    )
                )

    async def saved(self) -> None:
        """Everything remembered so far is in slack_directory (or could not be written)."""
        while self._saving is not None and not self._saving.done():
            await asyncio.shield(self._saving)

    def _lookup(self, slack_ids: list[str]) -> dict[str, Workspace]:
        c = DIRECTORY.c
        found: dict[str, Workspace] = {}
        with self.engine.connect().execution_options(**{READING: True}) as connection:
            for start in range(0, len(slack_ids), LOOKUP_BATCH):
                rows = connection.execute(
                    select(c.slack_id, c.enterprise_id, c.team_id, c.is_enterprise_install).where(
                        c.slack_id.in_(slack_ids[start : start + LOOKUP_BATCH])
                    )
                )
                for slack_id, enterprise_id, team_id, org_wide in rows:
                    found[slack_id] = Workspace.of(enterprise_id, team_id, org_wide)
        return found

    async def workspaces_of(self, slack_ids: list[str]) -> dict[str, Workspace]:
        """The workspace of each of these channels and users that any process learned:
        from memory, else from slack_directory (then kept in memory)."""
        found = {i: self._directory[i] for i in slack_ids if i in self._directory}
        missing = sorted({i for i in slack_ids if i and i not in found})
        if missing:
            stored = await asyncio.to_thread(self._lookup, missing)
            for slack_id, workspace in stored.items():
                # Unless this process learned otherwise meanwhile.
                found[slack_id] = self._directory.setdefault(slack_id, workspace)
            self._trim()
        return found

    async def workspace_of(self, slack_id: str) -> Workspace | None:
        return (await self.workspaces_of([slack_id])).get(slack_id)

    def _stored_in(self, workspace: Workspace) -> set[str]:
        c = DIRECTORY.c
        with self.engine.connect().execution_options(**{READING: True}) as connection:
            return set(
                connection.scalars(
                    select(c.slack_id).where(
                        c.enterprise_id == workspace.enterprise_id,
                        c.team_id == workspace.team_id,
                    )
                )
            )

    async def known_in(self, workspace: Workspace) -> set[str]:
        """The channels and users any process learned are in `workspace`."""
        await self.saved()
        stored = await asyncio.to_thread(self._stored_in, workspace)
        here = {i for i in stored if self._directory.get(i, workspace) == workspace}
        return here | {i for i, w in self._directory.items() if w == workspace}

    async def tokens_for(self, slack_id: str | None) -> list[tuple[Workspace, str]]:
        """The tokens to try for a channel or user: its workspace's when known, else every
        installed workspace's (the right one answers; the others say "not found")."""
        known = await self.workspace_of(slack_id) if slack_id else None
        candidates = [known] if known is not None else await self.workspaces.installed()
        found = []
        for workspace in candidates:
            token = await self.workspaces.token(workspace)
            if token:
                found.append((workspace, token))
        return found

    async def forget(self, workspace: Workspace) -> None:
        """What slack_directory knew of the channels and users of `workspace`, uninstalled:
        gone (this process still knows, to say why a delivery there fails)."""
        await self.saved()  # nothing learned before this is written after it
        await asyncio.to_thread(self._forget, workspace)

    def _forget(self, workspace: Workspace) -> None:
        c = DIRECTORY.c
        with self.engine.begin() as connection:
            connection.execute(
                DIRECTORY.delete().where(
                    c.enterprise_id == workspace.enterprise_id, c.team_id == workspace.team_id
                )
            )

    # --- requests ---
    async def middleware(self, context: Any, next: Callable[[], Awaitable[Any]]) -> Any:
        """After bolt's authorize: the request's user and channel are in its workspace."""
        if context.get("bot_token"):
            self.remember(Workspace.asking(context), context.user_id, context.channel_id)
        return await next()
