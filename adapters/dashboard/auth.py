"""Who is looking: magic-link sign-in, the session cookie, CSRF, and role checks.

The session is a signed cookie (HttpOnly, SameSite=Lax, Secure behind https)
holding the person's id, an expiry, a CSRF secret and the person's session
generation. Every request reads the person again, so a changed role or a
removed person counts at once; signing out, a changed role or a removal move
the generation on (bot/db/models.py), which ends every earlier session, a copied
cookie's included. Every POST but the sign-in itself must carry the session's
CSRF token, and every POST, the sign-in too, must come from one of our own pages
(`same_origin`).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy import select

from bot.db.models import Person, PlatformEvent, Role
from bot.runtime.events import first_delivery
from bot.services import Services
from bot.services.audit import record
from bot.signing import BadToken, DashboardSettings, sign, unsign

log = logging.getLogger(__name__)

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
    # The page also deletes the session cookie (a session that has ended).
    ends_session: bool = False


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

SESSION_ENDED = Reason(
    "Your session has ended",
    "You signed out, or your role changed. Ask the bot for a new link: type `dashboard` in chat.",
    401,
    ends_session=True,
)
CROSS_SITE = Reason(
    "Form refused",
    "The form was sent from another site, so nothing was done. "
    "Open the dashboard yourself (from the link in chat) and try again.",
)
CROSS_SITE_LOGIN = Reason(
    "Sign-in refused",
    "This sign-in was sent from another site, so it was not used. "
    "Open the link from chat yourself: it still works.",
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


def session_cookie(
    settings: DashboardSettings, person_id: int, generation: int, now: datetime
) -> str:
    claims = {
        "p": person_id,
        "exp": int((now + SESSION_TTL).timestamp()),
        "c": secrets.token_urlsafe(24),
        "g": generation,
    }
    return sign(settings.secret, "session", claims)


def start_generation(services: Services, person_id: int) -> int:
    """The session generation a session of this person starts under."""
    with services.db.unit_of_work() as session:
        person = session.get(Person, person_id)
        if person is None or person.deleted_at is not None:
            raise Refusal(LINK_INVALID)
        return person.session_generation


def end_sessions(services: Services, person_id: int) -> None:
    """Signing out: this person's sessions end, in every browser (a copied cookie too)."""
    with services.db.unit_of_work() as session:
        person = session.get(Person, person_id)
        if person is not None:
            person.end_sessions()


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


@dataclass(frozen=True)
class SessionClaims:
    person_id: int
    csrf: str
    generation: int


def read_session(
    settings: DashboardSettings, cookie: str | None, now: datetime
) -> SessionClaims | None:
    """What a valid, unexpired session cookie says (not yet whether it has ended)."""
    claims = _cookie_claims(settings, "session", cookie, now)
    if claims is None:
        return None
    person, csrf, generation = claims.get("p"), claims.get("c"), claims.get("g")
    if isinstance(person, int) and isinstance(csrf, str) and isinstance(generation, int):
        return SessionClaims(person, csrf, generation)
    return None


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


def _load_viewer(services: Services, claims: SessionClaims, path: str) -> Viewer:
    """Who a session is, read again; a Refusal once it has ended (audited: someone
    holds the cookie of a session its person ended)."""
    with services.db.unit_of_work() as session:
        person = session.get(Person, claims.person_id)
        if person is None:
            raise Refusal(NOT_SIGNED_IN)
        removed = person.deleted_at is not None
        if not removed and person.session_generation == claims.generation:
            return Viewer(
                person.id, person.key, person.display_name, person.role, person.team_id, claims.csrf
            )
        record(
            session,
            person.id,
            "dashboard.session",
            f"person:{person.key}",
            allowed=False,
            reason="removed" if removed else "ended",
            path=path[:200],
        )
    raise Refusal(SESSION_ENDED)


def _origin(url: str) -> str | None:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower() if parts.scheme and parts.netloc else None


def same_origin(request: web.Request, settings: DashboardSettings) -> bool:
    """Whether a POST came from one of our own pages (not a form on another site).

    Sec-Fetch-Site when the browser sends it (all current ones do); else Origin (our
    pages' Referrer-Policy lets browsers send it on their own forms), else Referer.
    Our origins: WHOKNOWS_PUBLIC_URL's, and the one the browser asked for (its Host).
    A request with none of the three comes from no browser's form: it passes.
    """
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site in {"same-origin", "none"}
    sent = request.headers.get("Origin")
    if sent is None:
        referer = request.headers.get("Referer")
        if referer is None:
            return True
        sent = _origin(referer) or "null"
    ours = {_origin(settings.public_url), f"http://{request.host}", f"https://{request.host}"}
    return sent.strip().lower() in ours


def cross_site(request: web.Request, settings: DashboardSettings) -> dict[str, str] | None:
    """None for a POST from our own pages; else what it said of where it came from
    (logged, and for the audit log)."""
    if same_origin(request, settings):
        return None
    sent = {
        "origin": (request.headers.get("Origin") or "")[:100],
        "fetch_site": (request.headers.get("Sec-Fetch-Site") or "")[:20],
    }
    log.warning(
        "dashboard: refused a POST to %s from another site (Origin %r, Sec-Fetch-Site %r)",
        request.path,
        sent["origin"],
        sent["fetch_site"],
    )
    return sent


def link_person(settings: DashboardSettings, token: str, now: datetime) -> int | None:
    """Whose sign-in link this is, if it is one (used or not)."""
    try:
        return int(_link_claims(settings, token, now)["p"])  # type: ignore[call-overload]
    except Refusal:
        return None


def audit_cross_site_login(services: Services, person_id: int | None, sent: dict[str, str]) -> None:
    with services.db.unit_of_work() as session:
        person = session.get(Person, person_id) if person_id is not None else None
        record(
            session,
            person.id if person is not None else None,
            "dashboard.login",
            f"person:{person.key}" if person is not None else "dashboard",
            allowed=False,
            reason="sent from another site",
            **sent,
        )


def guard(
    services: Services, settings: DashboardSettings
) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    """Finds the viewer (or refuses), and refuses a POST without the session's CSRF token."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        # The sign-in checks this itself, to audit whose link was sent.
        login = request.path == f"{PREFIX}/login"
        if request.method == "POST" and not login and cross_site(request, settings) is not None:
            raise Refusal(CROSS_SITE)
        if request.path.startswith(OPEN_PATHS):
            return await handler(request)
        found = read_session(settings, request.cookies.get(SESSION_COOKIE), services.clock())
        if found is None:
            if request.method == "POST":
                raise Refusal(NO_CSRF)
            raise Refusal(NOT_SIGNED_IN)
        viewer = await asyncio.to_thread(_load_viewer, services, found, request.path)
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
