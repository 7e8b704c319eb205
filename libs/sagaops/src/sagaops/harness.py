"""What the fault runs (``make chaos``, ``make broker-failure``) share.

The whole system as processes (N replicas of every service) on its own databases
(``<service>_chaos``) and topics (a fresh prefix); a steady, seeded mix of orders over HTTP and
the ``orders`` topic; the local infrastructure scripts; waiting until every order is final and
every outbox empty; and the audit. One fault run at a time: they share the databases.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from sqlalchemy.engine import make_url

from sagakit.contracts import OrderItem, PlaceOrder
from sagakit.db.engine import asyncpg_dsn
from sagakit.db.tls import PLAIN
from sagakit.messaging.envelope import Envelope
from sagakit.messaging.kafka_clients import kafka_admin, kafka_producer
from sagakit.settings import kafka_security_from_env
from sagakit.testing.databases import reset_database
from sagakit.testing.kafka import create_topics
from sagakit.testing.processes import ServiceProcess
from sagaops.audit import AuditReport, AuditTargets, run_audit
from sagaops.client import admin_token_from_env

SERVICES = ("orchestrator", "inventory", "payment", "notification")
CONSUMED_TOPICS = (
    "orders",
    "inventory.commands",
    "payment.commands",
    "notification.commands",
    "inventory.replies",
    "payment.replies",
    "notification.replies",
)
ALL_TOPICS = (*CONSUMED_TOPICS, "order.events")
TERMINAL = ("CONFIRMED", "CANCELLED", "NEEDS_ATTENTION")

# (kind, weight, order body changes); stock, cards and emails pick the outcome.
MIX: tuple[tuple[str, int, dict[str, str]], ...] = (
    ("success", 60, {}),
    ("out of stock", 10, {"product_id": "chaos-sold-out"}),
    ("unknown product", 5, {"product_id": "chaos-no-such-product"}),
    ("card declined", 10, {"payment_method": "pm_card_chargeDeclined"}),
    ("notification rejected", 10, {"email": "chaos+reject@example.com"}),
    (
        "refund failing",
        5,
        {"payment_method": "pm_card_refundFail", "email": "chaos+reject@example.com"},
    ),
)

SERVICE_ENV = {
    "SAGA_STEP_TIMEOUT_S": "15",
    "COMPENSATION_RETRY_BASE_S": "0.5",
    "COMPENSATION_RETRY_CAP_S": "4",
    "COMPENSATION_MAX_ATTEMPTS": "6",
    "SMTP_TIMEOUT_S": "2",
    "PAYMENT_GATEWAY": "simulated",  # the audit reads its records; card outcomes by method
    "SCHEDULER_POLL_INTERVAL_S": "0.5",
    "RATE_LIMIT_PER_MINUTE": "100000",
}


class OrderRefused(Exception):
    """The API answered 4xx: the order itself is wrong, retrying will not help."""


def find_root() -> Path:
    here = Path.cwd()
    for candidate in (here, *here.parents):
        if (candidate / "scripts" / "infra" / "up.sh").exists():
            return candidate
    raise SystemExit("run from inside the repository (scripts/infra/up.sh not found)")


def default_bootstrap() -> str:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


async def cluster_size(bootstrap: str) -> int:
    """How many brokers the cluster at ``bootstrap`` has registered."""
    admin = kafka_admin(bootstrap, kafka_security_from_env(), request_timeout_ms=10_000)
    await admin.start()
    try:
        return len((await admin.describe_cluster())["brokers"])
    finally:
        await admin.close()


def database_urls(suffix: str) -> dict[str, str]:
    """Each service's configured database URL, pointed at ``<database><suffix>``."""
    urls = {}
    for service in SERVICES:
        default = f"postgresql+asyncpg://{service}:{service}@127.0.0.1:5432/{service}"
        url = make_url(os.environ.get(f"{service.upper()}_DATABASE_URL", default))
        urls[service] = url.set(database=f"{url.database}{suffix}").render_as_string(
            hide_password=False
        )
    return urls


