"""Exponential backoff with jitter, shared by the consumer loop, the relay and the retry worker."""

from __future__ import annotations

import asyncio
import contextlib
import random


def backoff_delay(
    attempt: int, *, base: float, cap: float, jitter: bool = True, rng: random.Random | None = None
) -> float:
    """Delay before retry number ``attempt`` (1-based): ``base * 2**(attempt-1)``, capped.

    With jitter the delay is drawn uniformly from [half, full] of that value ("equal jitter"), so
    replicas retrying the same outage spread out but never retry immediately.
    """
    ceiling: float = min(cap, base * 2.0 ** max(attempt - 1, 0))
    if not jitter:
        return ceiling
    uniform = rng.uniform if rng is not None else random.uniform
    return float(uniform(ceiling / 2, ceiling))


async def sleep_unless(event: asyncio.Event, seconds: float) -> bool:
    """Sleep up to ``seconds``, waking early when ``event`` is set; True if it was set."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout=seconds)
    return event.is_set()
