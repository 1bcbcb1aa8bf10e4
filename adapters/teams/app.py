"""The Teams bot: `/api/messages` on botbuilder's CloudAdapter, then translate, dispatch, render.

Every activity is authenticated before anything reads it: with MICROSOFT_APP_ID
set it must carry a Bot Framework JWT (issuer, audience = our app id, signed
with a published key, `serviceurl` claim = the activity's serviceUrl), or it
gets 401 and has no effect. botbuilder fetches the signing keys with blocking
`requests`, so the check runs in a thread. With no app id (local development)
only requests over loopback are taken.

Then the activity is acknowledged at once and handled in a task (Teams wants an
answer within 15 s; the router may take longer): messages and card buttons
become Commands, conversation and installation updates keep conversation
references and the roster in step. Answers go back through the connector;
huddle posts and DMs go through the outbox and the worker, which is kicked.

People are linked, never made twice (adapters/teams/roster.py): a sender or a
roster member is the person with their AAD object id, else the person a lead
imported with their e-mail (from the roster), else someone new. Rosters are read
a page at a time on install, on start and daily, by one worker of many.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import ipaddress
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from datetime import timedelta
from types import SimpleNamespace
from typing import Any, TypeVar

from aiohttp import web
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity
from botframework.connector.auth import AuthenticateRequestResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from adapters.commands import CommandRunner, reply_handles
from adapters.intake import Intake
from adapters.teams import graph, roster, store, translate
from adapters.teams.credentials import AppToken
from adapters.teams.messenger import TeamsMessenger
from adapters.teams.settings import BOT_FRAMEWORK, BOT_FRAMEWORK_TENANT, TeamsSettings
from adapters.teams.translate import PLATFORM, Account
from bot import messages
from bot.db.retry import retrying
from bot.router import Router
from bot.runtime import events, inbox
from bot.runtime.ports import DeliveryError
from bot.services import Services, accounts
from bot.services.tenants import FIRST_SEEN, AllowList
from bot.types import Command, Form, Notice, Reply, Text

log = logging.getLogger(__name__)
T = TypeVar("T")

WELCOME = (
    "Hi, I'm whoknows: I find the colleague who knows, so you never put a customer on hold "
    "to hunt. Ask me here (`refund for a prepaid top-up`), or mention me in a channel "
    "(`@whoknows refunds`)."
)
# An Action.Execute must be answered in the HTTP response; the real answer follows as a message.
INVOKE_OK = {"statusCode": 200, "type": "application/vnd.microsoft.activity.message", "value": ""}
NOT_LOCAL = "MICROSOFT_APP_ID is not set: only requests over loopback are accepted"
# Activities that may ask something of the bot: kept from before their 200 until
# answered (bot/runtime/inbox.py), as Slack's commands are. Others are only deduplicated.
KEPT = frozenset({"message", "invoke"})
# What the token alone is checked against, before the body is read: Teams' channel id
# (the signing key must be endorsed for it), and no serviceUrl yet.
TOKEN_ONLY = Activity(channel_id="msteams")
Handler = Callable[[dict[str, Any], int], Awaitable[Reply | None]]
# Two workers linking one new account at once: the second tries again, and finds it.
LINK_ATTEMPTS = 3
# How often each worker asks whether a team's roster is due (at most).
ROSTER_CHECK_S = 900.0


def bot_framework_configuration(settings: TeamsSettings) -> SimpleNamespace:
    """botbuilder's configuration, every endpoint spelled out (so tests can move them)."""
    return SimpleNamespace(
        APP_ID=settings.app_id or "",
        APP_PASSWORD=settings.app_password or "",
        APP_TYPE=settings.app_type,
        APP_TENANTID=settings.app_tenant_id,
        TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL=settings.openid_metadata_url,
        TO_BOT_FROM_CHANNEL_TOKEN_ISSUER=BOT_FRAMEWORK,
        TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL=(
            f"{settings.login_url}/{BOT_FRAMEWORK_TENANT}/v2.0/.well-known/openid-configuration"
        ),
        TO_CHANNEL_FROM_BOT_LOGIN_URL=settings.bot_authority,
        TO_CHANNEL_FROM_BOT_OAUTH_SCOPE=BOT_FRAMEWORK,
        OAUTH_URL=BOT_FRAMEWORK,
        CALLER_ID="urn:botframework:azure",
        VALIDATE_AUTHORITY=True,
    )


