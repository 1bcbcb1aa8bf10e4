"""Services: the domain operations skills call, each given a Session by its caller."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.config import Settings
from bot.db import Database
from bot.db.models import utcnow

if TYPE_CHECKING:
    from bot.matching import Matcher


@dataclass
class Services:
    db: Database
    settings: Settings
    # Injected so tests can stand at any hour in any time zone.
    clock: Callable[[], datetime] = field(default=utcnow)
    _matcher: Matcher | None = field(default=None, repr=False)

    @property
    def matcher(self) -> Matcher:
        """This worker's matcher, made on first use (loading the model takes a second)."""
        # Imported here: matching builds on the services, not the other way round.
        from bot.matching import Matcher
        from bot.matching.embeddings import load_encoder

        if self._matcher is None:
            encoder = load_encoder() if self.settings.semantic else None
            self._matcher = Matcher(
                encoder,
                reading=self.db.reading,
                stale_after=timedelta(days=self.settings.stale_self_declared_days),
            )
        return self._matcher