class TopicSender:
    """An idempotent producer for the runner's own records (orders over the topic, poison).
    After a failure the client is replaced (a broker restart can leave it stuck) and the
    caller tries again."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self._producer = self._new()

    def _new(self) -> AIOKafkaProducer:
        return kafka_producer(
            self.bootstrap,
            kafka_security_from_env(),
            enable_idempotence=True,
            request_timeout_ms=5000,
        )

    async def start(self) -> None:
        await self._producer.start()

    async def send(
        self, topic: str, value: bytes, key: bytes | None, headers: list[tuple[str, bytes]]
    ) -> None:
        try:
            await self._producer.send_and_wait(topic, value, key=key, headers=headers)
        except Exception:
            old, self._producer = self._producer, self._new()
            # stop() flushes what is buffered and can wait forever on a broken connection.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(old.stop(), timeout=5.0)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._producer.start(), timeout=10.0)
            raise

    async def stop(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._producer.stop(), timeout=10)


class System:
    """The four services, ``replicas`` processes each, on the ``_chaos`` databases and the
    topics under ``prefix``, with the catalog the order mix needs."""

    def __init__(
        self,
        *,
        root: Path,
        kafka_bootstrap: str,
        prefix: str,
        replicas: int,
        logs: Path,
        service_env: dict[str, str] | None = None,
    ) -> None:
        self.root = root
        self.kafka_bootstrap = kafka_bootstrap
        self.prefix = prefix
        self.replicas = replicas
        self.logs = logs
        self.service_env = {**SERVICE_ENV, **(service_env or {})}
        self.urls = database_urls("_chaos")
        self.processes: dict[str, list[ServiceProcess]] = {}
        self._guard: asyncpg.Connection | None = None

    async def claim(self) -> None:
        """One fault run at a time on the ``_chaos`` databases: two would truncate each other's
        data (it happened, and the audit duly reported the wreckage). The lock lives as long as
        this connection, so a killed run releases it."""
        url = make_url(self.urls["orchestrator"])
        role_db = url.set(database=url.username).render_as_string(hide_password=False)
        self._guard = await asyncpg.connect(asyncpg_dsn(role_db), **PLAIN)
        if not await self._guard.fetchval("SELECT pg_try_advisory_lock(hashtext('saga-chaos'))"):
            await self._guard.close()
            raise SystemExit(
                "another chaos or broker-failure run is using the _chaos databases; "
                "wait for it to end"
            )

    async def start(self) -> None:
        await self.claim()
        self.logs.mkdir(parents=True, exist_ok=True)
        for service in SERVICES:
            await self._fresh_database(service)
        # The dead-letter topics too: left to auto-creation, the first one would be created
        # whenever something is first dead-lettered, maybe while a broker is down.
        names = [*ALL_TOPICS, *(f"{t}.dlq" for t in ALL_TOPICS)]
        await create_topics(
            self.kafka_bootstrap,
            [self.prefix + t for t in names],
            partitions=6,
            security=kafka_security_from_env(),
        )
        env_common = {
            **self.service_env,
            "KAFKA_TOPIC_PREFIX": self.prefix,
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
        }
        for service in SERVICES:
            env = {**env_common, f"{service.upper()}_DATABASE_URL": self.urls[service]}
            self.processes[service] = [
                ServiceProcess(service, env, self.logs / f"{service}-{i}.log")
                for i in range(self.replicas)
            ]
        everyone = self.everyone()
        await asyncio.gather(*(p.start() for p in everyone))
        await asyncio.gather(*(p.wait_ready(timeout=60) for p in everyone))
        async with httpx.AsyncClient(
            base_url=self.processes["inventory"][0].base_url,
            headers={"Authorization": f"Bearer {admin_token_from_env()}"},
        ) as inv:
            for product, stock in (("chaos-widget", 1_000_000), ("chaos-sold-out", 0)):
                body = {
                    "product_id": product,
                    "name": product,
                    "price": 1250,
                    "currency": "USD",
                    "stock": stock,
                }
                response = await inv.post("/products", json=body)
                if response.status_code not in (201, 409):
                    raise RuntimeError(f"cannot create {product}: {response.text}")

    async def _fresh_database(self, service: str) -> None:
        url = make_url(self.urls[service])
        role_db = url.set(database=service).render_as_string(hide_password=False)
        conn = await asyncpg.connect(asyncpg_dsn(role_db), **PLAIN)
        try:
            if not await conn.fetchval(
                "SELECT 1 FROM pg_database WHERE datname = $1", url.database
            ):
                await conn.execute(f'CREATE DATABASE "{url.database}" OWNER "{url.username}"')
        finally:
            await conn.close()
        ini = self.root / "services" / service / "alembic.ini"
        await reset_database(ini, self.urls[service])

    def everyone(self) -> list[ServiceProcess]:
        return [p for ps in self.processes.values() for p in ps]

    async def respawn(self, service: str, i: int) -> None:
        old = self.processes[service][i]
        if old.process is not None:
            with contextlib.suppress(ProcessLookupError):
                await old.process.wait()
        new = ServiceProcess(service, old.env, old.log_path, port=old.port)
        self.processes[service][i] = new
        await new.start()

    async def infra(self, script: str, *args: str) -> int:
        """Runs ``scripts/infra/<script> args`` (this checkout's infrastructure, with the
        environment's ports); its output goes to ``infra.log`` beside the services' logs."""
        path = self.root / "scripts" / "infra" / script
        with (self.logs / "infra.log").open("ab") as log:
            proc = await asyncio.create_subprocess_exec(str(path), *args, stdout=log, stderr=log)
            return await proc.wait()

    async def wait_quiet(self, order_ids: set[str], timeout_s: float) -> float | None:
        """Every replica back up and ready, then until every order is final and every outbox
        empty; returns how long that took (None: not within ``timeout_s``)."""
        for service, replicas in self.processes.items():
            for i, process in enumerate(replicas):
                if process.process is None or process.process.returncode is not None:
                    await self.respawn(service, i)
            for process in self.processes[service]:
                await process.wait_ready(timeout=120)
        started = time.monotonic()
        while time.monotonic() - started < timeout_s:
            pending, outbox = await self.in_flight(order_ids)
            if pending == 0 and outbox == 0:
                return time.monotonic() - started
            print(
                f"  waiting for quiet: {pending} orders in flight, {outbox} outbox rows",
                file=sys.stderr,
                flush=True,
            )
            await asyncio.sleep(2.0)
        return None

    async def in_flight(self, order_ids: set[str]) -> tuple[int, int]:
        """Orders of ``order_ids`` not final yet (or not even stored), and outbox rows."""
        statuses = {r["id"]: r["status"] for r in await self.orders()}
        pending = sum(1 for o in order_ids if statuses.get(o, "PENDING") not in TERMINAL)
        return pending, await self.outbox_rows()

    async def orders(self) -> list[asyncpg.Record]:
        """Every order with its status, accepted and last-changed time (when it became final)."""
        conn = await asyncpg.connect(asyncpg_dsn(self.urls["orchestrator"]), **PLAIN)
        try:
            return list(
                await conn.fetch(
                    "SELECT order_id::text AS id, status, created_at, updated_at FROM orders"
                )
            )
        finally:
            await conn.close()

    async def outbox_rows(self) -> int:
        rows = 0
        for service in SERVICES:
            conn = await asyncpg.connect(asyncpg_dsn(self.urls[service]), **PLAIN)
            try:
                rows += int(await conn.fetchval("SELECT count(*) FROM outbox"))
            finally:
                await conn.close()
        return rows

    def maildir(self) -> Path | None:
        path = self.root / ".infra" / "data" / "mail"
        return path if path.is_dir() else None

    async def audit(self, *, poison_header: str = "x-chaos-poison") -> AuditReport:
        return await run_audit(
            AuditTargets(
                orchestrator_url=self.urls["orchestrator"],
                inventory_url=self.urls["inventory"],
                payment_url=self.urls["payment"],
                notification_url=self.urls["notification"],
                kafka_bootstrap=self.kafka_bootstrap,
                topic_prefix=self.prefix,
                maildir=self.maildir(),
                grace_s=0.0,
                deliberate_poison_header=poison_header,
            )
        )

    async def stop(self) -> None:
        everyone = self.everyone()
        await asyncio.gather(*(p.terminate(timeout=15) for p in everyone), return_exceptions=True)
        for process in everyone:
            process.kill()
        if self._guard is not None:
            await self._guard.close()


@dataclass
class LoadTally:
    orders: Counter[str] = field(default_factory=Counter)  # accepted, by kind
    channels: Counter[str] = field(default_factory=Counter)
    refused: int = 0
    order_ids: set[str] = field(default_factory=set)
    kinds: dict[str, str] = field(default_factory=dict)  # order id -> kind
    notes: list[str] = field(default_factory=list)


class Load:
    """Orders of the seeded ``MIX`` at ``rate`` per second until ``stopping`` is set, a share
    of them over the ``orders`` topic; each one is retried with the same key until accepted
    (a killed replica or a broker restart is not a refusal), for at most 90 s."""

    def __init__(
        self,
        system: System,
        tally: LoadTally,
        *,
        rate: float,
        rng: random.Random,
        topic_share: float = 0.2,
        sender: TopicSender | None = None,
    ) -> None:
        if topic_share and sender is None:
            raise ValueError("orders over the topic need a TopicSender")
        self.system = system
        self.tally = tally
        self.rate = rate
        self.rng = rng
        self.topic_share = topic_share
        self.sender = sender
        # One pooled client per replica's address: a client per request costs an SSL context
        # (CA bundle parsed) each time, which on a busy 2-core machine held the load well
        # below its rate. A replica killed and restarted on its port just drops the pool's
        # connections.
        self._clients: dict[str, httpx.AsyncClient] = {}

    async def run(self, stopping: asyncio.Event) -> None:
        kinds = [k for k, _, _ in MIX]
        weights = [w for _, w, _ in MIX]
        changes = {k: c for k, _, c in MIX}
        interval = 1.0 / self.rate
        in_flight: set[asyncio.Task[None]] = set()
        n = 0
        next_at = time.monotonic()
        while not stopping.is_set():
            kind = self.rng.choices(kinds, weights)[0]
            channel = "topic" if self.rng.random() < self.topic_share else "http"
            body = {
                "customer_id": f"chaos-{n % 50}",
                "email": changes[kind].get("email", f"chaos+{n}@example.com"),
                "items": [
                    {
                        "product_id": changes[kind].get("product_id", "chaos-widget"),
                        "quantity": 1 + n % 3,
                    }
                ],
                "payment_method": changes[kind].get("payment_method", "pm_card_visa"),
                "currency": "USD",
            }
            task = asyncio.create_task(self._place(kind, channel, body))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            n += 1
            # A fixed schedule, not a fixed sleep: a slow moment must not lower the rate.
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        if in_flight:
            await asyncio.wait(in_flight, timeout=120)
        for client in self._clients.values():
            await client.aclose()

    async def _place(self, kind: str, channel: str, body: dict[str, Any]) -> None:
        deadline = time.monotonic() + 90
        key = str(uuid.uuid4())  # the same key on every retry: a retry never places twice
        order_id = uuid.uuid4()
        while time.monotonic() < deadline:
            try:
                if channel == "http":
                    placed = await self._post(body, key)
                else:
                    placed = await self._send(order_id, body)
                if placed is not None:
                    self.tally.order_ids.add(placed)
                    self.tally.kinds[placed] = kind
                    break
            except (httpx.HTTPError, OSError, TimeoutError, KafkaError):
                pass  # a replica being killed, or Kafka restarting: try again
            except OrderRefused as exc:
                self.tally.notes.append(f"order refused: {exc}")
                self.tally.refused += 1
                return
            await asyncio.sleep(0.5)
        else:
            self.tally.refused += 1
            self.tally.notes.append(f"could not place a {kind} order over {channel} in 90 s")
            return
        self.tally.orders[kind] += 1
        self.tally.channels[channel] += 1

    async def _post(self, body: dict[str, Any], key: str) -> str | None:
        api = self.rng.choice(self.system.processes["orchestrator"])
        client = self._clients.get(api.base_url)
        if client is None:
            client = self._clients[api.base_url] = httpx.AsyncClient(
                base_url=api.base_url, timeout=5
            )
        response = await client.post("/orders", json=body, headers={"Idempotency-Key": key})
        if response.status_code == 202:
            return str(response.json()["order_id"])
        if response.status_code < 500:
            raise OrderRefused(f"{response.status_code} {response.text}")
        return None

    async def _send(self, order_id: uuid.UUID, body: dict[str, Any]) -> str:
        assert self.sender is not None
        envelope = Envelope(
            payload=PlaceOrder(
                order_id=order_id,
                customer_id=body["customer_id"],
                email=body["email"],
                items=[OrderItem(**i) for i in body["items"]],
                payment_method=body["payment_method"],
                currency="USD",
            ),
            order_id=order_id,
        )
        await self.sender.send(
            self.system.prefix + "orders", envelope.value(), envelope.key, envelope.headers()
        )
        return str(order_id)
