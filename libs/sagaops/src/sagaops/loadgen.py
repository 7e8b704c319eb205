"""A lean HTTP/1.1 client for load generation: keep-alive connections, JSON in, status out.

The benchmark shares the machine with what it measures, so its client must cost little per
request: httpx spends about 5 ms of CPU on each (measured here), more than the orchestrator spends
on the order. This one writes a prepared request and reads the status line, headers and body
with asyncio streams (uvloop), nothing more. It is for the benchmark only, against our own API.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import orjson


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return orjson.loads(self.body)


# uvicorn closes a keep-alive connection after 5 s idle. A request written just as the server
# closes is lost with the connection (a race no client can tell from a real drop), so idle
# connections are retired well before the server would close them.
IDLE_REUSE_S = 2.0


class ConnectionDropped(Exception):
    """The server closed the connection (or never answered) after the request was sent."""


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.reusable = True
        self.idle_since = time.monotonic()

    async def exchange(self, request: bytes) -> Response:
        self.writer.write(request)
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise ConnectionDropped(str(exc) or type(exc).__name__) from exc
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        try:
            body = await self.reader.readexactly(length) if length else b""
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise ConnectionDropped(str(exc) or type(exc).__name__) from exc
        self.reusable = headers.get("connection", "").lower() != "close"
        return Response(status, headers, body)

    def close(self) -> None:
        self.writer.close()


class LoadClient:
    """Up to ``connections`` requests in flight, each on a kept-alive connection."""

    def __init__(self, base_url: str, *, connections: int) -> None:
        parts = urlsplit(base_url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._free: list[_Connection] = []
        self._slots = asyncio.Semaphore(connections)
        self.opened = 0

    async def post_json(
        self, path: str, body: object, headers: dict[str, str] | None = None
    ) -> Response:
        payload = orjson.dumps(body)
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        request = (
            f"POST {path} HTTP/1.1\r\nHost: {self._host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n{extra}\r\n"
        ).encode() + payload
        async with self._connection() as conn:
            return await conn.exchange(request)

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[_Connection]:
        async with self._slots:
            conn = None
            while self._free and conn is None:
                candidate = self._free.pop()
                stale = time.monotonic() - candidate.idle_since > IDLE_REUSE_S
                if stale or candidate.reader.at_eof():  # closed, or about to be: not a drop
                    candidate.close()
                else:
                    conn = candidate
            conn = conn or await self._open()
            try:
                yield conn
            except BaseException:
                conn.close()  # a failed exchange leaves the connection in an unknown state
                raise
            if conn.reusable:
                conn.idle_since = time.monotonic()
                self._free.append(conn)
            else:
                conn.close()

    async def _open(self) -> _Connection:
        reader, writer = await asyncio.open_connection(self._host, self._port)
        self.opened += 1
        return _Connection(reader, writer)

    async def close(self) -> None:
        for conn in self._free:
            conn.close()
        self._free.clear()
