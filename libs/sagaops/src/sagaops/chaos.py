"""``make chaos``: run the system under faults, then prove nothing was lost or doubled.

Two replicas of every service run on their own databases (``<service>_chaos``) and topics (a
fresh prefix). A steady, seeded mix of orders arrives over HTTP and the ``orders`` topic while:
a random service process is SIGKILLed every few seconds and restarted; the Kafka broker and
PostgreSQL are each restarted once; Redis is stopped for a while; poison records (garbage bytes,
JSON of the wrong shape, unknown types, missing headers) go into every topic. Then the faults
stop, the runner waits until every order is final and every outbox is empty, runs the audit and
prints a report. Exit status 0 only if the system went quiet and the audit found nothing.
"""

from __future__ import annotations

import argparse
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
from sagakit.messaging.envelope import Envelope
from sagakit.testing.databases import reset_database
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
POISON_HEADER = "x-chaos-poison"
POISON_KINDS = ("garbage bytes", "wrong shape", "unknown type", "missing headers")

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
    "PAYMENT_GATEWAY": "local",
    "SCHEDULER_POLL_INTERVAL_S": "0.5",
    "RATE_LIMIT_PER_MINUTE": "100000",
}


class OrderRefused(Exception):
    """The API answered 4xx: the order itself is wrong, retrying will not help."""


@dataclass
class Config:
    duration_s: float = 300.0
    rate: float = 5.0
    seed: int = 1
    replicas: int = 2
    kill_every_s: tuple[float, float] = (2.0, 5.0)
    redis_down_s: float = 15.0
    infra_faults: bool = True  # False: only process kills and poison (for debugging)
    quiet_timeout_s: float = 300.0
    root: Path = field(default_factory=lambda: find_root())
    kafka_bootstrap: str = field(
        default_factory=lambda: os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )


@dataclass
class Tally:
    orders: Counter[str] = field(default_factory=Counter)
    channels: Counter[str] = field(default_factory=Counter)
    refused: int = 0
    kills: Counter[str] = field(default_factory=Counter)
    infra_restarts: list[str] = field(default_factory=list)
    poison: Counter[str] = field(default_factory=Counter)
    poison_ids: set[str] = field(default_factory=set)
    order_ids: set[str] = field(default_factory=set)
    quiet_after_s: float | None = None
    notes: list[str] = field(default_factory=list)


def find_root() -> Path:
    here = Path.cwd()
    for candidate in (here, *here.parents):
        if (candidate / "scripts" / "infra" / "up.sh").exists():
            return candidate
    raise SystemExit("run from inside the repository (scripts/infra/up.sh not found)")


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


