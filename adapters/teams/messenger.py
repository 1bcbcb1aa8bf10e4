"""The Teams Messenger: the delivery port over the Bot Framework connector's REST API.

- post: a new post in a channel = a new conversation in that channel; its
  reference is (channel id, the post's activity id), and replies to it go to
  the conversation `<channel id>;messageid=<post id>`;
- direct_message: proactive, into the person's stored 1:1 chat, created with
  them first when there is none;
- update: the activity replaced in place.
403 on a 1:1 chat means the person blocked the bot or removed the app: the
reference is marked inactive (no more tries) and the caller is told.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

import aiohttp

from adapters.teams import store
from adapters.teams.credentials import AppToken
from adapters.teams.http import HttpError, Sleep, request_json
from adapters.teams.render import render_activity
from adapters.teams.translate import PLATFORM, THREAD
from bot.db import Database
from bot.runtime.ports import DeliveryError, MessageRef
from bot.types import Reply

log = logging.getLogger(__name__)
T = TypeVar("T")

NO_CHANNEL = (
    "no Teams channel {channel!r} where the app is installed: install it in that team, and "
    "use a standard channel (Teams bots cannot post in private or shared channels)"
)
CANNOT_POST = (
    "Teams refused a post in channel {channel!r} (HTTP {status}): bots can post only in "
    "standard channels of teams the app is installed in, not in private or shared ones"
)
NO_ACCOUNT = "no Teams account known for {handle}"
BLOCKED = "{handle} blocked the bot or removed the app in Teams"
GONE = "Teams no longer has that message (HTTP {status})"
PAGE_SIZE = 500  # the most Teams gives in one page of a roster
# A roster is read in the background: a throttled page may wait longer than a send.
ROSTER_ATTEMPTS = 6
ROSTER_MAX_WAIT = 120.0


def conversations(*parts: str) -> str:
    """A connector path; conversation ids hold `:`, `;` and `@`, so each part is encoded."""
    return "/v3/conversations" + "".join("/" + quote(part, safe="") for part in parts)


def _thread(ref: store.Reference | None, root: MessageRef) -> str:
    """The conversation replies to a post go to: the channel thread, or the chat itself."""
    if ref is not None and ref.kind == "channel":
        return f"{root.channel}{THREAD}{root.message}"
    return root.channel


class TeamsMessenger:
    platform = PLATFORM

    def __init__(
        self,
        db: Database,
        clock: Callable[[], datetime],
        token: AppToken | None,
        *,
        bot_id: str | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.db = db
        self.clock = clock
        self.token = token
        # The bot's own id ("28:<app id>"), for chats it starts before any activity named it.
        self.bot_id = bot_id
        self.sleep = sleep
        self._session: aiohttp.ClientSession | None = None

    # --- plumbing -----------------------------------------------------------------------
    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _db(self, read: Callable[..., T], *args: Any) -> T:
        def run() -> T:
            with self.db.unit_of_work() as session:
                return read(session, *args)

        return await asyncio.to_thread(run)

    async def call(
        self, method: str, service_url: str, path: str, body: Any = None, **retry: Any
    ) -> Any:
        """One connector call; `retry` (attempts, max_wait) as `request_json` takes them."""
        token = await self.token.get() if self.token is not None else None
        return await request_json(
            self.session,
            method,
            service_url.rstrip("/") + path,
            token=token,
            body=body,
            sleep=self.sleep,
            **retry,
        )

    # --- the Messenger port -------------------------------------------------------------
    async def post(self, channel: str, reply: Reply) -> MessageRef:
        ref = await self._db(store.find_channel, channel)
        if ref is None or not ref.active:
            raise DeliveryError(NO_CHANNEL.format(channel=channel))
        activity = render_activity(reply)
        if ref.kind != "channel":  # a group chat has no threads: post into it
            data = await self.call(
                "POST", ref.service_url, conversations(ref.conversation_id, "activities"), activity
            )
            return MessageRef(ref.conversation_id, str(data["id"]))
        body = {
            "isGroup": True,
            "bot": {"id": ref.bot_id or self.bot_id},
            "tenantId": ref.tenant_id,
            "channelData": {
                "channel": {"id": ref.conversation_id},
                "tenant": {"id": ref.tenant_id},
            },
            "activity": activity,
        }
        try:
            data = await self.call("POST", ref.service_url, conversations(), body)
        except HttpError as error:
            if error.status in {400, 403, 404}:
                raise DeliveryError(
                    CANNOT_POST.format(channel=ref.name or channel, status=error.status)
                ) from error
            raise
        message = data.get("activityId") or str(data.get("id", "")).partition(THREAD)[2]
        return MessageRef(ref.conversation_id, str(message))

    async def reply_in_thread(self, root: MessageRef, reply: Reply) -> MessageRef:
        ref = await self._db(store.conversation, root.channel)
        if ref is None:
            raise DeliveryError(NO_CHANNEL.format(channel=root.channel))
        path = conversations(_thread(ref, root), "activities", root.message)
        activity = {**render_activity(reply), "replyToId": root.message}
        try:
            data = await self.call("POST", ref.service_url, path, activity)
        except HttpError as error:
            if error.status in {403, 404}:
                raise DeliveryError(GONE.format(status=error.status)) from error
            raise
        return MessageRef(root.channel, str(data["id"]))

    async def direct_message(
        self, handle: str, reply: Reply, *, handles: Mapping[int, str] | None = None
    ) -> MessageRef:
        user = await self._db(store.user_reference, handle)
        if user is None:
            raise DeliveryError(NO_ACCOUNT.format(handle=handle))
        if not user.active:
            raise DeliveryError(BLOCKED.format(handle=handle))
        try:
            chat = user.conversation_id or await self._open_chat(user)
            data = await self.call(
                "POST",
                user.service_url,
                conversations(chat, "activities"),
                render_activity(reply, handles=handles),
            )
        except HttpError as error:
            if error.status == 403:
                await self._blocked(handle)
                raise DeliveryError(BLOCKED.format(handle=handle)) from error
            raise
        return MessageRef(chat, str(data["id"]))

    async def update(self, ref: MessageRef, reply: Reply) -> None:
        stored = await self._db(store.conversation, ref.channel)
        if stored is None:
            raise DeliveryError(NO_CHANNEL.format(channel=ref.channel))
        activity = {**render_activity(reply), "id": ref.message}
        path = conversations(_thread(stored, ref), "activities", ref.message)
        try:
            await self.call("PUT", stored.service_url, path, activity)
        except HttpError as error:
            if error.status in {403, 404}:
                raise DeliveryError(GONE.format(status=error.status)) from error
            raise

    # --- 1:1 chats ----------------------------------------------------------------------
    async def _open_chat(self, user: store.UserReference) -> str:
        """Start the bot's 1:1 chat with someone it knows from a team, and keep it."""
        body = {
            "isGroup": False,
            "bot": {"id": user.bot_id or self.bot_id},
            "members": [{"id": user.user_id}],
            "tenantId": user.tenant_id,
            "channelData": {"tenant": {"id": user.tenant_id}},
        }
        data = await self.call("POST", user.service_url, conversations(), body)
        chat = str(data["id"])

        def keep() -> None:
            with self.db.unit_of_work() as session:
                store.set_conversation(session, user.aad_object_id, chat)

        await asyncio.to_thread(keep)
        return chat

    async def _blocked(self, handle: str) -> None:
        def mark() -> None:
            with self.db.unit_of_work() as session:
                store.set_user_active(session, handle, False)

        await asyncio.to_thread(mark)
        log.warning("a Teams user blocked the bot or removed the app; no more proactive messages")

    # --- answering inbound activities ---------------------------------------------------
    async def answer(
        self,
        activity: Mapping[str, Any],
        reply: Reply,
        handles: Mapping[int, str],
        *,
        reply_to: bool = True,
    ) -> None:
        """Reply in the conversation (and thread) an activity came from."""
        conversation = str(activity["conversation"]["id"])
        body = render_activity(reply, handles=handles)
        path = conversations(conversation, "activities")
        if reply_to and activity.get("id"):
            body["replyToId"] = str(activity["id"])
            path = conversations(conversation, "activities", str(activity["id"]))
        await self.call("POST", str(activity["serviceUrl"]), path, body)

    async def replace(
        self, activity: Mapping[str, Any], reply: Reply, handles: Mapping[int, str]
    ) -> None:
        """Replace the card an activity's button was on (a submitted form) with the reply."""
        conversation = str(activity["conversation"]["id"])
        card_id = str(activity["replyToId"])
        body = {**render_activity(reply, handles=handles), "id": card_id}
        path = conversations(conversation, "activities", card_id)
        await self.call("PUT", str(activity["serviceUrl"]), path, body)

    # --- rosters and channels -----------------------------------------------------------
    async def member_pages(
        self, service_url: str, conversation_id: str, page_size: int = PAGE_SIZE
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Everyone in a team or chat, a page at a time (`GET …/pagedmembers`, as
        botbuilder's TeamsInfo.get_paged_members). Off the ack path, so a throttled
        page waits out its Retry-After (up to ROSTER_MAX_WAIT) and is asked again."""
        token: str | None = None
        while True:
            query = f"?pageSize={page_size}"
            if token:
                query += "&continuationToken=" + quote(token, safe="")
            data = await self.call(
                "GET",
                service_url,
                conversations(conversation_id, "pagedmembers") + query,
                attempts=ROSTER_ATTEMPTS,
                max_wait=ROSTER_MAX_WAIT,
            )
            yield list((data or {}).get("members") or [])
            token = (data or {}).get("continuationToken")
            if not token:
                return

    async def member(self, service_url: str, conversation_id: str, user_id: str) -> dict[str, Any]:
        data = await self.call(
            "GET", service_url, conversations(conversation_id, "members", user_id)
        )
        return dict(data or {})

    async def channels(self, service_url: str, team_id: str) -> list[dict[str, Any]]:
        """A team's channels (standard ones: the only ones a bot can post in)."""
        data = await self.call(
            "GET", service_url, "/v3/teams/" + quote(team_id, safe="") + "/conversations"
        )
        return list((data or {}).get("conversations") or [])
