"""Which database errors are transient: the same transaction, tried again later, may succeed."""

from __future__ import annotations

import asyncpg
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from sagakit.errors import DatabaseUnavailable

# SQLSTATEs that mean "try the same transaction again": serialization failure, deadlock,
# and the connection / operator-intervention / resource classes (a restarting PostgreSQL).
_RETRIABLE_SQLSTATE_PREFIXES = ("40001", "40P01", "08", "57P", "53")
# asyncpg's InterfaceErrors raised before anything reached the server, whatever its state.
_CLIENT_SIDE_ERRORS = (
    asyncpg.exceptions.DataError,
    asyncpg.exceptions.UnsupportedClientFeatureError,
    asyncpg.exceptions.InterfaceWarning,
)


def is_retriable_db_error(exc: BaseException) -> bool:
    """True for outages, deadlocks and serialization failures, from asyncpg or SQLAlchemy."""
    if isinstance(exc, asyncpg.PostgresError):
        return str(exc.sqlstate or "").startswith(_RETRIABLE_SQLSTATE_PREFIXES)
    if isinstance(exc, asyncpg.InterfaceError):  # the connection is closed or was lost
        # ... but not a value that cannot be encoded (a bug or a corrupt row: the same
        # transaction fails the same way every time), nor a feature the client lacks.
        return not isinstance(exc, _CLIENT_SIDE_ERRORS)
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
    if isinstance(exc, _CLIENT_SIDE_ERRORS):
        return False
    return isinstance(exc, asyncpg.InterfaceError | ConnectionError | OSError)


def raise_as_infrastructure(exc: BaseException) -> None:
    """Re-raise a transient database error as ``DatabaseUnavailable`` (keeping the cause)."""
    if is_retriable_db_error(exc) and not isinstance(exc, DatabaseUnavailable):
        raise DatabaseUnavailable(f"database: {type(exc).__name__}: {exc}") from exc