class Chaos:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.prefix = f"chaos-{config.seed}-{uuid.uuid4().hex[:6]}."
        self.urls = database_urls("_chaos")
        self.logs = config.root / ".infra" / "logs" / "chaos" / self.prefix.rstrip(".")
        self.tally = Tally()
        self.processes: dict[str, list[ServiceProcess]] = {}
        self.stopping = asyncio.Event()
        self.producer: AIOKafkaProducer | None = None
        self.started = 0.0
        self._guard: asyncpg.Connection | None = None

    # --- set-up -------------------------------------------------------------------------------

    async def claim(self) -> None:
        """One chaos run at a time on the ``_chaos`` databases: two would truncate each other's
        data (it happened, and the audit duly reported the wreckage). The lock lives as long as
        this connection, so a killed run releases it."""
        url = make_url(self.urls["orchestrator"])
        role_db = url.set(database=url.username).render_as_string(hide_password=False)
        self._guard = await asyncpg.connect(asyncpg_dsn(role_db))
        if not await self._guard.fetchval("SELECT pg_try_advisory_lock(hashtext('saga-chaos'))"):
            await self._guard.close()
            raise SystemExit("another chaos run is using the _chaos databases; wait for it to end")

    async def prepare(self) -> None:
        await self.claim()
        self.logs.mkdir(parents=True, exist_ok=True)
        for service in SERVICES:
            await self._fresh_database(service)
        from sagakit.testing.kafka import create_topics

        await create_topics(
            self.config.kafka_bootstrap, [self.prefix + t for t in ALL_TOPICS], partitions=6
        )
        env_common = {
            **SERVICE_ENV,
            "KAFKA_TOPIC_PREFIX": self.prefix,
            "KAFKA_BOOTSTRAP_SERVERS": self.config.kafka_bootstrap,
        }
        for service in SERVICES:
            env = {**env_common, f"{service.upper()}_DATABASE_URL": self.urls[service]}
            self.processes[service] = [
                ServiceProcess(service, env, self.logs / f"{service}-{i}.log")
                for i in range(self.config.replicas)
            ]
        everyone = [p for ps in self.processes.values() for p in ps]
        await asyncio.gather(*(p.start() for p in everyone))
        await asyncio.gather(*(p.wait_ready(timeout=60) for p in everyone))
        self.producer = self._new_producer()
        await self.producer.start()
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
        conn = await asyncpg.connect(asyncpg_dsn(role_db))
        try:
            if not await conn.fetchval(
                "SELECT 1 FROM pg_database WHERE datname = $1", url.database
            ):
                await conn.execute(f'CREATE DATABASE "{url.database}" OWNER "{url.username}"')
        finally:
            await conn.close()
        ini = self.config.root / "services" / service / "alembic.ini"
        await reset_database(ini, self.urls[service])

    # --- load ---------------------------------------------------------------------------------

    async def load(self) -> None:
        kinds = [k for k, _, _ in MIX]
        weights = [w for _, w, _ in MIX]
        changes = {k: c for k, _, c in MIX}
        interval = 1.0 / self.config.rate
        in_flight: set[asyncio.Task[None]] = set()
        n = 0
        while not self.stopping.is_set():
            kind = self.rng.choices(kinds, weights)[0]
            channel = "topic" if self.rng.random() < 0.2 else "http"
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
            await asyncio.sleep(interval)
        if in_flight:
            await asyncio.wait(in_flight, timeout=120)

    async def _place(self, kind: str, channel: str, body: dict[str, Any]) -> None:
        deadline = time.monotonic() + 90
        key = str(uuid.uuid4())  # the same key on every retry: a retry never places twice
        order_id = uuid.uuid4()
        while time.monotonic() < deadline:
            try:
                if channel == "http":
                    api = self.rng.choice(self.processes["orchestrator"])
                    async with httpx.AsyncClient(base_url=api.base_url, timeout=5) as client:
                        response = await client.post(
                            "/orders", json=body, headers={"Idempotency-Key": key}
                        )
                    if response.status_code == 202:
                        self.tally.order_ids.add(response.json()["order_id"])
                        break
                    if response.status_code < 500:
                        raise OrderRefused(f"{response.status_code} {response.text}")
                else:
                    assert self.producer is not None
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
                    await self._send(
                        self.prefix + "orders", envelope.value(), envelope.key, envelope.headers()
                    )
                    self.tally.order_ids.add(str(order_id))
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

    # --- faults -------------------------------------------------------------------------------

    async def kill_processes(self) -> None:
        # Every process in a shuffled cycle, so each service is killed at least once per cycle.
        victims = [(s, i) for s in SERVICES for i in range(self.config.replicas)]
        while not self.stopping.is_set():
            self.rng.shuffle(victims)
            for service, i in victims:
                if await self._pause(self.rng.uniform(*self.config.kill_every_s)):
                    return
                process = self.processes[service][i]
                process.kill()
                self.tally.kills[service] += 1
                await asyncio.sleep(self.rng.uniform(0.5, 2.0))
                await self._respawn(service, i)

    async def _respawn(self, service: str, i: int) -> None:
        old = self.processes[service][i]
        if old.process is not None:
            with contextlib.suppress(ProcessLookupError):
                await old.process.wait()
        new = ServiceProcess(service, old.env, old.log_path, port=old.port)
        self.processes[service][i] = new
        await new.start()

    async def infrastructure(self) -> None:
        if not self.config.infra_faults:
            return
        d = self.config.duration_s
        plan = sorted(
            [
                (d * 0.30, "kafka"),
                (d * 0.55, "postgres"),
                (d * 0.75, "redis"),
            ]
        )
        for at, component in plan:
            if await self._pause(at - (time.monotonic() - self.started)):
                return
            if component == "redis":
                await self._infra("down.sh", "redis")
                self.tally.infra_restarts.append(f"redis stopped for {self.config.redis_down_s:g}s")
                await asyncio.sleep(self.config.redis_down_s)
                await self._infra("up.sh", "redis")
            else:
                await self._infra("down.sh", component)
                await asyncio.sleep(2.0)
                await self._infra("up.sh", component)
                self.tally.infra_restarts.append(f"{component} restarted")

    async def _infra(self, script: str, component: str) -> None:
        path = self.config.root / "scripts" / "infra" / script
        with (self.logs / "infra.log").open("ab") as log:
            proc = await asyncio.create_subprocess_exec(
                str(path), component, stdout=log, stderr=log
            )
            code = await proc.wait()
        if code != 0:
            self.tally.notes.append(f"{script} {component} exited {code}")

    async def inject_poison(self) -> None:
        # Pass after pass, one kind per topic per pass: early passes already reach every topic.
        rounds = []
        for kind in POISON_KINDS:
            topics = list(ALL_TOPICS)
            self.rng.shuffle(topics)
            rounds += [(topic, kind) for topic in topics]
        interval = max(self.config.duration_s * 0.8 / len(rounds), 0.5)
        for topic, kind in rounds:
            if await self._pause(interval):
                return
            await self._poison(topic, kind)

    async def _poison(self, topic: str, kind: str) -> None:
        assert self.producer is not None
        poison_id = str(uuid.uuid4())
        valid = Envelope(
            payload=PlaceOrder(
                order_id=uuid.uuid4(),
                customer_id="poison",
                email="poison@example.com",
                items=[OrderItem(product_id="chaos-widget", quantity=1)],
                payment_method="pm_card_visa",
                currency="USD",
            ),
            saga_id=uuid.uuid4(),
        )
        headers = [*valid.headers(), (POISON_HEADER, poison_id.encode())]
        value: bytes = valid.value()
        if kind == "garbage bytes":
            value = bytes(self.rng.getrandbits(8) for _ in range(40))
        elif kind == "wrong shape":
            value = b'{"order": "not like this", "items": 3}'
        elif kind == "unknown type":
            headers = [(k, b"ChaosNoSuchMessage" if k == "message-type" else v) for k, v in headers]
        else:  # missing headers
            headers = [(POISON_HEADER, poison_id.encode())]
        for _ in range(60):  # the broker may be restarting
            try:
                await self._send(self.prefix + topic, value, valid.key, headers)
                break
            except Exception:
                await asyncio.sleep(1.0)
        else:
            self.tally.notes.append(f"could not inject poison into {topic}")
            return
        self.tally.poison[topic] += 1
        if topic != "order.events":  # nobody of ours consumes it, so nothing dead-letters it
            self.tally.poison_ids.add(poison_id)

    async def _send(
        self, topic: str, value: bytes, key: bytes | None, headers: list[tuple[str, bytes]]
    ) -> None:
        """Send one record; after a failure the client is replaced (a broker restart can leave
        it stuck), and the caller tries again."""
        assert self.producer is not None
        try:
            await self.producer.send_and_wait(topic, value, key=key, headers=headers)
        except Exception:
            old, self.producer = self.producer, self._new_producer()
            # stop() flushes what is buffered and can wait forever on a broken connection.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(old.stop(), timeout=5.0)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.producer.start(), timeout=10.0)
            raise

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self.config.kafka_bootstrap,
            enable_idempotence=True,
            request_timeout_ms=5000,
        )

    async def _pause(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), timeout=max(seconds, 0))
        return self.stopping.is_set()

    # --- the end ------------------------------------------------------------------------------

    async def progress(self) -> None:
        while not await self._pause(5.0):
            elapsed = time.monotonic() - self.started
            print(
                f"  t={elapsed:5.0f}s  orders {sum(self.tally.orders.values()):5d}  "
                f"kills {sum(self.tally.kills.values()):3d}  poison "
                f"{sum(self.tally.poison.values()):3d}  infra "
                f"[{', '.join(self.tally.infra_restarts) or '-'}]",
                file=sys.stderr,
            )

    async def wait_quiet(self) -> bool:
        for service, replicas in self.processes.items():  # every replica back up and ready
            for i, process in enumerate(replicas):
                if process.process is None or process.process.returncode is not None:
                    await self._respawn(service, i)
            for process in self.processes[service]:
                await process.wait_ready(timeout=120)
        started = time.monotonic()
        while time.monotonic() - started < self.config.quiet_timeout_s:
            pending, outbox = await self._in_flight()
            if pending == 0 and outbox == 0:
                self.tally.quiet_after_s = time.monotonic() - started
                return True
            print(
                f"  waiting for quiet: {pending} orders in flight, {outbox} outbox rows",
                file=sys.stderr,
                flush=True,
            )
            await asyncio.sleep(2.0)
        return False

    async def _in_flight(self) -> tuple[int, int]:
        conn = await asyncpg.connect(asyncpg_dsn(self.urls["orchestrator"]))
        try:
            rows = await conn.fetch("SELECT order_id::text AS id, status FROM orders")
        finally:
            await conn.close()
        statuses = {r["id"]: r["status"] for r in rows}
        pending = sum(1 for o in self.tally.order_ids if statuses.get(o, "PENDING") == "PENDING")
        outbox = 0
        for service in SERVICES:
            conn = await asyncpg.connect(asyncpg_dsn(self.urls[service]))
            try:
                outbox += int(await conn.fetchval("SELECT count(*) FROM outbox"))
            finally:
                await conn.close()
        return pending, outbox

    async def poison_dead_lettered(self) -> int:
        from sagakit.testing.kafka import read_topic

        seen: set[str] = set()
        for topic in CONSUMED_TOPICS:
            records = await read_topic(
                self.config.kafka_bootstrap, f"{self.prefix}{topic}.dlq", expected=10**9, timeout=3
            )
            for record in records:
                marker = dict(record.headers or ()).get(POISON_HEADER)
                if marker:
                    seen.add(marker.decode())
        return len(seen & self.tally.poison_ids)

    async def stop_all(self) -> None:
        everyone = [p for ps in self.processes.values() for p in ps]
        await asyncio.gather(*(p.terminate(timeout=15) for p in everyone), return_exceptions=True)
        for process in everyone:
            process.kill()
        if self.producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.producer.stop(), timeout=10)
        if self._guard is not None:
            await self._guard.close()

    def maildir(self) -> Path | None:
        path = self.config.root / ".infra" / "data" / "mail"
        return path if path.is_dir() else None


