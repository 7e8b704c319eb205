"""Exponential backoff with jitter, shared by the consumer loop, the relay and the retry worker."""

from __future__ import annotations

import random


def backoff_delay(
    attempt: int, *, base: float, cap: float, jitter: bool = True, rng: random.Random | None = None
) -> float:
    """Delay before retry number ``attempt`` (1-based): ``base * 2**(attempt-1)``, capped.

    With jitter the delay is drawn uniformly from [half, full] of that value ("equal jitter"), so
    replicas retrying the same outage spread out but never retry immediately.
    """
    ceiling = min(cap, base * (2 ** max(attempt - 1, 0)))
    if not jitter:
        return ceiling
    return (rng or random).uniform(ceiling / 2, ceiling)
