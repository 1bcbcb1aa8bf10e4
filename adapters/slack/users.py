"""Who a Slack user is: the person behind a Slack user id.

Someone who asks, presses a button or is mentioned is found by their Slack
identity, or linked the first time from their profile (`users.info`) as the
directory read links (`adapters/slack/directory.py`, `bot/services/accounts.py`).
What was found is kept in memory (safe to lose) and renewed when Slack says the
profile changed (`team_join`, `user_change`). Someone mentioned whom Slack places
in a workspace not served is nobody whoknows knows (`Outsider`, tenancy.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack import directory, translate
from adapters.slack.tenancy import Outsider, SlackTenancy
from bot.db.retry import retrying
from bot.services import Services, accounts, people

log = logging.getLogger(__name__)
PLATFORM = translate.PLATFORM
SEEN_IN = directory.SEEN_IN


class SlackUsers:
    """Slack user ids to person ids, through `client` (users.info) for someone new."""

    def __init__(self, services: Services, client: AsyncWebClient, tenancy: SlackTenancy) -> None:
        self.services = services
        self.client = client
        self.tenancy = tenancy
        self._people: dict[str, int] = {}  # Slack user id → person id; safe to lose

    async def person_id(self, user_id: str, *, mentioned: bool = False) -> int:
        """The person behind a Slack user id, made from their profile the first time.
        Someone mentioned whom Slack places in a workspace not served: Outsider."""
        if user_id in self._people:
            return self._people[user_id]
        found = await asyncio.to_thread(retrying, self._lookup, user_id)
        if found is None:
            try:
                info = (await self.client.users_info(user=user_id))["user"]
            except Exception:  # no profile: a placeholder the next sync fills in
                log.warning("users.info failed for a new user; provisioning without a profile")
                info = {"id": user_id, "name": user_id}
            if mentioned and await self.tenancy.foreign(info):
                raise Outsider(user_id)
            found = await asyncio.to_thread(directory.linking, self._sync_user, info)
        self._people[user_id] = found
        return found

    def _lookup(self, user_id: str) -> int | None:
        with self.services.db.reading() as session:
            person = people.by_identity(session, PLATFORM, user_id)
            return person.id if person else None

    def _sync_user(self, user: dict[str, Any]) -> int:
        with self.services.db.unit_of_work() as session:
            person = accounts.link_account(
                session, directory.account(user), self.services.clock(), seen_in=SEEN_IN
            )
            return person.id

    async def mentions(self, text: str) -> dict[str, int]:
        """The people mentioned in `text`: each mention's token → person id."""
        found = {}
        for token, user in translate.mentioned_users(text).items():
            try:
                found[token] = await self.person_id(user, mentioned=True)
            except Outsider:  # a Slack Connect guest from elsewhere: nobody whoknows knows
                log.info("a mention of someone in a Slack workspace not served was left out")
        return found

    async def changed(self, user: Any) -> None:
        """A Slack user object from team_join or user_change: linked as the directory
        read links (bots skipped, a deactivated account no longer suggested, a changed
        e-mail followed)."""
        if not isinstance(user, dict) or not user.get("id"):
            return
        _, found = await asyncio.to_thread(
            directory.linking, directory.link_users, self.services.db, [user], self.services.clock()
        )
        self._people.pop(str(user["id"]), None)
        self._people.update(found)
