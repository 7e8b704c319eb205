"""The outbox and inbox as SQL: multi-row statements, one round trip each, whatever the count.

Every statement here runs on the caller's connection, inside the caller's transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
import orjson

from sagakit.db.statement import Statement
from sagakit.messaging.envelope import Envelope
from sagakit.messaging.registry import Message


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A record to publish, encoded once when it is emitted."""

    message_id: uuid.UUID
    message_type: str
    topic: str
    key: bytes | None
    headers: list[list[str]]
    value: bytes

    def kafka_headers(self) -> list[tuple[str, bytes]]:
        return [(name, value.encode()) for name, value in self.headers]

    @classmethod
    def of(
        cls,
        topic: str,
        envelope: Envelope[Message],
        extra_headers: Sequence[tuple[str, str]] = (),
        traceparent: str | None = None,
    ) -> OutboxRow:
        """``traceparent``: the message's own span, in place of the envelope's (its context)."""
        headers = [[name, value] for name, value in envelope.header_pairs(traceparent)]
        headers += [[name, value] for name, value in extra_headers]
        return cls(
            message_id=envelope.message_id,
            message_type=envelope.message_type,
            topic=topic,
            key=envelope.key,
            headers=headers,
            value=envelope.value(),
        )


def add_outbox_rows(statement: Statement, rows: Sequence[OutboxRow]) -> None:
    """The rows' insert as a part of ``statement``, which then returns their ids in order."""
    if not rows:
        return
    part = statement.add(
        """
        INSERT INTO outbox (message_id, message_type, topic, key, headers, value)
        SELECT m, t, p, k, h::jsonb, v
          FROM unnest({0}::uuid[], {1}::text[], {2}::text[], {3}::bytea[], {4}::text[],
                      {5}::bytea[]) WITH ORDINALITY AS u(m, t, p, k, h, v, n)
         ORDER BY n
        RETURNING id
        """,
        [r.message_id for r in rows],
        [r.message_type for r in rows],
        [r.topic for r in rows],
        [r.key for r in rows],
        # As JSON text: a list of lists would be taken for a multi-dimensional array.
        [orjson.dumps(r.headers).decode() for r in rows],
        [r.value for r in rows],
    )
    statement.finally_select(f"SELECT array_agg(id ORDER BY id) FROM {part}")


async def insert_outbox(conn: asyncpg.Connection, rows: Sequence[OutboxRow]) -> None:
    statement = Statement()
    add_outbox_rows(statement, rows)
    await statement.run(conn)


@dataclass(frozen=True, slots=True)
class InboxEntry:
    message_id: uuid.UUID
    message_type: str
    topic: str
    partition: int
    offset: int


INBOX_PRIMARY_KEY = "pk_inbox"


def add_inbox_rows(statement: Statement, entries: Sequence[InboxEntry]) -> None:
    """The entries' insert as a part of ``statement``, with no conflict handling: a message
    seen before fails the whole statement (``INBOX_PRIMARY_KEY``)."""
    if not entries:
        return
    statement.add(
        """
        INSERT INTO inbox (message_id, message_type, topic, partition, "offset")
        SELECT * FROM unnest({0}::uuid[], {1}::text[], {2}::text[], {3}::int[], {4}::bigint[])
        """,
        [e.message_id for e in entries],
        [e.message_type for e in entries],
        [e.topic for e in entries],
        [e.partition for e in entries],
        [e.offset for e in entries],
    )


_INSERT_INBOX = """
INSERT INTO inbox (message_id, message_type, topic, partition, "offset")
SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::bigint[])
ON CONFLICT (message_id) DO NOTHING
RETURNING message_id
"""


async def insert_inbox(conn: asyncpg.Connection, entries: Sequence[InboxEntry]) -> set[uuid.UUID]:
    """Record consumed messages; returns the ids seen for the first time (the rest are
    redeliveries, including a second copy of the same id within ``entries``)."""
    if not entries:
        return set()
    rows = await conn.fetch(
        _INSERT_INBOX,
        [e.message_id for e in entries],
        [e.message_type for e in entries],
        [e.topic for e in entries],
        [e.partition for e in entries],
        [e.offset for e in entries],
    )
    return {row[0] for row in rows}


async def leftovers(
    conn: asyncpg.Connection, limit: int, *, older_than_s: float
) -> list[asyncpg.Record]:
    """Rows committed more than ``older_than_s`` ago and still here (their dispatch failed,
    or the process that committed them died first), in id order."""
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT id, topic, key, headers, value FROM outbox"
        " WHERE created_at <= now() - make_interval(secs => $2) ORDER BY id LIMIT $1",
        limit,
        older_than_s,
    )
    return rows


async def delete_published(conn: asyncpg.Connection, ids: Sequence[int]) -> None:
    await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", list(ids))


async def backlog(conn: asyncpg.Connection) -> tuple[int, float]:
    """Rows waiting and the age in seconds of the oldest (0 when empty)."""
    row = await conn.fetchrow(
        "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM outbox"
    )
    assert row is not None
    return int(row[0]), float(row[1])
