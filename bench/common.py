"""What the benchmarks share: the synthetic org's words, free ports, waiting for a server,
quantiles."""

from __future__ import annotations

import socket
import time

# The words the synthetic orgs' tags and texts are made of.
WORDS = (
    "account bill refund card sim data roaming contract payment credit debit porting upgrade "
    "device insurance signal network broadband router fibre outage speed fraud identity "
    "password login voucher topup prepaid balance invoice dispute charge fee late cancel "
    "offer loyalty plan tariff bundle minutes texts abroad travel unlock repair screen "
    "battery warranty delivery order return exchange address email phone number transfer "
    "owner business family discount student senior vat receipt statement direct mandate"
).split()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 120, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(every)
    raise RuntimeError(f"nothing listening on {port}")


def pct(values: list[float], q: float) -> float | None:
    """The q-quantile of durations in seconds, in milliseconds (None: none measured)."""
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 1)
