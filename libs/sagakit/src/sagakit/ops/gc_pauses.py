"""Python's garbage collector, kept from stalling the event loop.

A full (generation 2) collection walks every tracked object in the process, and a service holds
~110,000 of them once started (modules, FastAPI routes, pydantic schemas, SQLAlchemy tables).
Measured under load at 150 orders/s, such a collection stopped the orchestrator for ~100 ms about
every 4 s, and a participant for 150-280 ms: every saga in flight in that process waited. Those
objects live as long as the process, so ``settle()`` moves them out of the collector's sight
(``gc.freeze``) once startup is over; a full collection then walks only what was made since, and
took at most 5 ms in the same run. Collection itself stays on: reference cycles made while
running are still freed.

``saga_gc_pause_seconds`` shows every collection's pause, by generation, so a stall of this kind
is visible on ``/metrics`` without a profiler.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from sagakit.ops import metrics

_started: dict[int, float] = {}


def _observe(phase: str, info: dict[str, Any]) -> None:
    generation = info["generation"]
    if phase == "start":
        _started[generation] = time.perf_counter()
    elif generation in _started:
        pause = time.perf_counter() - _started.pop(generation)
        metrics.GC_PAUSE_SECONDS.labels(str(generation)).observe(pause)


def settle() -> int:
    """At the end of startup: collect once, freeze what survives, and time every collection
    from now on. Returns the number of objects frozen. Calling it again freezes what was made
    since (harmless)."""
    gc.collect()
    gc.freeze()
    if _observe not in gc.callbacks:
        gc.callbacks.append(_observe)
    return gc.get_freeze_count()
