"""The Slack app: bolt listeners that translate, dispatch through the router, and render.

Every request is acked first (Slack's 3-second rule), then worked on: our
slash commands as soon as they are kept, before bolt sees them
(`_command_first`); anything else when its listener acks. The command runs in
a command process, the answer goes back through `response_url` as an
ephemeral message, and anything the command wrote to the outbox is delivered
by the worker, which the command runner wakes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from datetime import timedelta
from typing import Any, NamedTuple
from urllib.parse import unquote_plus

from aiohttp import ClientSession, ClientTimeout, web
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
from slack_sdk.proxy_env_variable_loader import load_http_proxy_from_env
from slack_sdk.web.async_client import AsyncWebClient

from adapters.commands import CommandRunner, reply_handles
from adapters.intake import Intake
from adapters.slack import directory, translate
from adapters.slack.messenger import SlackMessenger
from adapters.slack.oauth import (
    INSTALL_PATH,
    REDIRECT_PATH,
    InstallationAuthorize,
    InstallFlow,
    Revocations,
    TokenClient,
    Workspace,
    Workspaces,
    not_installed,
    oauth_settings,
    use_token,
)
from adapters.slack.presence import SlackPresence
from adapters.slack.render import (
    LINK_ACTION,
    action_name,
    form_values,
    home_view,
    modal_view,
    picker_values,
    render_message,
)
from adapters.slack.settings import SlackSettings
from adapters.slack.tenancy import Outsider, SlackTenancy
from adapters.slack.verify import verify_signature
from bot import messages
from bot.db.models import Person, Status
from bot.db.retry import UNAVAILABLE, retrying
from bot.ops import logs
from bot.router import Router
from bot.runtime import events, inbox
from bot.services import Services, accounts, people, presence
from bot.types import Command, Form, Notice, Reply

log = logging.getLogger(__name__)
PLATFORM = translate.PLATFORM
SEEN_IN = directory.SEEN_IN
# Slack statuses that say someone cannot take a question now.
STATUS_EMOJI = {
    ":spiral_calendar_pad:": Status.BUSY,
    ":calendar:": Status.BUSY,
    ":headphones:": Status.BUSY,
    ":phone:": Status.ON_CALL,
    ":telephone_receiver:": Status.ON_CALL,
    ":palm_tree:": Status.AWAY,
    ":face_with_thermometer:": Status.OFF,
    ":house_with_garden:": Status.AWAY,
}


COMMANDS = ("/whoknows", "/kb", "/expertise")
RESPOND_ATTEMPTS = 4
RESPOND_TIMEOUT_S = 30  # one post to a response_url (slack_sdk's webhook default)
JSON_HEADERS = {"Content-Type": "application/json;charset=utf-8"}
# Slack wants the ack within 3 s; past this, ack before the request is kept…
ACK_WITHIN = 1.5
ACK_GRAIN_S = 0.1  # …or this much later
SHORTCUTS = ("find_expert",)
FORM = "application/x-www-form-urlencoded"
DISPATCHING = 8  # kept commands in bolt's hands at once, at least
# Acks first: while this many requests wait for their ack, or did within the last
# CALM_S (acks leave in batches, as their keep is written, so the count dips
# between them), kept commands are not dispatched: their answers' work, here and
# in the command process, would slow the acks that Slack wants within 3 s…
ACK_PRESSURE = 8
CALM_S = 0.1
# …but none waits longer than this after its ack, however long the pressure lasts.
HOLD_MAX_S = 2.0
HOLD_STEP_S = 0.02  # how often a held pump looks again
KEPT = "whoknows_kept"  # in a kept command's bolt context: its `_Kept`


# A slash command's name in its form body (the whole form is parsed later, by bolt).
_COMMAND_FIELD = re.compile(r"(?:^|&)command=([^&]*)")
_SSL_CHECK = re.compile(r"(?:^|&)ssl_check=")
_USER_FIELD = re.compile(r"(?:^|&)user_id=[^&]")


def _our_command(form: str) -> bool:
    found = _COMMAND_FIELD.search(form)
    return bool(found and unquote_plus(found.group(1)) in COMMANDS and not _SSL_CHECK.search(form))


def _wake(waiter: asyncio.Future[None], _: Any = None) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _AckDeadlines:
    """Waits for requests to be kept, ACK_WITHIN seconds at most: past that, each is
    acked first.

    A timer for each request (call_later, then cancel) was a twentieth of the
    serving process's time under a burst. Requests wait in the order they came, so
    their deadlines are in order too: one timer, at the first deadline plus a
    little (ACK_GRAIN_S, so that a burst does not set one per request), wakes
    whoever is late.
    """

    def __init__(self) -> None:
        self._waiting: deque[tuple[float, asyncio.Future[None]]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    async def wait(self, keeping: asyncio.Future[Any], what: str) -> None:
        if keeping.done():
            return
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        keeping.add_done_callback(functools.partial(_wake, waiter))
        self._waiting.append((loop.time() + ACK_WITHIN, waiter))
        if self._timer is None:
            self._timer = loop.call_at(self._waiting[0][0] + ACK_GRAIN_S, self._expire, loop)
        await waiter
        if not keeping.done():
            log.warning("keeping a %s request took over %.1f s; acked first", what, ACK_WITHIN)

    def _expire(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        waiting = self._waiting
        while waiting and (waiting[0][0] <= now or waiting[0][1].done()):
            _wake(waiting.popleft()[1])
        self._timer = (
            loop.call_at(waiting[0][0] + ACK_GRAIN_S, self._expire, loop) if waiting else None
        )


class _Kept:
    """A slash command kept before its ack, on its way through bolt."""

    __slots__ = ("finished", "id", "started")

    def __init__(self, inbound: int, finished: asyncio.Future[None]) -> None:
        self.id = inbound
        self.finished = finished  # once the listener is done with it
        self.started = False  # a listener took it


class _Queued(NamedTuple):
    """A slash command kept and acked, waiting to go through bolt."""

    at: float  # when it was acked (time.monotonic)
    kept: asyncio.Future[int | None]  # its keep (Intake.keeping)
    key: str
    form: str  # its body, as it came
    query: str
    headers: Mapping[str, str]


class Posted(NamedTuple):
    """What a response_url answered (the fields `_respond` reads of a webhook response)."""

    status_code: int
    headers: Mapping[str, str]


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


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("a Slack listener failed after its ack", exc_info=task.exception())


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
        # Installed into workspaces by OAuth (oauth.py): each request's calls carry its
        # workspace's token; otherwise the one bot token travels with the client.
        self.workspaces = Workspaces(services.db.engine, settings) if settings.oauth else None
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
            # The HTTP response goes as soon as a listener acks (see `_acks_early`).
            process_before_response=True,
            **installs,
        )
        # After bolt's authorize, before anything else: a workspace not served stops here.
        self.app.middleware(self.tenancy.middleware)
        if self.workspaces is not None:
            self.app.use(self.workspaces.middleware)
        self.messenger = SlackMessenger(self.client, self.workspaces)
        self.revocations = Revocations(self.workspaces, services.db, services.clock)
        self._people: dict[str, int] = {}  # Slack user id → person id; safe to lose
        self.commands = commands or CommandRunner(services, router)
        self.presence = SlackPresence(self.client, services, self.workspaces)
        self._tasks: set[asyncio.Task[None]] = set()
        # Requests under way in this process (their kept rows: `intake.open`).
        self._in_flight: set[asyncio.Task[Any]] = set()
        self.intake = Intake(services, PLATFORM)  # keeps requests before their ack
        self._deadlines = _AckDeadlines()
        # Kept commands waiting for bolt (`_command_first`), and the tasks handing them
        # over: enough at once to keep every command process busy.
        self._queued: deque[_Queued] = deque()
        self._pumps = 0
        self._acking = 0  # Slack requests in this process not yet acked
        self._pressed_at = -CALM_S  # when ACK_PRESSURE of them were last waiting
        self._dispatching = max(DISPATCHING, 4 * self.commands.processes)
        self._http: ClientSession | None = None  # for response_url
        self._proxy: str | None = None
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
        self._acking += 1
        if self._acking >= ACK_PRESSURE:
            self._pressed_at = time.monotonic()
        try:
            return await self._handle(request)
        finally:
            self._acking -= 1

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        assert self.settings.signing_secret is not None
        if not verify_signature(self.settings.signing_secret, request.headers, body, time.time()):
            return web.Response(status=401, text="invalid request signature")
        text = body.decode("utf-8", errors="replace")
        if request.content_type == FORM and _our_command(text):
            if not _USER_FIELD.search(text):
                return _malformed("a command without a user_id")
            return await self._command_first(text, request)
        problem = _problem(text, request.content_type)
        if problem is not None:
            return _malformed(problem)
        bolt_request = AsyncBoltRequest(
            body=text,
            query=request.query_string,
            headers=request.headers,  # type: ignore[arg-type]
        )
        return await to_aiohttp_response(await self.app.async_dispatch(bolt_request))

    async def _command_first(self, text: str, request: web.Request) -> web.Response:
        """One of our slash commands: kept, acked, and only then dispatched through bolt.

        Under a burst, bolt's dispatch of each command before its ack was most of the
        ack's cost, for answers that then queued for the command processes anyway.
        Here the ack waits only for the request to be kept, as it came; bolt
        dispatches the kept commands as fast as they can be answered (DISPATCHING
        at once), so a burst is acked at the speed of the keep and answered as before.
        While many requests still wait for their ack, the answers wait a little
        (`_pump`): the burst's acks go first.
        """
        key = f"command:{hashlib.sha256(text.encode()).hexdigest()}"
        kept = self.intake.keeping(key, {"kind": "command", "form": text})
        await self._deadlines.wait(kept, "command")
        # Queued as plain values, not a task each: a burst leaves thousands waiting.
        self._queued.append(
            _Queued(time.monotonic(), kept, key, text, request.query_string, request.headers)
        )
        if self._pumps < self._dispatching:
            self._pumps += 1
            task = asyncio.get_running_loop().create_task(self._pump())
            self._in_flight.add(task)  # drained on shutdown like any request under way
            task.add_done_callback(self._in_flight.discard)
            task.add_done_callback(_log_failure)
        return web.Response(status=200)

    async def _pump(self) -> None:
        """Kept commands to bolt, one after another, while any wait; held while the
        acks are under pressure (ACK_PRESSURE), for HOLD_MAX_S at most."""
        try:
            while self._queued:
                now = time.monotonic()
                pressed = self._acking >= ACK_PRESSURE or now - self._pressed_at < CALM_S
                if pressed and now - self._queued[0].at < HOLD_MAX_S:
                    await asyncio.sleep(HOLD_STEP_S)
                    continue
                try:
                    await self._dispatch_kept(self._queued.popleft())
                except Exception:  # the next in the queue must not wait on it
                    log.exception("a kept command failed on its way through bolt")
        finally:
            self._pumps -= 1

    async def _dispatch_kept(self, queued: _Queued) -> None:
        inbound = await self.intake.kept(queued.kept, queued.key)
        if inbound is None:
            return  # a duplicate delivery
        marker = _Kept(inbound, asyncio.get_running_loop().create_future())
        bolt_request = AsyncBoltRequest(
            body=queued.form,
            query=queued.query,
            headers=queued.headers,  # type: ignore[arg-type]
            context={KEPT: marker},
        )
        response = await self.app.async_dispatch(bolt_request)
        if marker.started:
            await marker.finished
            return
        # Refused before any listener ran (a workspace not installed, say): what bolt
        # would have acked with goes to the asker instead.
        log.warning("a kept command was refused by bolt (HTTP %s)", response.status)
        url = bolt_request.body.get("response_url")
        try:
            if response.body and url:
                message = {"text": response.body, "response_type": "ephemeral"}
                await self._respond(AsyncRespond(response_url=url), **message)
        finally:  # never run by a worker later: bolt refused it
            self.intake.finish(inbound)

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

    # --- people -----------------------------------------------------------------------
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

    async def _mentions(self, text: str) -> dict[str, int]:
        found = {}
        for token, user in translate.mentioned_users(text).items():
            try:
                found[token] = await self.person_id(user, mentioned=True)
            except Outsider:  # a Slack Connect guest from elsewhere: nobody whoknows knows
                log.info("a mention of someone in a Slack workspace not served was left out")
        return found

    # --- requests kept until answered (bot/runtime/inbox.py) ------------------------------------
    async def accept(self, kind: str, body: dict[str, Any], ack: Any) -> int | None:
        """Keep the request, then ack: its row id, None for a duplicate delivery.

        Slack shows the user an error when the ack takes over 3 seconds. A write
        that takes longer than ACK_WITHIN (a database busy or restarting) acks
        without waiting and goes on; if it fails the request still runs (0: not
        kept): an answer now beats a refusal.
        """
        text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
        key = f"{kind}:{hashlib.sha256(text.encode()).hexdigest()}"
        kept = self.intake.keeping(key, {"kind": kind, "body": body})
        await self._deadlines.wait(kept, kind)
        await ack()
        return await self.intake.kept(kept, key)

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
            await self.answer(notice, {}, respond=respond, user_id=user_id)

    async def drain(self, timeout: float) -> None:
        """Stopping: let the requests under way finish; hand the rest to another worker."""
        await self.intake.hand_over(self._in_flight, timeout)

    async def recover(self, pending: inbox.Pending) -> None:
        """A request whose process died after the ack: run it, or deliver its kept answer.

        In a task of its own: with OAuth installs, its calls carry the token of the
        workspace the request came from, and no other work sees that token.
        """
        await asyncio.get_running_loop().create_task(self._recover(pending))

    async def _recover(self, pending: inbox.Pending) -> None:
        kind, body = pending.payload.get("kind"), pending.payload.get("body") or {}
        if "form" in pending.payload:  # kept as it came (`_command_first`)
            body = parse_body(str(pending.payload["form"]), FORM)
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
            await self.answer(pending.reply, handles, respond=respond, user_id=user)
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
            await self._respond(
                respond,
                blocks=blocks,
                text=text,
                response_type="ephemeral" if reply.private else "in_channel",
                replace_original=False,
            )
        elif user_id is not None:
            # No response_url (the home tab, a modal): the app's direct message.
            await self.client.chat_postMessage(channel=user_id, blocks=blocks, text=text)

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

    async def close(self) -> None:
        await self.directory.close()
        if self._http is not None:
            await self._http.close()

    async def _respond(self, respond: Any, **message: Any) -> None:
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

    # --- listeners --------------------------------------------------------------------
    def _register(self) -> None:
        app = self.app
        app.middleware(self._dedupe)
        names = "|".join(re.escape(c.lstrip("/")) for c in COMMANDS)
        early = self._acks_early
        app.command(re.compile(rf"^/({names})$"))(early(self.on_command))
        app.action(re.compile(r".+"))(early(self.on_action))
        app.view(re.compile(r".+"))(early(self.on_view))
        for callback_id in SHORTCUTS:
            app.shortcut(callback_id)(early(self.on_shortcut))
        for name, method in self.event_listeners().items():
            app.event(name)(early(method))

    def _acks_early(self, listener: Callable[..., Awaitable[None]]) -> Callable[..., Any]:
        """Run a listener in a task of its own; return to bolt once it acks (or ends).

        Left to itself, bolt runs the listener beside the request and looks every 10 ms
        whether it has acked: each ack came at least 10 ms late, and each request
        cost a hundred wake-ups a second until then. With `process_before_response`
        bolt instead answers Slack when the listener returns, which here is the
        moment it acks; what follows the ack goes on in the listener's task (drained
        on shutdown like any request under way). An event listener takes no ack:
        it returns at once, and bolt acks the event for it.
        """

        @functools.wraps(listener)
        async def run(**kwargs: Any) -> None:
            loop = asyncio.get_running_loop()
            gate: asyncio.Future[bool] = loop.create_future()  # True: acked; False: ended

            def open_gate(acked: bool) -> None:
                if not gate.done():
                    gate.set_result(acked)

            ack = kwargs.get("ack")
            if ack is not None:

                async def ack_and_go(*args: Any, **options: Any) -> Any:
                    try:
                        return await ack(*args, **options)
                    finally:
                        open_gate(True)

                kwargs["ack"] = ack_and_go
            else:
                open_gate(True)  # an event: bolt acks it
            task = loop.create_task(listener(**kwargs))
            # Drained on shutdown from the start: it may still be keeping its request.
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)
            task.add_done_callback(lambda _: open_gate(False))
            if await gate:
                task.add_done_callback(_log_failure)
                return
            task.result()  # ended before acking: bolt's error handler answers a failure

        return run

    def _background(self, work: Coroutine[Any, Any, None]) -> None:
        """Work nobody waits for (a presence refresh), kept referenced."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

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
    # (`accept`); `live` is False when a worker picks one up after its process died,
    # when a trigger id (for opening a modal) has long expired.
    async def on_command(self, ack: Any, command: dict, respond: Any, context: Any) -> None:
        kept: _Kept | None = context.get(KEPT)
        if kept is None:  # over Socket Mode: kept here
            inbound = await self.accept("command", command, ack)
        else:  # kept before its ack (`_command_first`)
            kept.started = True
            inbound = kept.id
            await ack()
        try:
            if inbound is not None:
                async with self._guard(inbound, respond, None):
                    await self.process_command(command, respond, inbound)
        finally:
            if kept is not None and not kept.finished.done():
                kept.finished.set_result(None)

    async def process_command(
        self, command: dict, respond: Any, inbound: int, *, live: bool = True
    ) -> None:
        person = await self.person_id(command["user_id"])
        mentions = await self._mentions(command.get("text", ""))
        reply, handles = await self.run(translate.slash_command(command, person, mentions), inbound)
        trigger = command.get("trigger_id") if live else None
        await self.answer(reply, handles, respond=respond, trigger_id=trigger)
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
        inbound = await self.accept("action", body, ack)
        if inbound is not None:
            url = respond if body.get("response_url") else None
            async with self._guard(inbound, url, body["user"]["id"]):
                await self.process_action(body, respond, inbound)

    async def process_action(
        self, body: dict, respond: Any, inbound: int, *, live: bool = True
    ) -> None:
        (action,) = body["actions"][:1]
        person = await self.person_id(body["user"]["id"])
        values = picker_values((body.get("state") or {}).get("values") or {})
        command = translate.button_press(
            body, action_name(action["action_id"]), action.get("value", ""), person, values
        )
        reply, handles = await self.run(command, inbound)
        has_url = bool(body.get("response_url"))
        await self.answer(
            reply,
            handles,
            respond=respond if has_url else None,
            trigger_id=body.get("trigger_id") if live else None,
            user_id=body["user"]["id"],
        )
        await self._finished(inbound, reply, live)

    async def on_view(self, ack: Any, body: dict, view: dict) -> None:
        person = await self.person_id(body["user"]["id"])
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
        await self.answer(reply, handles, user_id=body["user"]["id"])

    async def on_shortcut(self, ack: Any, body: dict, respond: Any) -> None:
        inbound = await self.accept("shortcut", body, ack)
        if inbound is not None:
            async with self._guard(inbound, respond, body["user"]["id"]):
                await self.process_shortcut(body, respond, inbound)

    async def process_shortcut(
        self, body: dict, respond: Any, inbound: int, *, live: bool = True
    ) -> None:
        person = await self.person_id(body["user"]["id"])
        reply, handles = await self.run(translate.message_shortcut(body, person), inbound)
        await self.answer(reply, handles, respond=respond, user_id=body["user"]["id"])
        await self._finished(inbound, reply, live)

    async def on_app_mention(self, event: dict, context: Any) -> None:
        person = await self.person_id(event["user"])
        mentions = await self._mentions(event.get("text", ""))
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
        person = await self.person_id(event["user"])
        await self.run(translate.thread_message(event, person))

    async def on_home(self, event: dict) -> None:
        if event.get("tab", "home") != "home":
            return
        person = await self.person_id(event["user"])
        command = Command(PLATFORM, person, "", action_id="home.open")
        reply, _ = await self.run(command)
        await self.client.views_publish(user_id=event["user"], view=home_view(reply))

    async def on_user(self, event: dict) -> None:
        """team_join, user_change: linked as the directory read links (bots skipped, a
        deactivated account no longer suggested, a changed e-mail followed)."""
        user = event.get("user") or {}
        if not isinstance(user, dict) or not user.get("id"):
            return
        _, found = await asyncio.to_thread(
            directory.linking, directory.link_users, self.services.db, [user], self.services.clock()
        )
        self._people.pop(str(user["id"]), None)
        self._people.update(found)

    async def on_revoked(self, event: dict, context: Any) -> None:
        """Removed from a workspace, or its tokens revoked: see oauth.Revocations."""
        await self.revocations(event, context)

    async def on_user_huddle(self, event: dict) -> None:
        user = event.get("user") or {}
        in_huddle = (user.get("profile") or {}).get("huddle_state") == "in_a_huddle"
        await self._set_presence(user.get("id"), Status.BUSY if in_huddle else None, None)

    async def on_user_status(self, event: dict) -> None:
        user = event.get("user") or {}
        profile = user.get("profile") or {}
        status = STATUS_EMOJI.get(profile.get("status_emoji") or "")
        expires = profile.get("status_expiration") or 0
        await self._set_presence(user.get("id"), status, int(expires) or None)

    async def _set_presence(
        self, user_id: str | None, status: Status | None, until_epoch: int | None
    ) -> None:
        if not user_id:
            return
        person_id = await self.person_id(user_id)

        def write() -> None:
            with self.services.db.unit_of_work() as session:
                person = session.get(Person, person_id)
                if person is None:
                    return
                now = self.services.clock()
                current = person.presence
                if status is None:
                    # Only undo what Slack set; a status set in the bot stands.
                    if current is not None and current.source == PLATFORM:
                        presence.set_status(session, person, Status.AVAILABLE, now, None, PLATFORM)
                    return
                duration = None
                if until_epoch:
                    duration = timedelta(seconds=max(0, until_epoch - int(now.timestamp())))
                presence.set_status(session, person, status, now, duration, PLATFORM)

        await asyncio.to_thread(write)

    # --- Socket Mode ------------------------------------------------------------------
    async def connect_socket_mode(self) -> Any:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        handler = AsyncSocketModeHandler(self.app, self.settings.app_token)
        await handler.connect_async()
        return handler
