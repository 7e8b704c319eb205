"""Ids are UUIDv7: RFC 9562 layout, ordered by the millisecond they were made, unique."""

import time
import uuid

from sagakit.ids import new_id


def test_an_id_is_a_version_7_rfc_uuid_that_starts_with_the_time_it_was_made() -> None:
    before = time.time_ns() // 1_000_000
    made = new_id()
    after = time.time_ns() // 1_000_000

    assert made.version == 7
    assert made.variant == uuid.RFC_4122
    assert before <= made.int >> 80 <= after


def test_ids_made_in_a_later_millisecond_sort_after_earlier_ones() -> None:
    first = new_id()
    time.sleep(0.002)
    second = new_id()

    assert str(first) < str(second)
    assert first.bytes < second.bytes  # the order PostgreSQL's uuid type compares in


def test_ids_made_in_the_same_millisecond_differ_in_their_random_bits() -> None:
    ids = [new_id() for _ in range(10_000)]

    assert len(set(ids)) == len(ids)
    random_bits = {((i.int >> 64) & 0xFFF, i.int & ((1 << 62) - 1)) for i in ids}
    assert len(random_bits) == len(ids)
