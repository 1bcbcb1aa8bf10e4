"""Who is looking: magic-link sign-in, the session cookie, CSRF, and role checks.

The session is a signed cookie (HttpOnly, SameSite=Lax, Secure behind https)
holding the person's id, an expiry and a CSRF secret. Every request reads the
person again, so a changed role or a removed person counts at once. Every
POST but the sign-in itself must carry the session's CSRF token.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiohttp import web
from sqlalchemy import select

from bot.db.models import Person, PlatformEvent, Role
from bot.runtime.events import first_delivery
from bot.services import Services
from bot.signing import BadToken, DashboardSettings, sign, unsign

SESSION_COOKIE = "whoknows_session"
FLASH_COOKIE = "whoknows_flash"
SESSION_TTL = timedelta(hours=8)  # a shift
EVENT_PLATFORM = "dashboard"  # where used sign-in links are recorded
PREFIX = "/dashboard"
CSRF_FIELD = "csrf"


@dataclass(frozen=True)
class Viewer:
    id: int
    key: str
    name: str
    role: Role
    team_id: int | None
    csrf: str

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    @property
    def is_lead(self) -> bool:
        """A lead or an admin: whoever sees the leads' pages."""
        return self.role in {Role.LEAD, Role.ADMIN}


VIEWER = web.RequestKey("viewer", Viewer)
# The result of the last form (text, kind), shown once.
FLASH = web.RequestKey("flash", tuple)


@dataclass(frozen=True)
class Reason:
    """Why a request was refused, as the page that says so."""

    title: str
    text: str
    status: int = 403