async def run(config: Config) -> tuple[Chaos, AuditReport | None, bool, int]:
    chaos = Chaos(config)
    print(
        f"chaos: seed {config.seed}, {config.duration_s:g}s at {config.rate:g} orders/s, "
        f"{config.replicas} replicas per service, topics {chaos.prefix}*",
        file=sys.stderr,
    )
    await chaos.prepare()
    chaos.started = time.monotonic()
    tasks = [
        asyncio.create_task(coro, name=name)
        for name, coro in (
            ("load", chaos.load()),
            ("kills", chaos.kill_processes()),
            ("infrastructure", chaos.infrastructure()),
            ("poison", chaos.inject_poison()),
            ("progress", chaos.progress()),
        )
    ]
    try:
        await asyncio.sleep(config.duration_s)
        print("chaos: faults stop; waiting for the system to go quiet", file=sys.stderr)
        chaos.stopping.set()
        _, late = await asyncio.wait(tasks, timeout=150)
        for task in late:  # a client stuck on the broker must not hold the whole run
            chaos.tally.notes.append(f"{task.get_name()} did not stop in 150 s")
            task.cancel()
        quiet = await chaos.wait_quiet()
        dead_lettered = await chaos.poison_dead_lettered()
        report = None
        if quiet:
            report = await run_audit(
                AuditTargets(
                    orchestrator_url=chaos.urls["orchestrator"],
                    inventory_url=chaos.urls["inventory"],
                    payment_url=chaos.urls["payment"],
                    notification_url=chaos.urls["notification"],
                    kafka_bootstrap=config.kafka_bootstrap,
                    topic_prefix=chaos.prefix,
                    maildir=chaos.maildir(),
                    grace_s=0.0,
                    deliberate_poison_header=POISON_HEADER,
                )
            )
    finally:
        for task in tasks:
            task.cancel()
        await chaos.stop_all()
    return chaos, report, quiet, dead_lettered