def over_loopback(request: web.Request) -> bool:
    """Whether the request came in on a loopback address, from a loopback address."""
    transport = request.transport
    local = transport.get_extra_info("sockname") if transport is not None else None
    try:
        return bool(
            local
            and ipaddress.ip_address(str(local[0]).split("%")[0]).is_loopback
            and ipaddress.ip_address(str(request.remote or "")).is_loopback
        )
    except ValueError:
        return False


class BadActivity(ValueError):
    """A body that is no activity: answered 400 (after its token was checked)."""


def parse_activity(raw: bytes) -> tuple[dict[str, Any], Activity]:
    """The body as JSON and as botbuilder's Activity, or BadActivity saying why not."""
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise BadActivity("not JSON") from None
    if not isinstance(body, dict) or not body.get("type") or not isinstance(body["type"], str):
        raise BadActivity("not an activity")
    try:
        return body, Activity().deserialize(body)
    except Exception as error:  # msrest's DeserializationError, mostly
        raise BadActivity(f"{type(error).__name__} reading it") from None


def delivery_key(activity: Mapping[str, Any]) -> str | None:
    """Activity ids are unique within a conversation (channel post ids are timestamps)."""
    if not activity.get("id"):
        return None
    where = hashlib.sha256(translate.conversation_id(activity).encode()).hexdigest()[:16]
    return f"{activity['id']}@{where}"[:200]


