"""Which database errors are transient: the same transaction, tried again later, may succeed."""

from __future__ import annotations

import asyncpg
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from sagakit.errors import DatabaseUnavailable

# SQLSTATEs that mean "try the same transaction again": serialization failure, deadlock,
# and the connection / operator-intervention / resource classes (a restarting PostgreSQL).
_RETRIABLE_SQLSTATE_PREFIXES = ("40001", "40P01", "08", "57P", "53")


def is_retriable_db_error(exc: BaseException) -> bool:
    """True for outages, deadlocks and serialization failures, from asyncpg or SQLAlchemy."""
    if isinstance(exc, asyncpg.PostgresError):
        return str(exc.sqlstate or "").startswith(_RETRIABLE_SQLSTATE_PREFIXES)
    if isinstance(exc, asyncpg.InterfaceError):  # the connection is closed or was lost
        return not isinstance(exc, asyncpg.exceptions.InterfaceWarning)
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
        return bool(sqlstate) and str(sqlstate).startswith(_RETRIABLE_SQLSTATE_PREFIXES)
    return isinstance(exc, ConnectionError | OSError | TimeoutError)


def is_connection_lost(exc: BaseException) -> bool:
    """The connection itself is gone (not a deadlock): its siblings in the pool likely are too."""
    if isinstance(exc, asyncpg.PostgresError):
        return str(exc.sqlstate or "").startswith(("08", "57P"))
    return isinstance(exc, asyncpg.InterfaceError | ConnectionError | OSError)


def raise_as_infrastructure(exc: BaseException) -> None:
    """Re-raise a transient database error as ``DatabaseUnavailable`` (keeping the cause)."""
    if is_retriable_db_error(exc) and not isinstance(exc, DatabaseUnavailable):
        raise DatabaseUnavailable(f"database: {type(exc).__name__}: {exc}") from exc
