"""Several data-modifying statements sent as ONE (a ``WITH`` part each): one round trip.

Each part is written with ``{0}``, ``{1}``... for its own arguments; they become ``$n`` in the
joined statement. All parts run to completion (PostgreSQL runs every data-modifying ``WITH``
part, read or not), with one snapshot: no part sees another's changes, so parts must touch
different rows. Foreign keys are checked at the end of the statement, after every part, so a
parent row and its children may be inserted by two parts of the same statement.
"""

from __future__ import annotations

from typing import Any

import asyncpg


class Statement:
    def __init__(self) -> None:
        self._parts: list[str] = []
        self._args: list[Any] = []
        self._final = "SELECT 1"

    def add(self, sql: str, *args: Any) -> str:
        """Add a part; returns its name (for the final select to read its ``RETURNING``)."""
        first = len(self._args) + 1
        self._args += args
        numbered = sql.format(*(f"${first + i}" for i in range(len(args))))
        name = f"part{len(self._parts)}"
        self._parts.append(f"{name} AS ({numbered})")
        return name

    def finally_select(self, sql: str) -> None:
        """What the statement returns, after every part (default ``SELECT 1``)."""
        self._final = sql

    def __bool__(self) -> bool:
        return bool(self._parts)

    async def run(self, conn: asyncpg.Connection) -> Any:
        """Run it; returns the final select's value (None when there is nothing to run)."""
        if not self._parts:
            return None
        sql = "WITH " + ",\n".join(self._parts) + "\n" + self._final
        return await conn.fetchval(sql, *self._args)
