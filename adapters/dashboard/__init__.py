"""The leads' dashboard: an aiohttp sub-application that `whoknows serve` mounts at /dashboard.

Server-rendered pages (Jinja2, autoescaped) with charts drawn as inline SVG,
one local stylesheet and no script, so it works offline and behind a strict
Content-Security-Policy. Sign-in is by a magic link from chat
(`skills/dashboard.py`, signed by `bot/signing.py`); roles are checked here
on every request, and every change goes through the services, which audit it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from aiohttp import web
from sqlalchemy.orm import Session

from adapters.dashboard import auth
from adapters.dashboard.auth import PREFIX, Refusal
from adapters.dashboard.render import STATIC, message
from bot.db.models import Person
from bot.services import Services
from bot.services.accounts import LinkError
from bot.services.audit import Denied
from bot.services.expertise import UnknownTag
from bot.signing import DashboardSettings

T = TypeVar("T")


class ChangeError(ValueError):
    """A change the services refused for its input (not its author): said on the next page."""


@dataclass(frozen=True)
class Dashboard:
    services: Services
    settings: DashboardSettings

    async def read(self, work: Callable[[Session], T]) -> T:
        """Run `work` in one unit of work, off the event loop."""

        def run() -> T:
            with self.services.db.unit_of_work() as session:
                return work(session)

        return await asyncio.to_thread(run)

    async def change(self, actor_id: int, work: Callable[[Session, Person], str]) -> str:
        """Run a change as the viewer; a refusal is audited and ends in a 403 page, but a
        link or merge the accounts refuse an admin is said on the page the form returns to."""
        return await asyncio.to_thread(self._change, actor_id, work)

    def _change(self, actor_id: int, work: Callable[[Session, Person], str]) -> str:
        try:
            with self.services.db.unit_of_work() as session:
                actor = session.get(Person, actor_id)
                if actor is None or actor.deleted_at is not None:
                    raise Refusal(auth.NOT_SIGNED_IN)
                return work(session, actor)
        except LinkError as refused:
            # An admin's link the accounts would not make (someone else's account, an
            # e-mail taken): audited, and said on the page with what to do instead.
            with self.services.db.unit_of_work() as session:
                refused.audit(session)
            raise ChangeError(refused.message) from None
        except Denied as denial:
            with self.services.db.unit_of_work() as session:
                denial.audit(session)
            raise Refusal(auth.Reason("Not allowed", denial.message)) from None
        except UnknownTag as unknown:
            hint = f" Did you mean {', '.join(unknown.suggestions)}?" if unknown.suggestions else ""
            raise ChangeError(f"There is no topic '{unknown.name}'.{hint}") from None
        except (LookupError, ValueError) as error:
            raise ChangeError(str(error)) from None


DASHBOARD = web.AppKey("dashboard", Dashboard)


@web.middleware
async def refusals(request: web.Request, handler: auth.Handler) -> web.StreamResponse:
    """A refused request, or a missing page, ends in a page that says why."""
    try:
        return await handler(request)
    except Refusal as refusal:
        reason = refusal.reason
        response = message(request, reason.title, reason.text, reason.status)
        if reason.ends_session:
            auth.end_session(response)
        return response
    except web.HTTPNotFound:
        if request.path == PREFIX:
            raise web.HTTPMovedPermanently(f"{PREFIX}/") from None
        return message(request, "Not found", "There is nothing at this address.", 404)


def flashes(settings: DashboardSettings, services: Services) -> Callable[..., object]:
    """The result of the last form, shown once on the page it redirected to."""

    @web.middleware
    async def middleware(request: web.Request, handler: auth.Handler) -> web.StreamResponse:
        cookie = request.cookies.get(auth.FLASH_COOKIE)
        if request.method != "GET" or cookie is None:
            return await handler(request)
        shown = auth.read_flash(settings, cookie, services.clock())
        if shown is not None:
            request[auth.FLASH] = shown
        response = await handler(request)
        response.del_cookie(auth.FLASH_COOKIE, path=PREFIX)
        return response

    return middleware


def build_dashboard(services: Services) -> web.Application:
    from adapters.dashboard import changes, pages

    settings = DashboardSettings.from_settings(services.settings)
    app = web.Application(
        middlewares=[refusals, flashes(settings, services), auth.guard(services, settings)]
    )
    app[DASHBOARD] = Dashboard(services, settings)
    pages.routes(app)
    changes.routes(app)
    app.router.add_static("/static", STATIC, name="static")
    return app


def mount_dashboard(web_app: web.Application, services: Services) -> None:
    web_app.add_subapp(PREFIX, build_dashboard(services))
