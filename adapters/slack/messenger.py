"""The Slack Messenger: posts, thread replies, direct messages and updates via the Web API."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.oauth import ELSEWHERE, GONE, Workspaces
from adapters.slack.render import render_message
from adapters.slack.translate import PLATFORM
from bot.runtime.ports import DeliveryError, MessageRef
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
    "token_revoked",
    "restricted_action",
}


# What the asker is told when a huddle message could not go out.
EXPLAINED = {
    "not_in_channel": "whoknows is not in that channel: /invite @whoknows there",
    "is_archived": "that channel is archived",
    "channel_not_found": "whoknows cannot see that channel: check its name, or invite the bot",
    "user_not_found": "that person is not in this Slack workspace",
    "account_inactive": "that account is deactivated",
    "token_revoked": "whoknows was removed from that Slack workspace",
}


class SlackMessenger:
    """With `workspaces` (OAuth installs) each call carries the bot token of the workspace
    the channel or user is in; otherwise the client's one token."""

    platform = PLATFORM

    def __init__(self, client: AsyncWebClient, workspaces: Workspaces | None = None) -> None:
        self.client = client
        self.workspaces = workspaces

    async def _send(self, method: str, args: dict[str, object]) -> dict:
        try:
            response = await self.client.api_call(method, json=args)
        except SlackApiError as error:
            code = error.response.get("error", "") if error.response is not None else ""
            if code in PERMANENT:
                raise DeliveryError(
                    f"{code}: {EXPLAINED[code]}" if code in EXPLAINED else code, code
                ) from error
            raise
        return dict(response.data) if isinstance(response.data, dict) else {}

    async def _call(self, method: str, *, to: str, **kwargs: object) -> dict:
        """Call `method` about channel or user `to`, as the workspace it belongs to."""
        if self.workspaces is None:
            return await self._send(method, kwargs)
        candidates = await self.workspaces.tokens_for(to)
        if not candidates:
            if await self.workspaces.workspace_of(to) is not None:  # uninstalled from there
                raise DeliveryError(GONE)
            raise DeliveryError("whoknows is not installed in any Slack workspace")
        for n, (workspace, token) in enumerate(candidates, start=1):
            try:
                data = await self._send(method, {**kwargs, "token": token})
            except DeliveryError as error:
                if error.code in ELSEWHERE and n < len(candidates):
                    continue  # in another workspace: ask the next one
                raise
            channel = data.get("channel")
            opened = channel.get("id") if isinstance(channel, dict) else channel
            self.workspaces.remember(workspace, to, opened if isinstance(opened, str) else None)
            return data
        raise AssertionError("unreachable")

    async def post(self, channel: str, reply: Reply) -> MessageRef:
        data = await self._call(
            "chat.postMessage",
            to=channel,
            channel=channel,
            **render_message(reply),
        )
        return MessageRef(str(data.get("channel", channel)), str(data["ts"]))

    async def reply_in_thread(self, root: MessageRef, reply: Reply) -> MessageRef:
        data = await self._call(
            "chat.postMessage",
            to=root.channel,
            channel=root.channel,
            thread_ts=root.message,
            **render_message(reply),
        )
        return MessageRef(root.channel, str(data["ts"]))

    async def direct_message(self, handle: str, reply: Reply) -> MessageRef:
        opened = await self._call("conversations.open", to=handle, users=handle)
        channel = str(opened["channel"]["id"])
        data = await self._call(
            "chat.postMessage",
            to=channel,
            channel=channel,
            **render_message(reply),
        )
        return MessageRef(channel, str(data["ts"]))

    async def update(self, ref: MessageRef, reply: Reply) -> None:
        await self._call(
            "chat.update",
            to=ref.channel,
            channel=ref.channel,
            ts=ref.message,
            **render_message(reply),
        )
