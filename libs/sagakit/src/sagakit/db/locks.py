"""Transaction-scoped advisory locks: one business key handled by one transaction at a time.

Two replicas can hold the same record for a moment during a rebalance, and the retry worker
re-sends compensations while the previous copy may still be in flight. A participant that takes
this lock first sees the other's committed outcome instead of racing it.
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


async def lock_for_transaction(session: AsyncSession, namespace: str, key: str) -> None:
    """Block until no other transaction holds (namespace, key); released at commit/rollback."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext(:namespace), hashtext(:key))"),
        {"namespace": namespace, "key": key},
    )
