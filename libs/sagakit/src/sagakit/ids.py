"""Identifiers the system makes (order, saga and message ids): UUIDv7, time-ordered.

A random UUIDv4 lands on a random leaf page of every B-tree index it is a key of. Once those
indexes outgrow the buffer cache, each insert reads a cold page, and the first change of a page
after each checkpoint writes the whole page to the WAL. A UUIDv7 (RFC 9562) starts with the Unix
time in milliseconds, so ids made together sit together: inserts touch a few recent pages.
The other 74 bits are random (``os.urandom``), so an id is still not guessable from another; it
does tell when it was made (to the millisecond), which an order's ``created_at`` shows anyway.
"""

from __future__ import annotations

import os
import time
import uuid

_RAND_A_BITS = 12
_RAND_B_BITS = 62


def new_id() -> uuid.UUID:
    """A UUIDv7: 48 bits of Unix milliseconds, version 7, 74 random bits, RFC 9562 variant."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10))  # 80 bits, 74 used
    rand_a = rand >> (80 - _RAND_A_BITS)
    rand_b = rand & ((1 << _RAND_B_BITS) - 1)
    value = (
        (millis & ((1 << 48) - 1)) << 80
        | 0x7 << 76
        | rand_a << 64
        | 0b10 << 62  # the RFC 9562 variant
        | rand_b
    )
    return uuid.UUID(int=value)
