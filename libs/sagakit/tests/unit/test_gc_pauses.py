"""``gc_pauses.settle``: startup objects are frozen out of the collector's walk, and every
collection's pause is observed on ``saga_gc_pause_seconds`` (conftest.py thaws after each)."""

from __future__ import annotations

import gc

import pytest
from prometheus_client import REGISTRY

from sagakit.ops import gc_pauses

pytestmark = pytest.mark.unit


def _collections(generation: int) -> float:
    value = REGISTRY.get_sample_value(
        "saga_gc_pause_seconds_count", {"generation": str(generation)}
    )
    return value or 0.0


def test_objects_made_before_settling_are_not_walked_by_a_full_collection() -> None:
    made_at_startup = [{"route": "/orders"}]
    assert any(o is made_at_startup for o in gc.get_objects())  # what a full collection walks

    frozen = gc_pauses.settle()

    assert frozen == gc.get_freeze_count() > 1000  # the interpreter's and the test run's
    assert not any(o is made_at_startup for o in gc.get_objects())
    made_after = [{"order": 2}]
    assert any(o is made_after for o in gc.get_objects())  # still collected when garbage


def test_every_collection_is_timed_by_generation() -> None:
    gc_pauses.settle()
    full, young = _collections(2), _collections(0)

    gc.collect()
    gc.collect(0)

    assert _collections(2) == full + 1
    assert _collections(0) == young + 1


def test_settling_twice_does_not_time_a_collection_twice() -> None:
    gc_pauses.settle()
    gc_pauses.settle()
    full = _collections(2)

    gc.collect()

    assert _collections(2) == full + 1
    assert gc.callbacks.count(gc_pauses._observe) == 1


def test_the_young_generation_is_collected_less_often_than_by_default() -> None:
    assert gc.get_threshold()[0] < gc_pauses.YOUNG_THRESHOLD  # Python's default (700) before

    gc_pauses.settle()

    assert gc.get_threshold() == (gc_pauses.YOUNG_THRESHOLD, 10, 10)
