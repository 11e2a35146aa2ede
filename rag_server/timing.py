"""The steps of a request are timed in milliseconds, two decimals (an answer's `timings_ms`)."""

from __future__ import annotations

import time


def ms_since(since: float) -> float:
    """Milliseconds from `since` (a time.perf_counter() reading) until now."""
    return round((time.perf_counter() - since) * 1000, 2)
