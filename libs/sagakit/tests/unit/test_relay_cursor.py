"""Where the relay reads next: above what it published, plus the ids it saw missing."""

import pytest

from sagakit.outbox.relay import _Cursor

pytestmark = pytest.mark.unit


def test_the_first_read_is_a_full_one_then_it_reads_from_above_what_it_saw() -> None:
    cursor = _Cursor(full_read_every_s=5)
    assert cursor.where_to_read(now=0) == (0, [])
    cursor.advance([3, 4, 7, 8], now=0)  # 1 and 2 were published long ago: not gaps
    assert cursor.where_to_read(now=1) == (8, [5, 6])


def test_a_missing_id_that_shows_up_is_no_longer_a_gap() -> None:
    cursor = _Cursor()
    cursor.where_to_read(now=0)
    cursor.advance([10, 13], now=0)
    cursor.advance([11], now=1)
    assert cursor.where_to_read(now=2) == (13, [12])


def test_gaps_are_forgotten_after_a_while_and_the_full_read_comes_back() -> None:
    cursor = _Cursor(full_read_every_s=5, forget_gaps_after_s=3)
    cursor.where_to_read(now=0)
    cursor.advance([1, 3], now=0)
    cursor.advance([], now=4)  # a rolled-back id never shows up
    assert cursor.where_to_read(now=4) == (3, [])
    assert cursor.where_to_read(now=5) == (0, [])


def test_a_jump_in_ids_keeps_a_bounded_number_of_gaps() -> None:
    cursor = _Cursor(max_gaps=100)
    cursor.where_to_read(now=0)
    cursor.advance([5], now=0)
    cursor.where_to_read(now=1)
    cursor.advance([1_000_000], now=1)
    after, gaps = cursor.where_to_read(now=2)
    assert after == 1_000_000
    assert len(gaps) == 100


def test_the_first_rows_ever_read_leave_no_gaps_below_them() -> None:
    cursor = _Cursor()
    cursor.where_to_read(now=0)
    cursor.advance([], now=0)  # an empty outbox at start
    cursor.where_to_read(now=1)
    cursor.advance([3_000_000, 3_000_002], now=1)
    assert cursor.where_to_read(now=2) == (3_000_002, [3_000_001])
