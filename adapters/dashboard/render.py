"""Pages from Jinja2 templates: autoescaped, with the viewer, navigation and CSRF token."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from adapters.dashboard.auth import CSRF_FIELD, FLASH, PREFIX, VIEWER, Viewer

HERE = Path(__file__).parent
STATIC = HERE / "static"
# (path, label, who sees it: "all", "lead" (leads and admins) or "admin").
NAVIGATION = (
    ("/coverage", "Coverage", "lead"),
    ("/gaps", "Gaps", "lead"),
    ("/huddles", "Huddles", "lead"),
    ("/kpis", "Team KPIs", "lead"),
    ("/people", "People", "lead"),
    ("/growth", "Growth", "lead"),
    ("/digest", "Team digest", "lead"),
    ("/tags", "Topics", "lead"),
    ("/knowledge", "Knowledge", "all"),
    ("/audit", "Audit log", "admin"),
)
SECURITY_HEADERS = {
    # Nothing but our own stylesheet: no script runs, no asset comes from elsewhere.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    # Nothing to other sites; our own forms then carry their Origin (with no-referrer,
    # browsers send `Origin: null`), which the sign-in checks (auth.same_origin).
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def when(moment: datetime | None) -> str:
    return "—" if moment is None else f"{moment:%d %b %Y %H:%M} UTC"


def percent(share: float | None) -> str:
    return "—" if share is None else f"{share:.0%}"


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(duration=duration, when=when, percent=percent)
    env.globals.update(prefix=PREFIX, csrf_field=CSRF_FIELD)
    return env


ENVIRONMENT = _environment()


def navigation(viewer: Viewer | None) -> list[tuple[str, str]]:
    if viewer is None:
        return []
    allowed = (
        {"all"}
        | ({"lead"} if viewer.is_lead else set())
        | ({"admin"} if viewer.is_admin else set())
    )
    items = [(PREFIX + path, label) for path, label, who in NAVIGATION if who in allowed]
    if not viewer.is_lead:
        items.insert(0, (f"{PREFIX}/people/{viewer.key}", "My profile"))
    return items


def page(
    request: web.Request,
    template: str,
    *,
    status: int = 200,
    **context: Any,
) -> web.Response:
    viewer = request.get(VIEWER)
    html = ENVIRONMENT.get_template(template).render(
        viewer=viewer,
        csrf=viewer.csrf if viewer else "",
        nav=navigation(viewer),
        here=request.path,
        flash=request.get(FLASH),
        **context,
    )
    return web.Response(
        text=html, status=status, content_type="text/html", headers=SECURITY_HEADERS
    )


def message(request: web.Request, title: str, text: str, status: int) -> web.Response:
    return page(request, "message.html", status=status, title=title, text=text)