class TeamsAdapter:
    def __init__(
        self,
        services: Services,
        router: Router,
        settings: TeamsSettings,
        commands: CommandRunner | None = None,
    ) -> None:
        self.services = services
        self.router = router
        self.settings = settings
        # Shared with the other platforms: ranking runs where acks do not wait for it.
        self.commands = commands or CommandRunner(services, router)
        self.auth = ConfigurationBotFrameworkAuthentication(bot_framework_configuration(settings))
        self.cloud = CloudAdapter(self.auth)
        token = None
        if settings.app_id and settings.app_password:
            token = AppToken(
                settings.app_id,
                settings.app_password,
                settings.bot_authority,
                f"{BOT_FRAMEWORK}/.default",
            )
        self.messenger = TeamsMessenger(
            services.db,
            services.clock,
            token,
            bot_id=f"28:{settings.app_id}" if settings.app_id else None,
        )
        self.presence: graph.GraphPresence | None = None
        if settings.graph_enabled:
            assert settings.graph_client_id and settings.graph_client_secret
            self.presence = graph.GraphPresence(
                settings.graph_api_url,
                AppToken(
                    settings.graph_client_id,
                    settings.graph_client_secret,
                    settings.graph_authority,
                    graph.SCOPE,
                ),
            )
        # The tenants served (bot/services/tenants.py): a single-tenant bot's own, those
        # of WHOKNOWS_TEAMS_TENANTS, or the first whose activity came with a valid token.
        own = settings.app_tenant_id if settings.app_type == "SingleTenant" else None
        self.tenants = AllowList(
            services.db, PLATFORM, settings.tenants, services.clock, fixed_home=own
        )
        self._people: dict[str, int] = {}  # AAD object id → person id; safe to lose
        # Rosters being read by this process, by team or chat: one read of each at a time.
        self._reading: dict[str, asyncio.Task[roster.Progress]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        # Turns under way in this process (their kept rows: `intake.open`).
        self._turns: set[asyncio.Task[None]] = set()
        self.intake = Intake(services, PLATFORM)
        self.handlers: dict[str, Handler] = {
            "message": self.on_message,
            "conversationUpdate": self.on_roster,
            "installationUpdate": self.on_roster,
            "invoke": self.on_invoke,
        }

    # --- HTTP -------------------------------------------------------------------------
    def mount(self, web_app: web.Application) -> None:
        web_app.router.add_post("/api/messages", self.handle)
        web_app.on_startup.append(self._start)
        web_app.on_cleanup.append(self._stop)

    async def handle(self, request: web.Request) -> web.Response:
        if not self.settings.app_id and not over_loopback(request):
            return web.Response(status=401, text=NOT_LOCAL)
        header = request.headers.get("Authorization") or None
        if self.settings.app_id and not (header or "").startswith("Bearer "):
            return web.Response(status=401, text="a Bot Framework token is required")
        checked = await self.authenticate(await request.read(), header)
        if isinstance(checked, web.Response):
            return checked
        body, activity, claims = checked
        ok = web.json_response(INVOKE_OK) if body["type"] == "invoke" else web.Response()
        if not await self._served(body):
            self._not_served(body)
            return ok
        key = delivery_key(body)
        inbound: int | None = 0
        if key is not None and body["type"] in KEPT:
            # Kept before its 200: a process that dies after it leaves it to another
            # worker (`recover`), not lost.
            inbound = await self.intake.keep(key, {"kind": "activity", "body": body})
        elif key is not None and not await asyncio.to_thread(self._first_delivery, key):
            inbound = None
        if inbound is None:
            return ok  # delivered before

        async def turn(_: Any) -> None:
            await self.on_activity(body, inbound or 0)

        self.spawn(self.cloud.process_activity(claims, activity, turn), self._turns)
        return ok

    async def authenticate(
        self, raw: bytes, header: str | None
    ) -> tuple[dict[str, Any], Activity, AuthenticateRequestResult] | web.Response:
        """The token first, then the body: (the activity as JSON, as botbuilder's
        Activity, its checked claims), or the response that refuses it.

        The token's signature, issuer, audience and lifetime need nothing from the
        body, so a request without a valid token is refused before its body is read;
        the `serviceurl` claim is then checked against the activity's serviceUrl.
        """

        def check() -> tuple[dict[str, Any], Activity, AuthenticateRequestResult]:
            async def both() -> tuple[dict[str, Any], Activity, AuthenticateRequestResult]:
                if self.settings.app_id:
                    await self.auth.authenticate_request(TOKEN_ONLY, header)  # type: ignore[arg-type]
                body, activity = parse_activity(raw)
                return body, activity, await self.auth.authenticate_request(activity, header)  # type: ignore[arg-type]

            return asyncio.run(both())

        try:
            return await asyncio.to_thread(check)
        except BadActivity as bad:
            log.warning("a Teams activity was malformed (%s): answered 400", bad)
            return web.Response(status=400, text="expected an activity as JSON")
        except Exception as error:  # PermissionError, and whatever a malformed token raises
            log.warning("Teams activity refused: %s: %s", type(error).__name__, str(error)[:200])
            return web.Response(status=401, text="invalid Bot Framework token")

    def _settle_tenants(self) -> None:
        """No allow-list and no tenant recorded, but references kept (from before the
        allow-list): the tenant of the earliest is the first seen."""
        if self.tenants.home() is not None:
            return
        with self.services.db.reading() as session:
            tenant = store.first_tenant(session)
        if tenant:
            self.tenants.claim(tenant, FIRST_SEEN)

    def _serves(self, tenant: str | None) -> bool:
        """Whether a tenant is served, once the home is known (`tenants.settled`)."""
        if not self.settings.app_id and self.tenants.configured is None:
            return True
        return self.tenants.admits(tenant)

    async def _served(self, body: Mapping[str, Any]) -> bool:
        """Whether the activity's tenant is served (the first one seen, while no allow-list
        is configured, becomes the one served). Local development serves any."""
        if not self.settings.app_id and self.tenants.configured is None:
            return True
        tenant = translate.tenant_id(body)
        if not isinstance(tenant, str) or not tenant:
            return False
        if self.tenants.settled:
            return self.tenants.admits(tenant)
        return await asyncio.to_thread(self.tenants.claim, tenant, FIRST_SEEN)

    def _not_served(self, body: Mapping[str, Any]) -> None:
        """An activity from a tenant not served: nothing kept, nobody created. A person
        who asked something of the bot (or installed it) is told why, and it is audited;
        anything else (channel chatter, roster changes) is dropped."""
        kind = str(body.get("type"))
        change = (
            translate.roster(body) if kind in {"conversationUpdate", "installationUpdate"} else None
        )
        asked = (kind == "message" and translate.said(body).to_bot) or kind == "invoke"
        if not asked and not (change is not None and change.installed):
            log.debug("dropped a Teams %s from a tenant not served", kind)
            return
        sender = translate.account(body.get("from"))
        tenant = translate.tenant_id(body)

        async def refuse() -> None:
            await asyncio.to_thread(
                self.tenants.refused,
                tenant if isinstance(tenant, str) else None,
                sender.key,
                "an installation" if change is not None else f"a {kind}",
            )
            if (sender.id and not sender.id.startswith("28:")) or change is not None:
                notice = Reply.notice(messages.TEAMS_NOT_SERVED, "warning")
                await self.messenger.answer(body, notice, {}, reply_to=change is None)

        self.spawn(refuse())

    def _first_delivery(self, key: str) -> bool:
        with self.services.db.unit_of_work() as session:
            return events.first_delivery(session, PLATFORM, key, self.services.clock())

    def spawn(
        self, work: Coroutine[Any, Any, Any], tasks: set[asyncio.Task[None]] | None = None
    ) -> None:
        """Work after the response, kept referenced in `tasks` (turns go in `_turns`,
        drained on shutdown; the rest is cancelled)."""

        async def guarded() -> None:
            try:
                await work
            except Exception:
                log.exception("handling a Teams activity failed")

        group = self._tasks if tasks is None else tasks
        task = asyncio.get_running_loop().create_task(guarded())
        group.add(task)
        task.add_done_callback(group.discard)

    async def _start(self, app: web.Application) -> None:
        try:
            log.info("Teams: serving tenants %s", await asyncio.to_thread(self.tenants.describe))
        except Exception as error:  # the database is not there yet: each activity reads it
            log.warning("Teams: could not read which tenants are served (%s)", type(error).__name__)
        loop = asyncio.get_running_loop()
        if self.presence is not None:
            self._tasks.add(loop.create_task(self._presence_loop()))
        self._tasks.add(loop.create_task(self._roster_loop()))

    async def _stop(self, app: web.Application) -> None:
        tasks = self._tasks | self._turns
        for task in tasks:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.messenger.close()

    async def drain(self, timeout: float) -> None:
        """Stopping: let the turns under way finish; hand the rest to another worker."""
        await self.intake.hand_over(self._turns, timeout)

    async def recover(self, pending: inbox.Pending) -> None:
        """An activity whose process died after its 200: deliver its kept answer, or run it."""
        body: dict[str, Any] = pending.payload.get("body") or {}
        if pending.reply is None:
            await self.on_activity(body, pending.id)
            return
        handles = await asyncio.to_thread(reply_handles, self.services, PLATFORM, pending.reply)
        data = translate.card_data(body)
        pressed, form = data is not None, data is not None and translate.is_form(data)
        await self.respond(body, pending.reply, handles, pressed=pressed, form=form)
        await self.intake.finish(pending.id)

    # --- one turn ---------------------------------------------------------------------
    async def on_activity(self, body: dict[str, Any], inbound: int = 0) -> None:
        """One activity; `inbound` is its kept row (0: not kept), closed once answered."""
        await asyncio.to_thread(retrying, self._remember, body)
        handler = self.handlers.get(str(body.get("type")))
        reply = await handler(body, inbound) if handler is not None else None
        await self.intake.finish(inbound, reply)

    def _remember(self, body: Mapping[str, Any]) -> None:
        """Keep the references this activity carries, for messages sent later."""
        service_url = str(body.get("serviceUrl") or "")
        if not service_url:
            return
        now = self.services.clock()
        kind = translate.conversation_type(body)
        sender = translate.account(body.get("from"))
        common = {
            "service_url": service_url,
            "tenant_id": translate.tenant_id(body),
            "bot_id": (body.get("recipient") or {}).get("id"),
            "now": now,
        }
        with self.services.db.unit_of_work() as session:
            if kind == "personal":
                if sender.id:
                    chat = translate.conversation_id(body)
                    store.remember_user(
                        session,
                        aad_object_id=sender.key,
                        user_id=sender.id,
                        conversation_id=chat,
                        **common,
                    )
                return
            place = translate.channel_id(body) or translate.conversation_id(body)
            store.remember_channel(
                session,
                conversation_id=place,
                kind="channel" if kind == "channel" else "groupChat",
                team_id=translate.team_id(body),
                **common,
            )
            if sender.id and not sender.id.startswith("28:"):
                store.remember_user(session, aad_object_id=sender.key, user_id=sender.id, **common)

    # --- people -----------------------------------------------------------------------
    async def person_id(
        self, who: Account, body: Mapping[str, Any] | None = None, timezone: str | None = None
    ) -> int:
        """The person behind an activity's sender, linked before anyone is created.

        The sender carries only ids: someone whoknows does not know yet is looked up
        in the conversation's roster (the connector's member call, as botbuilder's
        TeamsInfo.get_member), whose e-mail links them to the person a lead imported.
        """
        if who.key in self._people:
            return self._people[who.key]
        known = await asyncio.to_thread(retrying, self._known, who.key)
        if known is not None and not timezone:
            self._people[who.key] = known
            return known
        member: Mapping[str, Any] | None = None
        if known is None and who.aad_object_id and body is not None:
            member = await self._look_up(body, who.id)
        if not member or member.get("aadObjectId") != who.aad_object_id:
            member = {"id": who.id, "aadObjectId": who.aad_object_id, "name": who.name}
        raw, now = member, self.services.clock()

        def link(session: Session) -> int:
            found = accounts.link_account(
                session, roster.account(raw, timezone=timezone), now, seen_in=roster.SEEN_IN
            )
            return found.id

        person = await asyncio.to_thread(self._linking, link)
        self._people[who.key] = person
        return person

    def _known(self, key: str) -> int | None:
        with self.services.db.reading() as session:
            identity = accounts.find_identities(session, PLATFORM, [key]).get(key.lower())
            if identity is None or identity.person.deleted_at is not None:
                return None
            return identity.person.id

    async def _look_up(self, body: Mapping[str, Any], user_id: str) -> dict[str, Any] | None:
        """A member of the activity's team or chat as the roster lists them, or None."""
        place = translate.team_id(body) or translate.conversation_id(body)
        try:
            return await self.messenger.member(str(body["serviceUrl"]), place, user_id)
        except Exception as error:
            # Linked by id alone then: if that makes a second record of someone, the
            # next roster read lists it (`whoknows people conflicts`) for an admin to merge.
            log.warning("could not look up a Teams member: %s", str(error)[:200])
            return None

    def _linking(self, work: Callable[[Session], T]) -> T:
        """One unit of work that links accounts, tried again when another worker
        linked one of the same accounts (or took the same new handle) meanwhile."""

        def once() -> T:
            with self.services.db.unit_of_work() as session:
                return work(session)

        for attempt in range(1, LINK_ATTEMPTS + 1):
            try:
                return retrying(once)
            except IntegrityError:
                if attempt == LINK_ATTEMPTS:
                    raise
                log.info("a Teams account was linked elsewhere meanwhile; linking again")
        raise AssertionError("unreachable")

    async def mentioned(self, who: Account, body: Mapping[str, Any]) -> int | None:
        """The person an inbound mention names (its entity has only the 29: id)."""
        if who.aad_object_id:
            return await self.person_id(who, body)

        def known() -> str | None:
            with self.services.db.unit_of_work() as session:
                row = store.user_by_teams_id(session, who.id)
                return row.aad_object_id if row else None

        aad = await asyncio.to_thread(known)
        if aad is None:
            member = await self._look_up(body, who.id)
            aad = (member or {}).get("aadObjectId")
            if not member or not aad:
                return None  # not someone in this team: never a made-up person
            await self._link_members([member], self._place(body))
        return await self.person_id(Account(who.id, aad, who.name), body)

    @staticmethod
    def _place(body: Mapping[str, Any]) -> roster.Place:
        """The team or chat an activity came from, to read or keep its roster."""
        return roster.Place(
            translate.team_id(body) or translate.conversation_id(body),
            str(body["serviceUrl"]),
            translate.tenant_id(body),
            (body.get("recipient") or {}).get("id"),
        )

    async def _link_members(
        self, members: list[Mapping[str, Any]], place: roster.Place, *, removed: bool = False
    ) -> dict[str, int]:
        """One roster page: references kept and accounts linked in one unit of work,
        off the event loop. Removed members are no longer suggested."""
        now = self.services.clock()

        def link(session: Session) -> dict[str, int]:
            return roster.link_page(session, members, place, now, removed=removed)

        linked = await asyncio.to_thread(self._linking, link)
        for key in linked:
            if removed:
                self._people.pop(key, None)
            else:
                self._people[key] = linked[key]
        return linked

    # --- rosters ------------------------------------------------------------------------
    async def read_roster(self, place: roster.Place, why: str) -> roster.Progress:
        """Every member of a team or chat, page by page, each page linked as it comes;
        a read already under way in this process is joined, not started again."""
        key = place.conversation_id
        task = self._reading.get(key)
        if task is None or task.done():
            task = asyncio.get_running_loop().create_task(self._read(place, why))
            self._reading[key] = task
            self._tasks.add(task)  # cancelled on shutdown with the rest
            task.add_done_callback(self._tasks.discard)
            task.add_done_callback(lambda done: self._read_done(key, done))
        return await asyncio.shield(task)

    def _read_done(self, key: str, task: asyncio.Task[roster.Progress]) -> None:
        if self._reading.get(key) is task:
            del self._reading[key]

    async def _read(self, place: roster.Place, why: str) -> roster.Progress:
        progress = roster.Progress()
        started = time.monotonic()
        log.info("reading the Teams roster of %s (%s)", place.conversation_id, why)
        pages = self.messenger.member_pages(place.service_url, place.conversation_id)
        async for page in pages:
            await self._link_members(page, place)
            progress.pages += 1
            progress.members += len(page)
            log.info(
                "Teams roster of %s: page %d read, %d members so far",
                place.conversation_id,
                progress.pages,
                progress.members,
            )
        log.info(
            "read the Teams roster of %s: %d members in %d pages, %.1f s",
            place.conversation_id,
            progress.members,
            progress.pages,
            time.monotonic() - started,
        )
        return progress

    async def sync_rosters(self, *, at_start: bool = False) -> int:
        """Read the roster of every team the app is in that no worker has read in this
        period (a day; at start, the last few minutes); the number read."""
        every = timedelta(seconds=self.settings.roster_interval_s)
        kind = "start" if at_start else "daily"
        window = roster.AT_START if at_start else every
        now = self.services.clock()

        if not self.tenants.settled:
            await asyncio.to_thread(self._settle_tenants)  # read once, before the claims

        def due(session: Session) -> list[roster.Place]:
            places = [
                p
                for p in roster.known_teams(session)
                # A team of a tenant not served (kept from before) is not read.
                if self._serves(p.tenant_id)
                and roster.claim(session, p.conversation_id, now, window, kind)
            ]
            for place in places if at_start else ():
                roster.claim(session, place.conversation_id, now, every, "daily")
            return places

        places = await asyncio.to_thread(retrying, self._unit, due)
        read = 0
        for place in places:
            try:
                await self.read_roster(place, "at start" if at_start else "daily")
                read += 1
            except Exception:
                log.exception("reading the Teams roster of %s failed", place.conversation_id)

                def release(session: Session, place: roster.Place = place) -> None:
                    roster.release(session, place.conversation_id, now, window, kind)

                # Another check (this worker's or another's) tries again.
                await asyncio.to_thread(retrying, self._unit, release)
        return read

    def _unit(self, work: Callable[[Session], T]) -> T:
        with self.services.db.unit_of_work() as session:
            return work(session)

    async def _roster_loop(self) -> None:
        at_start = True
        check = min(ROSTER_CHECK_S, self.settings.roster_interval_s / 4)
        while True:
            try:
                await self.sync_rosters(at_start=at_start)
            except Exception:  # the next check tries again
                log.exception("reading Teams rosters failed")
            at_start = False
            await asyncio.sleep(check * random.uniform(0.8, 1.2))

    # --- commands ---------------------------------------------------------------------
    async def run(self, command: Command, inbound: int = 0) -> tuple[Reply, dict[int, str]]:
        return await self.commands.run(command, inbound)

    async def respond(
        self,
        body: Mapping[str, Any],
        reply: Reply,
        handles: dict[int, str],
        *,
        pressed: bool = False,
        form: bool = False,
    ) -> None:
        """Answer where the person asked.

        A mention in a channel is answered in its thread, as it was asked in the open;
        a private answer to a button pressed on a channel post (a form, a notice for
        one person) goes to the presser's 1:1 chat with the bot instead.
        """
        if not reply.elements:
            return
        personal = translate.conversation_type(body) == "personal"
        settled = not any(
            isinstance(e, Form) or (isinstance(e, Notice) and e.severity in {"warning", "error"})
            for e in reply.elements
        )
        if form and personal and settled and body.get("replyToId"):
            # A submitted form is replaced by its outcome, so it cannot be sent twice.
            await self.messenger.replace(body, reply, handles)
            return
        if pressed and reply.private and not personal:
            who = translate.account(body.get("from"))
            try:
                await self.messenger.direct_message(who.key, reply, handles=handles)
                return
            except DeliveryError:
                log.info("no 1:1 chat for a private answer; answering in the conversation")
        await self.messenger.answer(body, reply, handles)

    async def on_message(self, body: dict[str, Any], inbound: int = 0) -> Reply | None:
        sender = translate.account(body.get("from"))
        if not sender.id or sender.id.startswith("28:"):
            return None  # bots, including this one
        person = await self.person_id(sender, body, body.get("localTimezone") or None)
        data = translate.card_data(body)
        if data is not None:
            reply, handles = await self.run(translate.card_action(data, body, person), inbound)
            await self.respond(body, reply, handles, pressed=True, form=translate.is_form(data))
            return reply
        said = translate.said(body)
        if translate.conversation_type(body) == "channel" and translate.thread_root(body):
            # A reply in a thread: the huddle it belongs to, if any, records it.
            await self.run(translate.thread_message(body, person))
        if not said.to_bot:
            return None
        mentions = {}
        for token, who in said.mentions.items():
            found = await self.mentioned(who, body)
            if found is not None:
                mentions[token] = found
        command = translate.text_command(body, person, said.text, mentions)
        reply, handles = await self.run(command, inbound)
        await self.respond(body, reply, handles)
        return reply

    async def on_invoke(self, body: dict[str, Any], inbound: int = 0) -> Reply | None:
        """Action.Execute (Universal Actions): handled like Action.Submit."""
        if body.get("name") != translate.CARD_ACTION:
            return None
        data = translate.card_data(body)
        sender = translate.account(body.get("from"))
        if data is None or not sender.id:
            return None
        person = await self.person_id(sender, body)
        reply, handles = await self.run(translate.card_action(data, body, person), inbound)
        await self.respond(body, reply, handles, pressed=True, form=translate.is_form(data))
        return reply

    # --- installs and rosters ---------------------------------------------------------
    async def on_roster(self, body: dict[str, Any], inbound: int = 0) -> None:
        change = translate.roster(body)
        team = translate.team_id(body)
        place = self._place(body)
        if change.uninstalled:
            await asyncio.to_thread(self._forget, body)
            return
        if change.installed and team:
            await self._sync_channels(body, team)
        if change.installed and translate.conversation_type(body) != "personal":
            # The whole roster, in the background: the welcome does not wait for it.
            self.spawn(self._installed(place))
        elif change.added:
            await self._sync_added(body, place, change.added)
        if change.removed:
            removed = [{"id": a.id, "aadObjectId": a.aad_object_id} for a in change.removed]
            await self._link_members(removed, place, removed=True)
        if change.event and change.channel:
            await asyncio.to_thread(self._channel_event, body, change.event, change.channel)
        if change.greet:
            await self._welcome(body)

    async def _installed(self, place: roster.Place) -> None:
        """Read a roster the app was just added to; today's daily read is then done."""
        now, every = self.services.clock(), timedelta(seconds=self.settings.roster_interval_s)

        def claim(session: Session) -> bool:
            return roster.claim(session, place.conversation_id, now, every, "daily")

        await asyncio.to_thread(retrying, self._unit, claim)
        await self.read_roster(place, "installed")

    async def _sync_channels(self, body: Mapping[str, Any], team: str) -> None:
        try:
            channels = await self.messenger.channels(str(body["serviceUrl"]), team)
        except Exception:
            log.exception("could not list the channels of a Teams team")
            return
        for channel in channels:
            if channel.get("id"):
                await asyncio.to_thread(
                    self._channel_event,
                    body,
                    "channelCreated",
                    (str(channel["id"]), channel.get("name")),
                )

    async def _sync_added(
        self, body: Mapping[str, Any], place: roster.Place, added: tuple[Account, ...]
    ) -> None:
        """New members: their names and e-mails come from the connector (membersAdded
        has only ids)."""
        members: list[Mapping[str, Any]] = []
        for who in added:
            member = await self._look_up(body, who.id)
            if not member or not member.get("id"):
                log.warning("keeping a new Teams member by their ids alone")
                member = {"id": who.id, "aadObjectId": who.aad_object_id, "name": who.name}
            members.append(member)
        await self._link_members(members, place)

    def _channel_event(
        self, body: Mapping[str, Any], event: str, channel: tuple[str, str | None]
    ) -> None:
        with self.services.db.unit_of_work() as session:
            if event == "channelDeleted":
                store.forget_channel(session, channel[0])
                return
            if event not in {"channelCreated", "channelRenamed", "channelRestored"}:
                return
            store.remember_channel(
                session,
                conversation_id=channel[0],
                kind="channel",
                team_id=translate.team_id(body),
                name=channel[1],
                service_url=str(body["serviceUrl"]),
                tenant_id=translate.tenant_id(body),
                bot_id=(body.get("recipient") or {}).get("id"),
                now=self.services.clock(),
            )

    def _forget(self, body: Mapping[str, Any]) -> None:
        with self.services.db.unit_of_work() as session:
            team = translate.team_id(body)
            if team:
                store.forget_team(session, team)
            elif translate.conversation_type(body) == "personal":
                who = translate.account(body.get("from"))
                store.set_user_active(session, who.key, False)
            else:
                store.forget_channel(session, translate.conversation_id(body))

    async def _welcome(self, body: Mapping[str, Any]) -> None:
        installer = translate.account(body.get("from"))
        if not installer.id:
            return
        person = await self.person_id(installer, body)
        help_reply, _ = await self.run(Command(PLATFORM, person, "help"))
        reply = Reply((Text(WELCOME), *help_reply.elements), private=False)
        await self.messenger.answer(body, reply, {}, reply_to=False)

    # --- presence ---------------------------------------------------------------------
    async def refresh_presence(self) -> int:
        assert self.presence is not None

        def everyone() -> list[str]:
            with self.services.db.unit_of_work() as session:
                return store.teams_people(session)

        statuses = await self.presence.fetch(
            self.messenger.session, await asyncio.to_thread(everyone)
        )
        lasts = timedelta(seconds=2 * self.settings.presence_interval_s)

        def write() -> int:
            with self.services.db.unit_of_work() as session:
                return graph.apply(session, statuses, self.services.clock(), lasts)

        return await asyncio.to_thread(write)

    async def _presence_loop(self) -> None:
        while True:
            try:
                await self.refresh_presence()
            except Exception:  # the next round tries again; working hours stand meanwhile
                log.exception("reading Teams presence from Graph failed")
            await asyncio.sleep(self.settings.presence_interval_s)
