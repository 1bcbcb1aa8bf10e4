"""Services: the domain operations skills call, each given a Session by its caller."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from bot.config import Settings
from bot.db import Database
from bot.db.models import utcnow


@dataclass
class Services:
    db: Database
    settings: Settings
    # Injected so tests can stand at any hour in any time zone.
    clock: Callable[[], datetime] = field(default=utcnow)
