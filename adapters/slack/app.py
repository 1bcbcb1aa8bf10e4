"""The Slack app: bolt's listeners, each wired to the part of the adapter that does its job.

Every request is acked first (Slack's 3-second rule), then worked on: kept and
acked by acks.py (our slash commands as soon as they are kept, before bolt sees
them; anything else when its listener acks). Who asked is found by users.py;
the command runs in a command process (`adapters/commands.py`), its answer goes
back through `response_url` as an ephemeral message (answers.py), and anything
the command wrote to the outbox is delivered by the worker through messenger.py.
Installs and tokens: install.py, installations.py, whereabouts.py,
revocations.py; Slack statuses: presence.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.request.internals import parse_body
from slack_bolt.response import BoltResponse
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncRateLimitErrorRetryHandler,
    AsyncServerErrorRetryHandler,
)
from slack_sdk.web.async_client import AsyncWebClient

from adapters.commands import CommandRunner, reply_handles
from adapters.intake import Intake
from adapters.slack import directory, translate
from adapters.slack.acks import AckFirst, kept_request, names_a_user
from adapters.slack.answers import Answers
from adapters.slack.install import (
    INSTALL_PATH,
    REDIRECT_PATH,
    InstallFlow,
    not_installed,
    oauth_settings,
)
from adapters.slack.installations import (
    InstallationAuthorize,
    TokenClient,
    Workspace,
    Workspaces,
    use_token,
)
from adapters.slack.messenger import SlackMessenger
from adapters.slack.presence import SlackPresence, StatusEvents
from adapters.slack.render import (
    LINK_ACTION,
    action_name,
    form_values,
    home_view,
    picker_values,
    render_message,
)
from adapters.slack.revocations import Revocations
from adapters.slack.settings import SlackSettings
from adapters.slack.tenancy import SlackTenancy
from adapters.slack.users import SlackUsers
from adapters.slack.verify import verify_signature
from adapters.slack.whereabouts import Whereabouts
from bot import messages
from bot.db.retry import UNAVAILABLE
from bot.ops import logs
from bot.router import Router
from bot.runtime import events, inbox
from bot.services import Services
from bot.types import Command, Notice, Reply

log = logging.getLogger(__name__)
PLATFORM = translate.PLATFORM
COMMANDS = ("/whoknows", "/kb", "/expertise")
SHORTCUTS = ("find_expert",)


def _problem(text: str, content_type: str) -> str | None:
    """Why a signed body cannot be handled, read as bolt will read it (None: it can)."""
    try:
        body = parse_body(text, content_type)
    except (ValueError, RecursionError):
        return "a body that is not JSON"
    return translate.malformed(body)


def _malformed(problem: str) -> web.Response:
    log.warning("a signed Slack request was malformed (%s): answered 400", problem)
    return web.Response(status=400, text="malformed request")


class SlackAdapter:
    def __init__(
        self,
        services: Services,
        router: Router,
        settings: SlackSettings,
        commands: CommandRunner | None = None,
    ) -> None:
        self.services = services
        self.router = router
        self.settings = settings
        client_args: dict[str, Any] = {
            "token": settings.bot_token,
            "retry_handlers": [
                AsyncRateLimitErrorRetryHandler(max_retry_count=2),
                AsyncServerErrorRetryHandler(max_retry_count=2),
            ],
        }
        if settings.api_url:
            client_args["base_url"] = settings.api_url.rstrip("/") + "/"
        # Installed into workspaces by OAuth (install.py, installations.py): each request's
        # calls carry its workspace's token; otherwise the one bot token travels with the
        # client. Work outside a request finds the token by where its channel or user is.
        self.workspaces = Workspaces(services.db.engine, settings) if settings.oauth else None
        self.whereabouts = Whereabouts(self.workspaces) if self.workspaces else None
        self.client = (TokenClient if self.workspaces else AsyncWebClient)(**client_args)
        # Slack's directory read at start, after each install and daily (directory.py).
        self.directory = directory.DirectorySync(
            services.db,
            services.clock,
            api_url=settings.api_url,
            bot_token=settings.bot_token,
            workspaces=self.workspaces,
            every=timedelta(hours=settings.directory_hours),
            # Linked in a process of its own when commands run in theirs.
            in_process=commands is not None and commands.processes > 0,
            # Of OAuth installs, only the workspaces served (one bot token: its own).
            serves=(lambda team: self.tenancy.admits(team)) if self.workspaces else None,
        )
        # Which workspaces are served; an install into another is refused (tenancy.py).
        self.tenancy = SlackTenancy(services, settings)
        installs: dict[str, Any] = {}
        if self.workspaces is not None:
            installs = {
                "oauth_flow": InstallFlow(
                    settings=oauth_settings(
                        settings, self.workspaces, on_installed=self.directory.installed
                    ),
                    serves=self.tenancy.install,
                ),
                "authorize": InstallationAuthorize(self.workspaces),
                "user_facing_authorize_error_message": not_installed(services.settings.public_url),
            }
        self.app = AsyncApp(
            # The client brings our base URL and retry handlers (and the token, if one).
            signing_secret=settings.signing_secret,
            client=self.client,
            # Our handler verifies first and strictly (see verify.py). bolt would check the
            # timestamp again when it dispatches a kept command, which may be minutes later
            # after a burst; Socket Mode's requests carry no signature.
            request_verification_enabled=False,
            # The HTTP response goes as soon as a listener acks (see `AckFirst.early`).
            process_before_response=True,
            **installs,
        )
        # After bolt's authorize, before anything else: a workspace not served stops here.
        self.app.middleware(self.tenancy.middleware)
        if self.whereabouts is not None:  # the request's token; where its user and channel are
            self.app.use(self.whereabouts.workspaces.middleware)
            self.app.use(self.whereabouts.middleware)
        self.messenger = SlackMessenger(self.client, self.whereabouts)
        self.revocations = Revocations(self.whereabouts, services.db, services.clock)
        self.commands = commands or CommandRunner(services, router)
        self.presence = SlackPresence(self.client, services, self.whereabouts)
        self.users = SlackUsers(services, self.client, self.tenancy)  # who a user is
        self.statuses = StatusEvents(services, self.users.person_id)  # Slack statuses
        self.answers = Answers(self.client, self.presence)  # back to the asker
        self.intake = Intake(services, PLATFORM)  # keeps requests before their ack
        # Every request kept and acked in time; our slash commands before bolt sees them.
        self.acks = AckFirst(
            self.intake,
            COMMANDS,
            self.app.async_dispatch,
            self.answers.respond,
            self.commands.wanted,
        )
        self._register()

    # --- HTTP -------------------------------------------------------------------------
    def mount(self, web_app: web.Application) -> None:
        web_app.router.add_post("/slack/events", self.handle)
        web_app.on_startup.append(self._start)
        web_app.on_startup.append(self._announce)
        if self.app.oauth_flow is not None:
            web_app.router.add_get(INSTALL_PATH, self.handle_install)
            web_app.router.add_get(REDIRECT_PATH, self.handle_install)

    async def _start(self, _app: web.Application) -> None:
        self.directory.start()

    async def _announce(self, _app: web.Application) -> None:
        try:
            log.info("Slack: serving %s", await self.tenancy.describe())
        except Exception as error:  # the database is not there yet: each request reads it
            log.warning(
                "Slack: could not read which workspaces are served (%s)", type(error).__name__
            )

    async def handle_install(self, request: web.Request) -> web.Response:
        """An admin's browser: to Slack's consent page, and back with a code to exchange."""
        flow = self.app.oauth_flow
        assert flow is not None
        bolt_request = AsyncBoltRequest(
            body="",
            query=request.query_string,
            headers=request.headers,  # type: ignore[arg-type]
        )
        if request.path == INSTALL_PATH:
            return await to_aiohttp_response(await flow.handle_installation(bolt_request))
        # The code buys a bot token until it is spent: slack_sdk logs it at DEBUG, bolt
        # when Slack refuses it; neither line may carry it.
        logs.add_passing_secret(request.query.get("code"))
        return await to_aiohttp_response(await flow.handle_callback(bolt_request))

    async def handle(self, request: web.Request) -> web.Response:
        with self.acks.due():
            return await self._handle(request)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        assert self.settings.signing_secret is not None
        if not verify_signature(self.settings.signing_secret, request.headers, body, time.time()):
            return web.Response(status=401, text="invalid request signature")
        text = body.decode("utf-8", errors="replace")
        if self.acks.takes(request.content_type, text):
            if not names_a_user(text):
                return _malformed("a command without a user_id")
            return await self.acks.command_first(text, request)
        problem = _problem(text, request.content_type)
        if problem is not None:
            return _malformed(problem)
        bolt_request = AsyncBoltRequest(
            body=text,
            query=request.query_string,
            headers=request.headers,  # type: ignore[arg-type]
        )
        return await to_aiohttp_response(await self.app.async_dispatch(bolt_request))

    async def _dedupe(self, body: dict, next: Callable[[], Any]) -> BoltResponse | None:
        """Slack retries events and bolt does not deduplicate: only the first delivery acts.

        A middleware, so Socket Mode deliveries are covered as well as HTTP ones.
        """
        if body.get("type") == "event_callback":
            key = f"{body.get('team_id', '')}:{body.get('event_id', '')}"
            if not await asyncio.to_thread(self._record_event, key):
                return BoltResponse(status=200, body="")
        return await next()

    def _record_event(self, key: str) -> bool:
        with self.services.db.unit_of_work() as session:
            return events.first_delivery(session, PLATFORM, key, self.services.clock())

    # --- requests kept until answered (bot/runtime/inbox.py) ------------------------------------
    @contextlib.asynccontextmanager
    async def _guard(self, inbound: int, respond: Any, user_id: str | None) -> AsyncIterator[None]:
        """The database stayed away longer than every retry.

        A kept request is left to the worker that takes it over once the database is
        back; one that could not be kept would be lost, so its asker hears so now.
        """
        try:
            yield
        except UNAVAILABLE:
            if inbound:
                log.warning("request %s waits for the database to come back", inbound)
                return
            log.warning("database unavailable; a request could not be answered")
            notice = Reply.notice(messages.DATABASE_UNAVAILABLE, "error")
            await self.answers.answer(notice, {}, respond=respond, user_id=user_id)

    async def drain(self, timeout: float) -> None:
        """Stopping: let the requests under way finish; hand the rest to another worker."""
        await self.acks.drain(timeout)

    async def recover(self, pending: inbox.Pending) -> None:
        """A request whose process died after the ack: run it, or deliver its kept answer.

        In a task of its own: with OAuth installs, its calls carry the token of the
        workspace the request came from, and no other work sees that token.
        """
        await asyncio.get_running_loop().create_task(self._recover(pending))

    async def _recover(self, pending: inbox.Pending) -> None:
        kind, body = kept_request(pending.payload)
        if self.workspaces is not None:
            team = body.get("team_id") or (body.get("team") or {}).get("id")
            enterprise = body.get("enterprise_id") or (body.get("enterprise") or {}).get("id")
            org_wide = str(body.get("is_enterprise_install", "")).lower() == "true"
            workspace = Workspace.of(enterprise, team, org_wide)
            use_token(await self.workspaces.token(workspace))
        url = body.get("response_url")
        respond = AsyncRespond(response_url=url) if url else None
        if pending.reply is not None:
            user = body.get("user_id") or (body.get("user") or {}).get("id")
            handles = await asyncio.to_thread(reply_handles, self.services, PLATFORM, pending.reply)
            await self.answers.answer(pending.reply, handles, respond=respond, user_id=user)
            await self.intake.finish(pending.id)
            return
        process = {
            "command": self.process_command,
            "action": self.process_action,
            "shortcut": self.process_shortcut,
        }.get(str(kind))
        if process is None:
            log.error("inbound request %s of unknown kind %r", pending.id, kind)
            await self.intake.finish(pending.id)
            return
        await process(body, respond, pending.id, live=False)

    # --- running a command ------------------------------------------------------------
    async def run(self, command: Command, inbound: int = 0) -> tuple[Reply, dict[int, str]]:
        return await self.commands.run(command, inbound)

    async def close(self) -> None:
        await self.directory.close()
        await self.answers.close()

    # --- listeners --------------------------------------------------------------------
    def _register(self) -> None:
        app = self.app
        app.middleware(self._dedupe)
        names = "|".join(re.escape(c.lstrip("/")) for c in COMMANDS)
        early = self.acks.early
        app.command(re.compile(rf"^/({names})$"))(early(self.on_command))
        app.action(re.compile(r".+"))(early(self.on_action))
        app.view(re.compile(r".+"))(early(self.on_view))
        for callback_id in SHORTCUTS:
            app.shortcut(callback_id)(early(self.on_shortcut))
        for name, method in self.event_listeners().items():
            app.event(name)(early(method))

    def event_listeners(self) -> dict[str, Callable[..., Awaitable[None]]]:
        """Every event the manifest subscribes to, and what handles it."""
        return {
            "app_mention": self.on_app_mention,
            # message.channels / message.groups: replies in huddle threads.
            "message": self.on_message,
            "app_home_opened": self.on_home,
            "team_join": self.on_user,
            "user_change": self.on_user,
            "user_huddle_changed": self.on_user_huddle,
            "user_status_changed": self.on_user_status,
            "app_uninstalled": self.on_revoked,
            "tokens_revoked": self.on_revoked,
        }

    # Commands, buttons and shortcuts are kept from before the ack until answered
    # (`AckFirst.accept`); `live` is False when a worker picks one up after its process died,
    # when a trigger id (for opening a modal) has long expired.
    async def on_command(self, ack: Any, command: dict, respond: Any, context: Any) -> None:
        async with self.acks.command(command, ack, context) as inbound:
            if inbound is not None:
                async with self._guard(inbound, respond, None):
                    await self.process_command(command, respond, inbound)

    async def process_command(
        self, command: dict, respond: Any, inbound: int, *, live: bool = True
    ) -> None:
        person = await self.users.person_id(command["user_id"])
        mentions = await self.users.mentions(command.get("text", ""))
        reply, handles = await self.run(translate.slash_command(command, person, mentions), inbound)
        trigger = command.get("trigger_id") if live else None
        await self.answers.answer(reply, handles, respond=respond, trigger_id=trigger)
        await self._finished(inbound, reply, live)

    async def _finished(self, inbound: int, reply: Reply, live: bool) -> None:
        """Its answer is out. A live request's dispatcher goes on to the next at once
        (`Intake.finish`); a take-over ends once its request is marked done."""
        marking = self.intake.finish(inbound, reply)
        if not live:
            await marking

    async def on_action(self, ack: Any, body: dict, action: dict, respond: Any) -> None:
        if action.get("type") not in {"button", None} or action.get("action_id") == LINK_ACTION:
            # A picker changed (its choice travels with the button press), or a link
            # button opened a DM in Slack itself: nothing for us to do.
            await ack()
            return
        inbound = await self.acks.accept("action", body, ack)
        if inbound is not None:
            url = respond if body.get("response_url") else None
            async with self._guard(inbound, url, body["user"]["id"]):
                await self.process_action(body, respond, inbound)

    async def process_action(
        self, body: dict, respond: Any, inbound: int, *, live: bool = True
    ) -> None:
        (action,) = body["actions"][:1]
        person = await self.users.person_id(body["user"]["id"])
        values = picker_values((body.get("state") or {}).get("values") or {})
        command = translate.button_press(
            body, action_name(action["action_id"]), action.get("value", ""), person, values
        )
        reply, handles = await self.run(command, inbound)
        has_url = bool(body.get("response_url"))
        await self.answers.answer(
            reply,
            handles,
            respond=respond if has_url else None,
            trigger_id=body.get("trigger_id") if live else None,
            user_id=body["user"]["id"],
        )
        if (body.get("view") or {}).get("type") == "home":
            # Pressed on the home tab (a suggestion decided): show it as it is now.
            await self.on_home({"user": body["user"]["id"], "tab": "home"})
        await self._finished(inbound, reply, live)

    async def on_view(self, ack: Any, body: dict, view: dict) -> None:
        person = await self.users.person_id(body["user"]["id"])
        command = translate.view_submission(view, person, form_values(view))
        reply, handles = await self.run(command)
        failed = {"warning", "error"}
        problems = [e for e in reply.elements if isinstance(e, Notice) and e.severity in failed]
        fields = [b.get("block_id") for b in view.get("blocks", []) if b.get("type") == "input"]
        if problems and fields:
            # Keep the dialog open with the reason under the first field.
            await ack(response_action="errors", errors={fields[0]: problems[0].text[:150]})
            return
        await ack()
        await self.answers.answer(reply, handles, user_id=body["user"]["id"])

    async def on_shortcut(self, ack: Any, body: dict, respond: Any) -> None:
        inbound = await self.acks.accept("shortcut", body, ack)
        if inbound is not None:
            async with self._guard(inbound, respond, body["user"]["id"]):
                await self.process_shortcut(body, respond, inbound)

    async def process_shortcut(
        self, body: dict, respond: Any, inbound: int, *, live: bool = True
    ) -> None:
        person = await self.users.person_id(body["user"]["id"])
        reply, handles = await self.run(translate.message_shortcut(body, person), inbound)
        await self.answers.answer(reply, handles, respond=respond, user_id=body["user"]["id"])
        await self._finished(inbound, reply, live)

    async def on_app_mention(self, event: dict, context: Any) -> None:
        person = await self.users.person_id(event["user"])
        mentions = await self.users.mentions(event.get("text", ""))
        command = translate.app_mention(event, person, context.get("bot_user_id"), mentions)
        reply, handles = await self.run(command)
        if reply.elements:
            await self.client.chat_postMessage(
                channel=event["channel"],
                thread_ts=event.get("thread_ts") or event.get("ts"),
                **render_message(reply, handles=handles),
            )

    async def on_message(self, event: dict) -> None:
        if not translate.is_thread_reply(event):
            return
        person = await self.users.person_id(event["user"])
        await self.run(translate.thread_message(event, person))

    async def on_home(self, event: dict) -> None:
        if event.get("tab", "home") != "home":
            return
        person = await self.users.person_id(event["user"])
        command = Command(PLATFORM, person, "", action_id="home.open")
        reply, _ = await self.run(command)
        await self.client.views_publish(user_id=event["user"], view=home_view(reply))

    async def on_user(self, event: dict) -> None:
        """team_join, user_change: the user linked again (users.py)."""
        await self.users.changed(event.get("user") or {})

    async def on_revoked(self, event: dict, context: Any) -> None:
        """Removed from a workspace, or its tokens revoked: see revocations.py."""
        await self.revocations(event, context)

    async def on_user_huddle(self, event: dict) -> None:
        await self.statuses.huddle(event)

    async def on_user_status(self, event: dict) -> None:
        await self.statuses.status(event)

    # --- Socket Mode ------------------------------------------------------------------
    async def connect_socket_mode(self) -> Any:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        handler = AsyncSocketModeHandler(self.app, self.settings.app_token)
        await handler.connect_async()
        return handler
