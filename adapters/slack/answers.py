"""A command's answer back to the person who asked.

A form opens as a modal (while the request's trigger id is fresh); anything
else goes to the request's `response_url`, ephemeral unless the reply is for
the channel, or, with no response_url (the home tab, a modal), as the app's
direct message. bolt's respond neither retries a 429 or a 5xx nor raises on
one, and opens a new TLS connection every time: here the post is retried
(`Answers.respond`) over connections kept alive between answers (`_post`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Coroutine, Mapping
from typing import Any, NamedTuple

from aiohttp import ClientSession, ClientTimeout
from slack_sdk.proxy_env_variable_loader import load_http_proxy_from_env
from slack_sdk.web.async_client import AsyncWebClient

from adapters.slack.presence import SlackPresence
from adapters.slack.render import modal_view, render_message
from bot.types import Form, Reply

log = logging.getLogger(__name__)

RESPOND_ATTEMPTS = 4
RESPOND_TIMEOUT_S = 30  # one post to a response_url (slack_sdk's webhook default)
JSON_HEADERS = {"Content-Type": "application/json;charset=utf-8"}


class Posted(NamedTuple):
    """What a response_url answered (the fields `respond` reads of a webhook response)."""

    status_code: int
    headers: Mapping[str, str]


class Answers:
    """Answers through `client` (modals, direct messages) and response_urls; after each,
    a presence refresh of the people shown (`presence`), for the next asker."""

    def __init__(self, client: AsyncWebClient, presence: SlackPresence) -> None:
        self.client = client
        self.presence = presence
        self._tasks: set[asyncio.Task[None]] = set()
        self._http: ClientSession | None = None  # for response_url
        self._proxy: str | None = None

    async def answer(
        self,
        reply: Reply,
        handles: dict[int, str],
        *,
        respond: Any = None,
        trigger_id: str | None = None,
        user_id: str | None = None,
    ) -> None:
        """A form opens as a modal; anything else goes back to the person who asked."""
        forms = [e for e in reply.elements if isinstance(e, Form)]
        if forms and trigger_id:
            await self.client.views_open(trigger_id=trigger_id, view=modal_view(forms[0]))
            reply = Reply(tuple(e for e in reply.elements if not isinstance(e, Form)))
        if not reply.elements:
            return
        if handles:
            # Fresh Slack presence for the people just shown, for the next asker.
            self._background(self.presence.refresh(handles))
        rendered = render_message(reply, handles=handles)
        blocks, text = rendered["blocks"], rendered["text"]
        if respond is not None:
            await self.respond(
                respond,
                blocks=blocks,
                text=text,
                response_type="ephemeral" if reply.private else "in_channel",
                replace_original=False,
            )
        elif user_id is not None:
            # No response_url (the home tab, a modal): the app's direct message.
            await self.client.chat_postMessage(channel=user_id, blocks=blocks, text=text)

    async def respond(self, respond: Any, **message: Any) -> None:
        """Post to response_url, through 429s (after Retry-After) and 5xx.

        bolt's respond neither retries those nor raises on them: an answer met by
        a 429 was silently lost. One that still fails raises, so its kept request
        stays open and a worker delivers it once its lease runs out.
        """
        for attempt in range(1, RESPOND_ATTEMPTS + 1):
            result = await self._post(respond, message)
            status = getattr(result, "status_code", 200)
            if status < 400:
                return
            if status != 429 and status < 500:
                # Expired (after 30 minutes) or used up (5 posts): no retry will help.
                log.warning("response_url refused the answer (HTTP %s)", status)
                return
            if attempt == RESPOND_ATTEMPTS:
                raise ConnectionError(f"response_url answered HTTP {status}")
            headers = getattr(result, "headers", None) or {}
            wait = headers.get("Retry-After") or headers.get("retry-after")
            delay = float(wait) if wait and str(wait).isdigit() else 0.5 * 2**attempt
            await asyncio.sleep(min(delay, 30.0))

    async def _post(self, respond: Any, message: dict[str, Any]) -> Any:
        """To the request's response_url, over connections kept alive between answers
        (bolt's respond opens a new session, and a new TLS connection, every time)."""
        url = getattr(respond, "response_url", None)
        if url is None:
            return await respond(**message)
        if self._http is None or self._http.closed:
            self._http = ClientSession(timeout=ClientTimeout(total=RESPOND_TIMEOUT_S))
            # A proxy set in the environment, read once as slack_sdk's clients do (aiohttp's
            # trust_env would read the environment and ~/.netrc again for every answer).
            self._proxy = load_http_proxy_from_env()
        body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode()
        post = self._http.post(url, data=body, headers=JSON_HEADERS, proxy=self._proxy)
        async with post as response:
            await response.read()
            return Posted(response.status, response.headers)

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        """Work nobody waits for (a presence refresh), kept referenced."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