class Refusal(Exception):
    """Ends a request with the page of its reason."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(reason.title)
        self.reason = reason


NOT_SIGNED_IN = Reason(
    "Please sign in",
    "Ask the bot for a link: type `dashboard` (or `/whoknows dashboard`) in chat.",
    401,
)
LEADS_ONLY = Reason(
    "Leads and admins only",
    "This page shows a team's numbers: it is open to the team's lead and to admins.",
)
ADMINS_ONLY = Reason("Admins only", "The audit log is open to admins.")
NO_CSRF = Reason(
    "Form refused",
    "The form did not carry this session's security token, so nothing was changed. "
    "Open the page again from the dashboard and resend it.",
)

LINK_USED = Reason(
    "This link was already used",
    "Each sign-in link works once. Ask the bot for a new one: type `dashboard` in chat.",
)
LINK_EXPIRED = Reason(
    "This link has expired",
    "Sign-in links work for ten minutes. Ask the bot for a new one: type `dashboard` in chat.",
)
LINK_INVALID = Reason(
    "This link is not valid",
    "The link is damaged or was not made by this server. "
    "Copy the whole link, or ask the bot for a new one: type `dashboard` in chat.",
)


def require_lead(viewer: Viewer) -> None:
    if not viewer.is_lead:
        raise Refusal(LEADS_ONLY)


def require_admin(viewer: Viewer) -> None:
    if not viewer.is_admin:
        raise Refusal(ADMINS_ONLY)


# ------------------------------------------------------------------ sign-in


def check_link(services: Services, settings: DashboardSettings, token: str) -> int:
    """The person a sign-in link is for, before it is used; a Refusal if it cannot be."""
    now = services.clock()
    claims = _link_claims(settings, token, now)
    with services.db.unit_of_work() as session:
        used = session.scalar(
            select(PlatformEvent.key).where(
                PlatformEvent.platform == EVENT_PLATFORM, PlatformEvent.key == claims["n"]
            )
        )
    if used is not None:
        raise Refusal(LINK_USED)
    return int(claims["p"])


def use_link(services: Services, settings: DashboardSettings, token: str) -> int:
    """Spend a sign-in link: the person it is for, once, whichever tab or worker is first."""
    now = services.clock()
    claims = _link_claims(settings, token, now)
    with services.db.unit_of_work() as session:
        if not first_delivery(session, EVENT_PLATFORM, str(claims["n"]), now):
            raise Refusal(LINK_USED)
    return int(claims["p"])


def _link_claims(settings: DashboardSettings, token: str, now: datetime) -> dict[str, object]:
    try:
        claims = unsign(settings.secret, "login", token, now)
    except BadToken as bad:
        raise Refusal(LINK_EXPIRED if bad.expired else LINK_INVALID) from None
    if not isinstance(claims.get("p"), int) or not isinstance(claims.get("n"), str):
        raise Refusal(LINK_INVALID)
    return claims


def session_cookie(settings: DashboardSettings, person_id: int, now: datetime) -> str:
    claims = {
        "p": person_id,
        "exp": int((now + SESSION_TTL).timestamp()),
        "c": secrets.token_urlsafe(24),
    }
    return sign(settings.secret, "session", claims)


def set_cookie(
    response: web.StreamResponse,
    settings: DashboardSettings,
    name: str,
    value: str,
    max_age: int,
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PREFIX,
        httponly=True,
        samesite="Lax",
        secure=settings.secure_cookies,
    )


def start_session(response: web.StreamResponse, settings: DashboardSettings, value: str) -> None:
    set_cookie(response, settings, SESSION_COOKIE, value, int(SESSION_TTL.total_seconds()))


def end_session(response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path=PREFIX)


def _cookie_claims(
    settings: DashboardSettings, purpose: str, cookie: str | None, now: datetime
) -> dict[str, object] | None:
    if not cookie:
        return None
    try:
        return unsign(settings.secret, purpose, cookie, now)
    except BadToken:
        return None


def read_session(
    settings: DashboardSettings, cookie: str | None, now: datetime
) -> tuple[int, str] | None:
    """(person id, CSRF secret) from a valid, unexpired session cookie."""
    claims = _cookie_claims(settings, "session", cookie, now)
    if claims is None:
        return None
    person, csrf = claims.get("p"), claims.get("c")
    return (person, csrf) if isinstance(person, int) and isinstance(csrf, str) else None


# -------------------------------------------------------------------- flash


FLASH_TTL = timedelta(minutes=2)


def flash(
    response: web.StreamResponse, settings: DashboardSettings, text: str, kind: str, now: datetime
) -> None:
    """A one-line result shown on the next page (after a form's redirect)."""
    claims = {"m": text[:300], "k": kind, "exp": int((now + FLASH_TTL).timestamp())}
    value = sign(settings.secret, "flash", claims)
    set_cookie(response, settings, FLASH_COOKIE, value, int(FLASH_TTL.total_seconds()))


def read_flash(
    settings: DashboardSettings, cookie: str | None, now: datetime
) -> tuple[str, str] | None:
    claims = _cookie_claims(settings, "flash", cookie, now)
    if claims is None:
        return None
    return str(claims.get("m", "")), str(claims.get("k", "info"))


# --------------------------------------------------------------- middleware

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OPEN_PATHS = (f"{PREFIX}/login", f"{PREFIX}/static/")


def _load_viewer(services: Services, person_id: int, csrf: str) -> Viewer | None:
    with services.db.unit_of_work() as session:
        person = session.get(Person, person_id)
        if person is None or person.deleted_at is not None:
            return None
        return Viewer(person.id, person.key, person.display_name, person.role, person.team_id, csrf)


def guard(
    services: Services, settings: DashboardSettings
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """Finds the viewer (or refuses), and refuses a POST without the session's CSRF token."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(OPEN_PATHS):
            return await handler(request)
        found = read_session(settings, request.cookies.get(SESSION_COOKIE), services.clock())
        viewer = (
            await asyncio.to_thread(_load_viewer, services, *found) if found is not None else None
        )
        if viewer is None:
            if request.method == "POST":
                raise Refusal(NO_CSRF)
            raise Refusal(NOT_SIGNED_IN)
        if request.method == "POST":
            form = await request.post()
            sent = form.get(CSRF_FIELD)
            if not isinstance(sent, str) or not hmac.compare_digest(
                sent.encode(errors="replace"), viewer.csrf.encode()
            ):
                raise Refusal(NO_CSRF)
        request[VIEWER] = viewer
        return await handler(request)

    return middleware


def viewer_of(request: web.Request) -> Viewer:
    return request[VIEWER]
