"""The outbox relay: publishes committed outbox rows to Kafka, in order, then deletes them.

- Wakes on PostgreSQL ``NOTIFY`` (sent by the unit of work at commit), so a message leaves within
  milliseconds of its commit; a slow poll is only the safety net for a lost notification.
- Safe with several replicas: only the holder of a session-level advisory lock publishes, which
  also keeps per-saga (in fact global) order. If that replica dies its connection closes, the lock
  is released and a standby takes over within ``standby_retry_s``.
- At least once: a crash after Kafka acknowledged but before the delete republishes those rows
  with the same message ids, which every consumer's inbox discards.
- Reads never walk the rows it deleted (``_Cursor``): a busy outbox holds tens of thousands of
  dead rows between two vacuums, and reading "the first rows by id" crossed them all each time
  (8 ms per empty read, measured). It reads from the highest id it published, plus the ids it saw
  missing (a transaction that took an id commits after a later one), plus a full read every half
  minute for anything else. Per-saga order holds: one saga's messages come from transactions
  serialised by the saga's (or the order's) lock, so they commit in id order.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson

from sagakit.backoff import sleep_unless
from sagakit.db.engine import asyncpg_dsn
from sagakit.errors import BrokerUnavailable
from sagakit.messaging.producer import Producer
from sagakit.ops import metrics
from sagakit.outbox import store
from sagakit.outbox.store import OUTBOX_CHANNEL

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
        standby_retry_s: float = 2.0,
        backoff_cap_s: float = 5.0,
    ) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._producer = producer
        self._name = name
        self._lock_key = zlib.crc32(f"sagakit-outbox-relay:{name}".encode())
        self._batch_size = batch_size
        self._poll_interval_s = poll_interval_s
        self._standby_retry_s = standby_retry_s
        self._backoff_cap_s = backoff_cap_s
        self._wakeup = asyncio.Event()
        self._stopping = asyncio.Event()
        self._cursor = _Cursor()
        self._published: list[int] = []  # acknowledged by Kafka, deleted with the next read
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
        self._wakeup.set()

    async def _run_connected(self) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(self._dsn, timeout=5)
        try:
            if not await self._become_leader(conn):
                return
            # The outbox is a queue: emptied by vacuum, then thousands of dead rows until the next
            # one. Statistics lag behind that, and a plan chosen while it looked empty (a scan of
            # the whole table) stays cached while it fills. This session only ever wants the
            # primary key: say so.
            await conn.execute("SET enable_seqscan = off")
            await conn.add_listener(OUTBOX_CHANNEL, self._on_notify)
            self._cursor = _Cursor()  # a new leader reads everything first
            self._published = []
            log.info("outbox relay %s: leader, publishing", self._name)
            while not self._stopping.is_set():
                self._wakeup.clear()
                published = await self._publish_batch(conn)
                if published == 0:
                    await self._wait_for_work()
            # Stopping: what was committed before the consumer stopped still leaves now.
            while await self._publish_batch(conn):
                pass
            await self._flush_deletes(conn)
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
        """Publish the next rows; the delete of what was published rides on the next read."""
        after, gaps = self._cursor.where_to_read(time.monotonic())
        rows = await store.take_batch(
            conn, self._batch_size, after=after, gaps=gaps, published=self._published
        )
        self._published = []
        self._cursor.advance([r["id"] for r in rows], time.monotonic())
        # A full batch means at least that many were waiting: a floor, without a count query.
        metrics.OUTBOX_PENDING.labels(self._name).set(len(rows))
        if not rows:
            return 0
        await self._producer.send_many([_record(row) for row in rows])
        self._published = [r["id"] for r in rows]
        self.published += len(rows)
        metrics.OUTBOX_PUBLISHED.labels(self._name).inc(len(rows))
        return len(rows)

    async def _flush_deletes(self, conn: asyncpg.Connection) -> None:
        if self._published:
            await store.delete_published(conn, self._published)
            self._published = []

    async def _wait_for_work(self) -> None:
        await sleep_unless(self._wakeup, self._poll_interval_s)

    async def _sleep(self, seconds: float) -> None:
        await sleep_unless(self._stopping, seconds)

    def _on_notify(self, *_args: Any) -> None:
        self._wakeup.set()


@dataclass
class _Cursor:
    """Where the next read starts: above ``after``, plus the ids seen missing below it."""

    # A full read walks every dead row left since the last vacuum (up to ~100 ms on a busy
    # outbox), so it is rare; a gap is kept long enough for any sane transaction to commit.
    full_read_every_s: float = 30.0
    forget_gaps_after_s: float = 30.0
    max_gaps: int = 1_000
    after: int = 0
    gaps: dict[int, float] = field(default_factory=dict)  # id -> when it was first missed
    next_full_read: float = 0.0

    reading_all: bool = False

    def where_to_read(self, now: float) -> tuple[int, list[int]]:
        self.reading_all = now >= self.next_full_read
        if self.reading_all:
            self.next_full_read = now + self.full_read_every_s
            return 0, []
        return self.after, list(self.gaps)

    def advance(self, ids: list[int], now: float) -> None:
        for row_id in ids:
            self.gaps.pop(row_id, None)
        if ids and ids[-1] > self.after:
            seen = set(ids)
            # Below the first row of a full read (or of the first read at all) are the rows
            # published long ago, not gaps.
            floor = ids[0] if self.reading_all or self.after == 0 else self.after + 1
            start = max(floor, ids[-1] - self.max_gaps)
            for missing in range(start, ids[-1]):
                if missing not in seen:
                    self.gaps.setdefault(missing, now)
            self.after = ids[-1]
        stale = now - self.forget_gaps_after_s  # rolled back, or left to the full read
        self.gaps = {g: t for g, t in self.gaps.items() if t > stale}


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
