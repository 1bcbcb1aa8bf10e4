"""Skills: one module per user-facing capability, each registering on a Router."""

from bot.router import Router
from skills import (
    availability,
    dashboard,
    expertise,
    growth,
    help,
    home,
    huddle,
    kb,
    mentor,
    tags,
    team,
    whoknows,
)

MODULES = (
    whoknows,
    huddle,
    expertise,
    growth,
    mentor,
    availability,
    kb,
    tags,
    team,
    dashboard,
    help,
    home,
)


def build_router() -> Router:
    router = Router()
    for module in MODULES:
        module.register(router)
    return router
