"""Riding out a brief database outage (a failover, a restart) in one unit of work.

Only for work that is safe to run again: a read, or a write whose unit of work
rolled back when the connection broke. pool_pre_ping replaces dead pooled
connections; this covers the ones that break mid-use and the seconds the
server is away.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from sqlalchemy.exc import InterfaceError, OperationalError

log = logging.getLogger(__name__)
P = ParamSpec("P")
T = TypeVar("T")
UNAVAILABLE = (OperationalError, InterfaceError)


def retrying(work: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`work(*args, **kwargs)`, tried 6 times over about 8 s while the database is away."""
    attempts = 6
    for attempt in range(1, attempts + 1):
        try:
            return work(*args, **kwargs)
        except UNAVAILABLE as error:
            if attempt == attempts:
                raise
            log.warning("database unavailable (%s); trying again", type(error).__name__)
            time.sleep(0.25 * 2 ** (attempt - 1))
    raise AssertionError("unreachable")
