"""Which Slack workspaces and Teams tenants whoknows serves; everyone else is refused.

Configured (WHOKNOWS_SLACK_WORKSPACES, WHOKNOWS_TEAMS_TENANTS): exactly those ids
(`*`: any). Unset, one "home" a platform: for Slack with one bot token, that
token's workspace; for a single-tenant Teams bot, its tenant; otherwise the first
Slack workspace installed through OAuth, or the first Teams tenant whose activity
came with a valid token, recorded in `home_workspace` (first come, first kept,
across processes) and kept from then on: a later install elsewhere is refused.

A Slack request is served when its workspace's team id, or its Enterprise Grid
org's id, is allowed; an org id allows every workspace of that org.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select

from bot.db import Database
from bot.db.engine import insert_for
from bot.db.models import HomeWorkspace
from bot.services.audit import record

log = logging.getLogger(__name__)

ANY = "*"
# What the configuration variable of each platform is called (for log lines).
VARIABLES = {"slack": "WHOKNOWS_SLACK_WORKSPACES", "teams": "WHOKNOWS_TEAMS_TENANTS"}
FIRST_INSTALL = "first install"
FIRST_SEEN = "first seen"
REFUSED = "workspace.refused"  # the audit action of a request from elsewhere
_SEPARATORS = re.compile(r"[\s,;]+")


def parse_ids(text: str | None) -> frozenset[str] | None:
    """`T0123, E0456` (commas, semicolons or spaces): the ids; None when unset or empty."""
    ids = frozenset(i.casefold() for i in _SEPARATORS.split(text or "") if i)
    return ids or None


class AllowList:
    """The workspaces (or tenants) one platform serves."""

    def __init__(
        self,
        db: Database,
        platform: str,
        configured: frozenset[str] | None,
        clock: Callable[[], datetime],
        *,
        fixed_home: str | None = None,
    ) -> None:
        self.db = db
        self.platform = platform
        self.configured = configured
        self.clock = clock
        # A home that is not chosen by who comes first: a single-tenant bot's tenant.
        self._home: str | None = fixed_home.casefold() if fixed_home else None
        self._fixed = fixed_home is not None

    @property
    def any(self) -> bool:
        return self.configured is not None and ANY in self.configured

    @property
    def settled(self) -> bool:
        """`admits` needs no database: configured, or the home already known."""
        return self.configured is not None or self._home is not None

    def fix_home(self, workspace_id: str) -> None:
        """The home, known from elsewhere (the workspace of a single bot token)."""
        self._home, self._fixed = workspace_id.casefold(), True

    def home(self) -> str | None:
        """The home workspace: fixed, or recorded (read once it is there)."""
        if self._home is None:
            with self.db.reading() as session:
                found = session.get(HomeWorkspace, self.platform)
                self._home = found.workspace_id.casefold() if found is not None else None
        return self._home

    def admits(self, *ids: str | None) -> bool:
        """Whether any of these ids (a team's, its org's) is served. Unset and no home
        recorded yet: nobody is (a request cannot come before the install that records it)."""
        given = {i.casefold() for i in ids if i}
        if self.configured is not None:
            return self.any or bool(given & self.configured)
        home = self.home()
        return home is not None and home in given

    def claim(
        self, workspace_id: str, how: str, name: str | None = None, *, within: str | None = None
    ) -> bool:
        """A workspace arriving (installed, or seen for the first time): served or not.
        Unset and no home yet: it becomes the home, unless another process's came first.
        `within`: the org it belongs to (an allowed org serves its workspaces)."""
        if self.configured is not None or self._fixed or self.home() is not None:
            return self.admits(workspace_id, within)
        with self.db.unit_of_work() as session:
            insert = insert_for(session.get_bind().dialect.name)
            session.execute(
                insert(HomeWorkspace)
                .values(
                    platform=self.platform,
                    workspace_id=workspace_id[:64],
                    name=name[:200] if name else None,
                    how=how,
                    recorded_at=self.clock(),
                )
                .on_conflict_do_nothing(index_elements=[HomeWorkspace.platform])
            )
            kept = session.scalar(
                select(HomeWorkspace.workspace_id).where(HomeWorkspace.platform == self.platform)
            )
        self._home = kept.casefold() if kept else None
        if self._home == workspace_id.casefold():
            log.warning(
                "%s: %s (%s) is now the one workspace served, as the %s; set %s to serve others",
                self.platform,
                workspace_id,
                name or "no name given",
                how,
                VARIABLES.get(self.platform, "the allow-list"),
            )
        return self.admits(workspace_id, within)

    def describe(self) -> str:
        """What is served, for the log line at start."""
        variable = VARIABLES.get(self.platform, "the allow-list")
        if self.any:
            return f"every workspace ({variable}=*)"
        if self.configured is not None:
            return f"{', '.join(sorted(self.configured))} ({variable})"
        home = self.home()
        if home is None:
            return f"the first to install or reach whoknows, once it has (set {variable} to choose)"
        how = "its own" if self._fixed else "the first one, kept"
        return f"{home} ({how}; set {variable} to serve others)"

    def refused(
        self, workspace_id: str | None, who: str | None, what: str, **detail: str | None
    ) -> None:
        """A request from a workspace not served: one log line and an audit row (the
        outsider is no person here, so the row names them by their platform id)."""
        variable = VARIABLES.get(self.platform, "the allow-list")
        log.warning(
            "refused %s from %s workspace %s, which is not served (see %s)",
            what,
            self.platform,
            workspace_id or "(none named)",
            variable,
        )
        with self.db.unit_of_work() as session:
            record(
                session,
                None,
                REFUSED,
                f"{self.platform} workspace {workspace_id or '?'}"[:200],
                allowed=False,
                actor_label=f"{self.platform}:{who or '?'}"[:120],
                what=what,
                **{k: v for k, v in detail.items() if v},
            )
