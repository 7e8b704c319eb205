"""``GET /orders/{id}/events``: a final status set between the read and the subscription is not
lost (the stream subscribes first, then reads), and an idle stream sends heartbeats."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any, cast

import pytest

from orchestrator.domain.status import OrderStatus
from orchestrator.entrypoints import api

pytestmark = pytest.mark.unit


class _World:
    """One order, its status, and the Redis subscribers of its channel."""

    def __init__(self) -> None:
        self.status: str = OrderStatus.PENDING
        self.subscribers: list[asyncio.Queue[dict[str, Any]]] = []
        self.finish_after_read = True

    def publish(self, status: str) -> None:
        self.status = status
        for queue in self.subscribers:
            queue.put_nowait({"status": status})


class _Updates:
    def __init__(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        self._queue = queue

    async def next(self, timeout: float) -> dict[str, Any] | None:
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None


class _Redis:
    def __init__(self, world: _World) -> None:
        self._world = world

    @contextlib.asynccontextmanager
    async def subscription(self, order_id: str) -> AsyncIterator[_Updates]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._world.subscribers.append(queue)
        yield _Updates(queue)


def _install(monkeypatch: pytest.MonkeyPatch, world: _World) -> Any:
    class Orders:
        def __init__(self, session: Any) -> None:
            pass

        async def get(self, order_id: uuid.UUID) -> Any:
            seen = SimpleNamespace(status=world.status)
            if world.finish_after_read:
                # The race: the order becomes final right after this read.
                world.finish_after_read = False
                world.publish(OrderStatus.CONFIRMED)
            return seen

    class Sagas:
        def __init__(self, session: Any) -> None:
            pass

        async def by_order(self, order_id: uuid.UUID) -> None:
            return None

    @contextlib.asynccontextmanager
    async def sessions() -> AsyncIterator[None]:
        yield None

    monkeypatch.setattr(api, "OrderRepository", Orders)
    monkeypatch.setattr(api, "SagaRepository", Sagas)
    monkeypatch.setattr(api, "_order_view", lambda order, saga: {"status": order.status})
    return SimpleNamespace(sessions=sessions, redis=_Redis(world))


async def _collect(ctx: Any) -> list[bytes]:
    stream = api._status_stream(cast(api.ApiContext, ctx), uuid.uuid4())
    return [chunk async for chunk in stream]


async def test_a_final_status_set_between_read_and_subscribe_ends_the_stream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = _World()
    chunks = await asyncio.wait_for(_collect(_install(monkeypatch, world)), timeout=2)
    assert b'"status":"PENDING"' in chunks[0]
    assert b'"status":"CONFIRMED"' in chunks[-1]


async def test_an_idle_stream_sends_heartbeats_until_the_final_status(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(api, "SSE_HEARTBEAT_S", 0.05)
    world = _World()
    world.finish_after_read = False
    ctx = _install(monkeypatch, world)
    task = asyncio.create_task(_collect(ctx))
    await asyncio.sleep(0.2)
    world.publish(OrderStatus.CANCELLED)
    chunks = await asyncio.wait_for(task, timeout=2)
    assert b": heartbeat\n\n" in chunks
    assert b'"status":"CANCELLED"' in chunks[-1]
