"""``run_service`` exits non-zero when one of its tasks crashes, and cleanly on a stop signal."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
from types import SimpleNamespace
from typing import Any, cast

import pytest

from sagakit.runtime import Service, ServiceCrashed, main, run_service

pytestmark = pytest.mark.unit


class _Part:
    """Stands in for the engine, pool, producer, consumer, relay, dispatcher and HTTP server."""

    topics = ["t"]  # as a consumer: one that runs

    def __init__(self) -> None:
        self._stop = asyncio.Event()
        self.closed = False

    async def run(self) -> None:
        await self._stop.wait()

    serve = run

    def stop(self) -> None:
        self._stop.set()

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        self.closed = True

    dispose = close


class _Producer(_Part):
    async def stop(self) -> None:  # type: ignore[override]  # the real producer's stop is async
        self.closed = True


def _service(workers: list[Any]) -> tuple[Service, _Part]:
    part = _Part()
    service = SimpleNamespace(
        settings=SimpleNamespace(
            service_name="fake", http_host="127.0.0.1", http_port=0, shutdown_timeout_s=2.0
        ),
        database=_Part(),
        engine=part,
        producer=_Producer(),
        consumer=_Part(),
        dispatcher=_Part(),
        relay=_Part(),
        http=_Part(),
        workers=workers,
        closers=[],
    )
    return cast(Service, service), part


async def _broken(stopping: asyncio.Event) -> None:
    raise RuntimeError("bug in a worker")


async def test_a_crashing_worker_stops_the_service_in_order_and_raises() -> None:
    service, engine = _service([_broken])
    with pytest.raises(ServiceCrashed, match="worker-0"):
        await asyncio.wait_for(run_service(service), timeout=5)
    assert engine.closed  # it still shut down in order


def test_main_exits_with_status_1_when_a_task_crashes(monkeypatch: pytest.MonkeyPatch) -> None:
    # main() would replace the root handlers (pytest's capture included): keep them.
    monkeypatch.setattr("sagakit.ops.logging.configure_logging", lambda *a, **k: None)
    service, _ = _service([_broken])
    service.settings.log_level = "INFO"  # type: ignore[attr-defined]
    service.settings.log_format = "text"  # type: ignore[attr-defined]
    with pytest.raises(SystemExit) as exc:
        main(lambda: service)
    assert exc.value.code == 1


async def _idle(stopping: asyncio.Event) -> None:
    await stopping.wait()


async def test_a_stop_signal_ends_the_service_normally() -> None:
    service, engine = _service([_idle])
    runner = asyncio.create_task(run_service(service))
    await asyncio.sleep(0.1)
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(runner, timeout=5)  # returns, no SystemExit
    assert engine.closed


async def test_once_started_the_startup_objects_are_frozen_for_the_garbage_collector() -> None:
    service, _ = _service([_idle])
    runner = asyncio.create_task(run_service(service))
    await asyncio.sleep(0.1)
    try:
        assert gc.get_freeze_count() > 1000  # gc_pauses.settle() ran (conftest.py thaws it)
    finally:
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(runner, timeout=5)
