import random

import pytest

from sagakit.backoff import backoff_delay

pytestmark = pytest.mark.unit


def test_backoff_doubles_until_the_cap_without_jitter() -> None:
    delays = [backoff_delay(n, base=0.5, cap=6.0, jitter=False) for n in range(1, 7)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 6.0, 6.0]


def test_jittered_backoff_stays_between_half_and_full_delay() -> None:
    rng = random.Random(7)
    for attempt in range(1, 12):
        ceiling = min(10.0, 0.2 * 2 ** (attempt - 1))
        for _ in range(200):
            delay = backoff_delay(attempt, base=0.2, cap=10.0, rng=rng)
            assert ceiling / 2 <= delay <= ceiling
