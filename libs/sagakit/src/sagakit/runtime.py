"""Runs a service: its consumer, outbox relay, HTTP port and any background workers.

SIGTERM/SIGINT stop fetching, give work in flight ``shutdown_timeout_s`` to finish (the consumer
commits what is done, the relay publishes what was committed), then close everything in reverse
order of opening (an ``AsyncExitStack``). A second signal abandons the wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import uvloop
from fastapi import FastAPI
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sagakit.backoff import sleep_unless
from sagakit.consumer import Consumer
from sagakit.db.engine import create_engine, create_session_factory
from sagakit.db.pool import Database
from sagakit.errors import BrokerUnavailable, ConfigurationError
from sagakit.messaging.producer import Producer
from sagakit.messaging.registry import MessageRegistry
from sagakit.ops import gc_pauses, metrics
from sagakit.ops.http import HttpServer, build_ops_app
from sagakit.outbox import store as outbox_store
from sagakit.outbox.dispatcher import Dispatcher
from sagakit.outbox.relay import OutboxRelay
from sagakit.outbox.unit_of_work import UnitOfWork
from sagakit.settings import ServiceSettings, settings_error_line

log = logging.getLogger(__name__)


class ServiceCrashed(Exception):
    """A service task raised; the service stopped in order and must exit non-zero."""


Worker = Callable[[asyncio.Event], Coroutine[Any, Any, None]]


@dataclass
class Service:
    """Everything a service runs, wired by its ``bootstrap()``."""

    settings: ServiceSettings
    # asyncpg for the hot path (handlers, units of work); SQLAlchemy for the cold paths.
    database: Database
    engine: AsyncEngine
    session_factory: async_sessionmaker[AsyncSession]
    producer: Producer
    consumer: Consumer
    dispatcher: Dispatcher
    relay: OutboxRelay
    app: FastAPI
    http: HttpServer
    # Extra loops (timeouts, retry worker) that take a "stopping" event and return when it is set.
    workers: list[Worker] = field(default_factory=list)
    # Extra clients (Redis, HTTP) to close on the way out, after the workers stopped.
    closers: list[Callable[[], Coroutine[Any, Any, None]]] = field(default_factory=list)

    def uow(self, *, writes_only: bool = False) -> UnitOfWork:
        return UnitOfWork(self.database, self.dispatcher, writes_only=writes_only)

    async def database_ready(self) -> bool:
        return bool(await self.database.fetchval("SELECT 1"))

    async def kafka_ready(self) -> bool:
        consuming = not self.consumer.topics or await self.consumer.is_ready()
        return await self.producer.is_ready() and consuming


def build_service(
    settings: ServiceSettings,
    *,
    registry: MessageRegistry,
    topics: list[str],
) -> Service:
    """The standard wiring: engine, producer, consumer, relay and the ops HTTP port.

    The caller then adds its handlers (``service.consumer.handle``), routes (``service.app``)
    and background workers (``service.workers``). With no ``topics`` the consumer never runs
    (the orchestrator's API role: it publishes, it does not consume).
    """
    database_url = settings.database_url.get_secret_value()
    tls = settings.database_tls
    database = Database(database_url, max_size=settings.db_pool_size, tls=tls)
    engine = create_engine(database_url, pool_size=settings.db_cold_pool_size, tls=tls)
    session_factory = create_session_factory(engine)
    client_id = f"{settings.service_name}"
    producer = Producer(
        settings.kafka_bootstrap_servers,
        client_id=client_id,
        linger_ms=settings.kafka_producer_linger_ms,
        request_timeout_ms=settings.kafka_request_timeout_ms,
        security=settings.kafka_security,
    )
    dispatcher = Dispatcher(database, producer, name=settings.service_name)
    consumer = Consumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=settings.consumer_group,
        client_id=client_id,
        topics=topics,
        registry=registry,
        uow_factory=lambda: UnitOfWork(database, dispatcher),
        producer=producer,
        max_records=settings.kafka_consumer_max_records,
        linger_s=settings.kafka_consumer_linger_ms / 1000,
        backoff_base_s=settings.retry_backoff_base_s,
        backoff_cap_s=settings.retry_backoff_cap_s,
        handler_max_attempts=settings.handler_max_attempts,
        security=settings.kafka_security,
    )
    relay = OutboxRelay(
        database_url,
        producer,
        name=settings.service_name,
        batch_size=settings.outbox_batch_size,
        poll_interval_s=settings.outbox_poll_interval_s,
        grace_s=settings.outbox_relay_grace_s,
        backoff_cap_s=settings.retry_backoff_cap_s,
        tls=tls,
    )
    service = Service(
        settings=settings,
        database=database,
        engine=engine,
        session_factory=session_factory,
        producer=producer,
        consumer=consumer,
        dispatcher=dispatcher,
        relay=relay,
        app=build_ops_app(settings.service_name, {}),
        http=None,  # type: ignore[arg-type]  # set below, around the app
    )
    service.app.state.readiness = {
        "database": service.database_ready,
        "kafka": service.kafka_ready,
    }
    service.app.state.scrape.add(
        "outbox", outbox_metrics_refresher(database, settings.service_name)
    )
    if topics:
        service.app.state.scrape.add("consumer_lag", consumer.refresh_lag_metric)
    service.http = HttpServer(service.app, settings.http_host, settings.http_port)
    return service


def outbox_metrics_refresher(database: Database, service: str) -> metrics.Refresher:
    """Sets ``saga_outbox_pending`` and ``saga_outbox_oldest_age_seconds`` (at scrape time)."""

    async def refresh() -> None:
        async with database.connection() as conn:
            pending, oldest_s = await outbox_store.backlog(conn)
        metrics.OUTBOX_PENDING.labels(service).set(pending)
        metrics.OUTBOX_OLDEST_AGE.labels(service).set(oldest_s)

    return refresh


async def run_service(service: Service) -> None:
    """Run until SIGTERM/SIGINT, then stop in order within the shutdown timeout.

    If one of its tasks crashes, the service stops the same way and then raises
    ``ServiceCrashed``; ``main`` turns that into exit status 1 so a supervisor sees the failure.
    """
    name = service.settings.service_name
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _on_signal, stopping, sig)

    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(service.engine.dispose)
        await service.database.start()
        stack.push_async_callback(service.database.close)
        await _start_producer(service.producer, stopping)
        stack.push_async_callback(service.producer.stop)
        for close in service.closers:
            stack.push_async_callback(close)

        tasks: dict[str, asyncio.Task[None]] = {
            "http": asyncio.create_task(service.http.serve(), name=f"{name}-http"),
            "relay": asyncio.create_task(service.relay.run(), name=f"{name}-relay"),
            "dispatcher": asyncio.create_task(service.dispatcher.run(), name=f"{name}-dispatch"),
        }
        if service.consumer.topics:
            tasks["consumer"] = asyncio.create_task(service.consumer.run(), name=f"{name}-consumer")
        for i, worker in enumerate(service.workers):
            tasks[f"worker-{i}"] = asyncio.create_task(worker(stopping), name=f"{name}-worker-{i}")
        frozen = gc_pauses.settle()  # startup is over: its objects are out of the collector's way
        log.info(
            "%s running; http://%s:%d (%d startup objects frozen for the garbage collector)",
            name,
            service.settings.http_host,
            service.settings.http_port,
            frozen,
        )

        crashed = asyncio.create_task(_first_crash(tasks))
        stop_wait = asyncio.create_task(stopping.wait())
        await asyncio.wait({crashed, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
        stopping.set()
        stop_wait.cancel()
        crashed_task = crashed.result() if crashed.done() else None
        crashed.cancel()
        await _shutdown(service, tasks, service.settings.shutdown_timeout_s)
    if crashed_task is not None:
        raise ServiceCrashed(f"{name} stopped after task {crashed_task} crashed")
    log.info("%s stopped", name)


async def _start_producer(producer: Producer, stopping: asyncio.Event) -> None:
    """The producer must be up before anything publishes; wait for the broker if it is down."""
    delay = 0.5
    while True:
        try:
            await producer.start()
            return
        except BrokerUnavailable as exc:
            log.warning("producer: %s; retrying in %.1fs", exc, delay)
            if await sleep_unless(stopping, delay):
                raise
            delay = min(delay * 2, 5.0)


async def _first_crash(tasks: dict[str, asyncio.Task[None]]) -> str | None:
    """Wait for the first task to end; the name of the one that raised, if any did."""
    done, _ = await asyncio.wait(tasks.values(), return_when=asyncio.FIRST_COMPLETED)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            log.error("task %s crashed", task.get_name(), exc_info=task.exception())
            return task.get_name()
    return None


async def _shutdown(service: Service, tasks: dict[str, asyncio.Task[None]], timeout: float) -> None:
    # Order matters: stop taking work, let what was committed be published (the dispatcher's
    # deliveries in flight, then the relay), then the port.
    service.consumer.stop()
    await _wait(tasks, ["consumer"] + [k for k in tasks if k.startswith("worker-")], timeout / 2)
    service.dispatcher.stop()
    await _wait(tasks, ["dispatcher"], timeout / 8)
    service.relay.stop()
    await _wait(tasks, ["relay"], timeout / 4)
    service.http.stop()
    await _wait(tasks, ["http"], timeout / 4)


async def _wait(tasks: dict[str, asyncio.Task[None]], names: list[str], timeout: float) -> None:
    pending = [tasks[n] for n in names if n in tasks]
    if not pending:
        return
    _, late = await asyncio.wait(pending, timeout=timeout)
    for task in late:
        log.warning("%s did not stop within %.1fs; cancelling it", task.get_name(), timeout)
        task.cancel()
    if late:
        await asyncio.wait(late, timeout=1.0)


def _program() -> str:
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    return spec.name.removesuffix(".__main__") if spec is not None else sys.argv[0]


def _on_signal(stopping: asyncio.Event, sig: signal.Signals) -> None:
    if stopping.is_set():
        log.warning("second %s: exiting now", sig.name)
        raise SystemExit(1)
    log.info("%s received: stopping", sig.name)
    stopping.set()


def main(bootstrap: Callable[[], Service]) -> None:
    """Entry point body for ``python -m <service>``: logging, bootstrap, run.

    A bad setting ends the process here with one line on stderr naming the variable, and exit
    code 2 (a configuration error: restarting will not help), never a traceback; so does a
    setting found wrong only when used (``ConfigurationError``: the broker refused the login).
    """
    from sagakit.ops.logging import configure_logging
    from sagakit.telemetry import configure_tracing

    try:
        service = bootstrap()
    except ValidationError as exc:
        print(f"{_program()}: {settings_error_line(exc)}", file=sys.stderr)
        raise SystemExit(2) from None
    s = service.settings
    configure_logging(s.service_name, level=s.log_level, fmt=s.log_format)
    configure_tracing(s.service_name)  # only when OTEL_EXPORTER_OTLP_ENDPOINT is set
    # uvloop: about a third less CPU per database round trip and per HTTP request here.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        try:
            runner.run(run_service(service))
        except ServiceCrashed as exc:
            log.error("%s; exiting with status 1", exc)
            raise SystemExit(1) from None
        except ConfigurationError as exc:
            # A setting found wrong when used (a refused Kafka login): as a bad setting, exit 2.
            log.error("%s: %s; exiting with status 2", s.service_name, exc)
            raise SystemExit(2) from None
