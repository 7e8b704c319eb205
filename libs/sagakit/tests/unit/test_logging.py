import logging

import pytest

from sagakit.ops.logging import RepeatFilter

pytestmark = pytest.mark.unit


def record(name: str, msg: str) -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, None, None)


def test_a_repeated_library_line_passes_once_per_window_with_a_count() -> None:
    repeats = RepeatFilter(("aiokafka",), window_s=30)
    passed = [repeats.filter(record("aiokafka.conn", "Unable to connect")) for _ in range(100)]
    assert passed == [True] + [False] * 99
    repeats.window_s = 0  # the window has passed
    later = record("aiokafka.conn", "Unable to connect")
    assert repeats.filter(later)
    assert "99 more like it" in later.getMessage()


def test_our_own_lines_and_distinct_messages_are_never_held_back() -> None:
    repeats = RepeatFilter(("aiokafka",))
    assert all(repeats.filter(record("sagakit.consumer", "same")) for _ in range(5))
    assert repeats.filter(record("aiokafka", "one"))
    assert repeats.filter(record("aiokafka", "two"))
