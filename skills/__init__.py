"""Skills: one module per user-facing capability, each registering on a Router."""

from bot.router import Router
from skills import (
    availability,
    dashboard,
    expertise,
    help,
    home,
    huddle,
    kb,
    tags,
    team,
    whoknows,
)

MODULES = (whoknows, huddle, expertise, availability, kb, tags, team, dashboard, help, home)


def build_router() -> Router:
    router = Router()
    for module in MODULES:
        module.register(router)
    return router
