"""The outbox relay: the safety net behind the dispatcher. It publishes the outbox rows that
are still there some time after their commit (``grace_s``) and deletes them.

Rows are normally published at once by the process that committed them (``dispatcher.py``).
They are left over when that process died between its commit and Kafka's acknowledgement, or
when the broker was away: the relay finds them on its next poll and publishes them, in id order.

- Safe with several replicas: only the holder of a session-level advisory lock publishes. If
  that replica dies its connection closes, the lock is released and a standby takes over within
  ``standby_retry_s``.
- At least once: a row published twice (by the dispatcher and the relay, or by a relay that died
  after Kafka acknowledged but before the delete) keeps its message id, and every consumer's
  inbox drops the second copy.
"""

from __future__ import annotations

import asyncio
import logging
import zlib

import asyncpg
import orjson

from sagakit.backoff import sleep_unless
from sagakit.db.engine import asyncpg_dsn
from sagakit.db.tls import AS_THE_URL_SAYS, PostgresTls
from sagakit.errors import BrokerUnavailable
from sagakit.messaging.producer import Producer
from sagakit.ops import metrics
from sagakit.outbox import store

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(
        self,
        database_url: str,
        producer: Producer,
        *,
        name: str,
        batch_size: int = 500,
        poll_interval_s: float = 1.0,
        grace_s: float = 5.0,
        standby_retry_s: float = 2.0,
        backoff_cap_s: float = 5.0,
        tls: PostgresTls = AS_THE_URL_SAYS,
    ) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._connect_args = tls.connect_args(self._dsn)
        self._producer = producer
        self._name = name
        self._lock_key = zlib.crc32(f"sagakit-outbox-relay:{name}".encode())
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._grace_s = grace_s
        self._standby_retry_s = standby_retry_s
        self._backoff_cap_s = backoff_cap_s
        self._stopping = asyncio.Event()
        self.is_leader = False
        self.published = 0

    async def run(self) -> None:
        """Run until ``stop()``; survives database and broker outages."""
        backoff = 0.1
        while not self._stopping.is_set():
            try:
                await self._run_connected()
                backoff = 0.1
            except (
                OSError,
                asyncpg.PostgresError,
                asyncpg.InterfaceError,
                BrokerUnavailable,
            ) as exc:
                self.is_leader = False
                log.warning("outbox relay %s: %s; retrying in %.1fs", self._name, exc, backoff)
                await self._sleep(backoff)
                backoff = min(backoff * 2, self._backoff_cap_s)

    def stop(self) -> None:
        self._stopping.set()

    async def _run_connected(self) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(self._dsn, timeout=5, **self._connect_args)
        try:
            if not await self._become_leader(conn):
                return
            log.info("outbox relay %s: leader, publishing leftovers", self._name)
            while not self._stopping.is_set():
                if await self._publish_batch(conn) < self._batch_size:
                    await self._sleep(self._poll_interval_s)
        finally:
            self.is_leader = False
            await conn.close(timeout=2)

    async def _become_leader(self, conn: asyncpg.Connection) -> bool:
        while not self._stopping.is_set():
            if await conn.fetchval("SELECT pg_try_advisory_lock($1)", self._lock_key):
                self.is_leader = True
                return True
            await self._sleep(self._standby_retry_s)
            await conn.execute("SELECT 1")  # notice a dead connection while standing by
        return False

    async def _publish_batch(self, conn: asyncpg.Connection) -> int:
        rows = await store.leftovers(conn, self._batch_size, older_than_s=self._grace_s)
        if not rows:
            return 0
        await self._producer.send_many([_record(row) for row in rows])
        await store.delete_published(conn, [r["id"] for r in rows])
        self.published += len(rows)
        metrics.OUTBOX_PUBLISHED.labels(self._name).inc(len(rows))
        return len(rows)

    async def _sleep(self, seconds: float) -> None:
        await sleep_unless(self._stopping, seconds)


def _record(row: asyncpg.Record) -> tuple[str, bytes | None, bytes, list[tuple[str, bytes]]]:
    headers = row["headers"]
    if isinstance(headers, str):  # asyncpg returns jsonb as text unless a codec is set
        headers = orjson.loads(headers)
    return (
        row["topic"],
        row["key"],
        row["value"],
        [(name, value.encode()) for name, value in headers],
    )
