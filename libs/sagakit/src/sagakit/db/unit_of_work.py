"""The unit of work: one PostgreSQL transaction holding a change, its outbox rows and its inbox row.

Leaving the context without ``commit()`` rolls back, so a handler that fails publishes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from types import TracebackType

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sagakit.db.models import InboxMessage, OutboxMessage
from sagakit.errors import DatabaseUnavailable
from sagakit.messaging.envelope import Envelope
from sagakit.messaging.registry import Message

log = logging.getLogger(__name__)

OUTBOX_CHANNEL = "sagakit_outbox"

# SQLSTATEs that mean "try the same transaction again": serialization failure, deadlock,
# and the connection / operator-intervention classes (a restarting PostgreSQL).
_RETRIABLE_SQLSTATE_PREFIXES = ("40001", "40P01", "08", "57P", "53")


class UnitOfWork:
    """Async context manager around one session and one transaction."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        self._session_factory = session_factory
        self._outbox: list[dict[str, object]] = []
        self._after_commit: list[Callable[[], Awaitable[None]]] = []
        self._session: AsyncSession | None = None

    @property
    def session(self) -> AsyncSession:
        if self._session is None:
            raise RuntimeError("UnitOfWork used outside 'async with'")
        return self._session

    async def __aenter__(self) -> UnitOfWork:
        self._session = self._session_factory()
        self._outbox = []
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._outbox = []
        self._after_commit = []
        try:
            # close() rolls back what was not committed; unlike rollback() it leaves the loaded
            # objects readable (detached), so callers may use them after the block.
            await self.session.close()
        except DBAPIError:
            pass  # the connection is gone; the original error (if any) says why
        finally:
            self._session = None
        if exc is not None:
            raise_as_infrastructure(exc)

    def emit(
        self,
        topic: str,
        envelope: Envelope[Message],
        *,
        extra_headers: list[tuple[str, str]] | None = None,
    ) -> None:
        """Queue a message to be written to the outbox in this transaction."""
        headers = [[name, raw.decode()] for name, raw in envelope.headers()]
        headers += [[name, value] for name, value in extra_headers or ()]
        self._outbox.append(
            {
                "message_id": envelope.message_id,
                "message_type": envelope.message_type,
                "topic": topic,
                "key": envelope.key,
                "headers": headers,
                "value": envelope.value(),
            }
        )

    async def record_inbox(
        self, envelope: Envelope[Message], *, topic: str, partition: int, offset: int
    ) -> bool:
        """Record a consumed message; False means it was seen before (a redelivery)."""
        stmt = (
            insert(InboxMessage)
            .values(
                message_id=envelope.message_id,
                message_type=envelope.message_type,
                topic=topic,
                partition=partition,
                offset=offset,
            )
            .on_conflict_do_nothing(index_elements=[InboxMessage.message_id])
            .returning(InboxMessage.message_id)
        )
        inserted = (await self.session.execute(stmt)).scalar_one_or_none()
        return inserted is not None

    def after_commit(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run ``callback`` once this transaction has committed (best effort, never rolled back:
        for notifications such as live status pushes, not for anything that must not be lost)."""
        self._after_commit.append(callback)

    async def commit(self) -> None:
        if self._outbox:
            await self.session.execute(insert(OutboxMessage), self._outbox)
            # NOTIFY is delivered on commit only, so the relay wakes exactly when rows are visible.
            await self.session.execute(text(f"NOTIFY {OUTBOX_CHANNEL}"))
        await self.session.commit()
        self._outbox = []
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            try:
                await callback()
            except Exception:  # the commit stands; a failed notification is only logged
                log.warning("after-commit callback failed", exc_info=True)

    async def rollback(self) -> None:
        self._outbox = []
        self._after_commit = []
        await self.session.rollback()


def is_retriable_db_error(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        return bool(sqlstate) and str(sqlstate).startswith(_RETRIABLE_SQLSTATE_PREFIXES)
    return isinstance(exc, ConnectionError | OSError | TimeoutError)


def raise_as_infrastructure(exc: BaseException) -> None:
    """Re-raise a transient database error as ``DatabaseUnavailable`` (keeping the cause)."""
    if is_retriable_db_error(exc) and not isinstance(exc, DatabaseUnavailable):
        raise DatabaseUnavailable(f"database: {type(exc).__name__}: {exc}") from exc
