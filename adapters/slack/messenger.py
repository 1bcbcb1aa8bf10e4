"""The Slack Messenger: posts, thread replies, direct messages and updates via the Web API."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.render import fallback_text, render_blocks
from adapters.slack.translate import PLATFORM
from bot.ports import DeliveryError, MessageRef
from bot.types import Reply

# Errors no retry will fix: the outbox marks the message failed, with the reason.
PERMANENT = {
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "msg_too_long",
    "no_text",
    "invalid_blocks",
    "user_not_found",
    "cannot_dm_bot",
    "message_not_found",
    "cant_update_message",
    "account_inactive",
    "invalid_auth",
    "not_authed",
    "restricted_action",
}


class SlackMessenger:
    platform = PLATFORM

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def _call(self, method: str, **kwargs: object) -> dict:
        try:
            response = await self.client.api_call(method, json=kwargs)
        except SlackApiError as error:
            code = error.response.get("error", "") if error.response is not None else ""
            if code in PERMANENT:
                raise DeliveryError(code) from error
            raise
        return dict(response.data) if isinstance(response.data, dict) else {}

    async def post(self, channel: str, reply: Reply) -> MessageRef:
        data = await self._call(
            "chat.postMessage",
            channel=channel,
            blocks=render_blocks(reply),
            text=fallback_text(reply),
        )
        return MessageRef(str(data.get("channel", channel)), str(data["ts"]))

    async def reply_in_thread(self, root: MessageRef, reply: Reply) -> MessageRef:
        data = await self._call(
            "chat.postMessage",
            channel=root.channel,
            thread_ts=root.message,
            blocks=render_blocks(reply),
            text=fallback_text(reply),
        )
        return MessageRef(root.channel, str(data["ts"]))

    async def direct_message(self, handle: str, reply: Reply) -> MessageRef:
        opened = await self._call("conversations.open", users=handle)
        channel = str(opened["channel"]["id"])
        data = await self._call(
            "chat.postMessage",
            channel=channel,
            blocks=render_blocks(reply),
            text=fallback_text(reply),
        )
        return MessageRef(channel, str(data["ts"]))

    async def update(self, ref: MessageRef, reply: Reply) -> None:
        await self._call(
            "chat.update",
            channel=ref.channel,
            ts=ref.message,
            blocks=render_blocks(reply),
            text=fallback_text(reply),
        )
