"""Transaction-scoped advisory locks: one business key handled by one transaction at a time.

Two replicas can hold the same record for a moment during a rebalance, and the retry worker
re-sends compensations while the previous copy may still be in flight. A participant that takes
this lock first sees the other's committed outcome instead of racing it.
"""

from __future__ import annotations

from collections.abc import Iterable

import asyncpg


async def lock_keys(conn: asyncpg.Connection, namespace: str, keys: Iterable[str]) -> None:
    """Block until no other transaction holds any of (namespace, key); released at commit or
    rollback. Taken in sorted order, so two transactions locking overlapping sets never
    deadlock on them."""
    ordered = sorted(set(keys))
    if not ordered:
        return
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext($1), hashtext(k))"
        " FROM (SELECT k FROM unnest($2::text[]) AS k ORDER BY k) AS ordered",
        namespace,
        ordered,
    )