def render(chaos: Chaos, report: AuditReport | None, quiet: bool, dead_lettered: int) -> str:
    t = chaos.tally
    kills = ", ".join(f"{s} {t.kills[s]}" for s in SERVICES)
    lines = [
        "",
        f"chaos report (seed {chaos.config.seed}, {chaos.config.duration_s:g}s, "
        f"{chaos.config.rate:g} orders/s)",
        f"  orders placed      {sum(t.orders.values())} ({', '.join(f'{k} {v}' for k, v in t.orders.most_common())})",
        f"  by channel         {', '.join(f'{k} {v}' for k, v in t.channels.items())}; "
        f"refused {t.refused}",
        f"  processes killed   {sum(t.kills.values())} ({kills})",
        f"  infrastructure     {', '.join(t.infra_restarts) or 'none'}",
        f"  poison injected    {sum(t.poison.values())} into {len(t.poison)} topics; "
        f"{dead_lettered} of {len(t.poison_ids)} consumed ones found in their DLQ",
        "  time to quiet      "
        + (f"{t.quiet_after_s:.1f}s" if t.quiet_after_s is not None else "NOT QUIET"),
    ]
    if report is not None:
        failing = sum(len(i.violations) for i in report.invariants)
        lines.append(f"  violations         {failing}")
        lines.append("")
        lines.append(report.render())
    lines += [f"  note: {n}" for n in t.notes[:20]]
    lines.append(f"  logs: {chaos.logs}")
    ok = quiet and report is not None and report.ok and dead_lettered == len(t.poison_ids)
    lines.append("RESULT: " + ("PASS" if ok else "FAIL"))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=300.0, help="seconds of faults")
    parser.add_argument("--rate", type=float, default=5.0, help="orders per second")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument(
        "--no-infra-faults",
        action="store_true",
        help="leave Kafka, PostgreSQL and Redis alone (process kills and poison only)",
    )
    args = parser.parse_args()
    config = Config(
        duration_s=args.duration,
        rate=args.rate,
        seed=args.seed,
        replicas=args.replicas,
        infra_faults=not args.no_infra_faults,
    )
    chaos, report, quiet, dead_lettered = asyncio.run(run(config))
    print(render(chaos, report, quiet, dead_lettered))
    ok = quiet and report is not None and report.ok and dead_lettered == len(chaos.tally.poison_ids)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
