"""The load generator's client retires idle keep-alive connections before the server does."""

from __future__ import annotations

import asyncio

import pytest

from sagaops import loadgen
from sagaops.loadgen import LoadClient

ACCEPTED = b"HTTP/1.1 202 Accepted\r\ncontent-length: 2\r\n\r\n{}"


async def _keep_alive_server() -> tuple[asyncio.Server, int]:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                break
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            await reader.readexactly(length)
            writer.write(ACCEPTED)
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


async def test_a_recent_connection_is_reused_and_an_idle_one_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(loadgen, "IDLE_REUSE_S", 0.2)
    server, port = await _keep_alive_server()
    client = LoadClient(f"http://127.0.0.1:{port}", connections=4)
    try:
        assert (await client.post_json("/orders", {"n": 1})).status == 202
        assert (await client.post_json("/orders", {"n": 2})).status == 202
        assert client.opened == 1
        await asyncio.sleep(0.3)  # idle longer than the client keeps a connection
        assert (await client.post_json("/orders", {"n": 3})).status == 202
        assert client.opened == 2
    finally:
        await client.close()
        server.close()
        await server.wait_closed()
