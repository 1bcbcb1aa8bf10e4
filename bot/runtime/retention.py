"""What is kept, and for how long: old questions and spent event keys are deleted.

The query log holds what agents asked (personal data in their own words): it
is kept `query_log_days` (WHOKNOWS_QUERY_LOG_DAYS) for gap reports and KPIs.
Event keys only need to outlive the platforms' retries (Slack's last comes
after five minutes; dashboard links live ten), so a week is plenty; so do
finished inbound requests (their content is dropped as soon as they finish).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete

from bot.db.models import PlatformEvent, QueryLog
from bot.runtime import inbox
from bot.services import Services

EVENT_KEYS_KEPT = timedelta(days=7)


@dataclass(frozen=True)
class Pruned:
    questions: int
    event_keys: int
    requests: int = 0


def prune(services: Services) -> Pruned:
    now = services.clock()
    with services.db.unit_of_work() as session:
        questions = session.execute(
            delete(QueryLog).where(
                QueryLog.created_at < now - timedelta(days=services.settings.query_log_days)
            )
        ).rowcount
        event_keys = session.execute(
            delete(PlatformEvent).where(PlatformEvent.received_at < now - EVENT_KEYS_KEPT)
        ).rowcount
        requests = inbox.prune(session, now - EVENT_KEYS_KEPT)
    return Pruned(questions or 0, event_keys or 0, requests)
