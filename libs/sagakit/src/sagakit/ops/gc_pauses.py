"""Python's garbage collector, kept from stalling the event loop.

A full (generation 2) collection walks every tracked object in the process, and a service holds
~110,000 of them once started (modules, FastAPI routes, pydantic schemas, SQLAlchemy tables).
Measured under load at 150 orders/s, such a collection stopped the orchestrator for ~100 ms about
every 4 s, and a participant for 150-280 ms: every saga in flight in that process waited. Those
objects live as long as the process, so ``settle()`` moves them out of the collector's sight
(``gc.freeze``) once startup is over; a full collection then walks only what was made since.
Collection itself stays on: reference cycles made while running are still freed.

With that alone, full collections still came every ~3 s and took 10-25 ms: at Python's default
of 700 net new container objects per young collection, a saga's objects (envelopes, states,
rows) lived through several collections while in flight, were promoted to the oldest generation
and died there. So the youngest generation is collected after 20,000 instead. Objects freed by
reference counting never count, so in steady state a collection comes only when cyclic garbage
has piled up (a few MB at most).

``saga_gc_pause_seconds`` shows every collection's pause, by generation, so a stall of this kind
is visible on ``/metrics`` without a profiler.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from sagakit.ops import metrics

YOUNG_THRESHOLD = 20_000  # Python's default: 700

_started: dict[int, float] = {}
# The histogram's children, made once: the callback runs inside a collection, which may start
# while this very thread holds the histogram's (non-reentrant) label lock, e.g. while /metrics
# is rendered; ``labels()`` would then wait for ever. A child's ``observe`` locks only around
# float arithmetic, which allocates nothing the collector tracks.
_pauses = {generation: metrics.GC_PAUSE_SECONDS.labels(str(generation)) for generation in (0, 1, 2)}


def _observe(phase: str, info: dict[str, Any]) -> None:
    generation = info["generation"]
    if phase == "start":
        _started[generation] = time.perf_counter()
    elif generation in _started:
        _pauses[generation].observe(time.perf_counter() - _started.pop(generation))


def settle() -> int:
    """At the end of startup: collect once, freeze what survives, collect the young less often,
    and time every collection from now on. Returns the number of objects frozen. Calling it
    again freezes what was made since (harmless)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 10, 10)
    if _observe not in gc.callbacks:
        gc.callbacks.append(_observe)
    return gc.get_freeze_count()
