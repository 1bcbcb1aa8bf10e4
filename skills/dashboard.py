"""`dashboard`: a private, short-lived, single-use sign-in link to the leads' dashboard.

The link carries a token signed by `bot.signing`: who, until when, and a
random id. The dashboard (adapters/dashboard) checks the signature and the
time, then records the id once (`bot.runtime.events.first_delivery`), so a link that
leaked from a chat history cannot be used again.
"""

from __future__ import annotations

from bot.router import Context, Router
from bot.signing import LINK_TTL, DashboardSettings, login_url
from bot.types import Reply, Text

LINK_TEXT = "Your dashboard link, for you only: it works once, within {minutes} minutes.\n{url}"


def dashboard_link(ctx: Context) -> Reply:
    me = ctx.actor()
    settings = DashboardSettings.from_settings(ctx.services.settings)
    url = login_url(settings, me.id, ctx.services.clock())
    minutes = int(LINK_TTL.total_seconds() // 60)
    return Reply.of(Text(LINK_TEXT.format(minutes=minutes, url=url)), private=True)


def register(router: Router) -> None:
    router.command(
        "dashboard",
        usage="dashboard",
        summary="a private sign-in link to the dashboard: coverage, gaps, huddles, KPIs",
    )(dashboard_link)
