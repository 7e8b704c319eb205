"""``make chaos``: run the system under faults, then prove nothing was lost or doubled.

Two replicas of every service run on their own databases (``<service>_chaos``) and topics (a
fresh prefix). A steady, seeded mix of orders arrives over HTTP and the ``orders`` topic while:
a random service process is SIGKILLed every few seconds and restarted; the Kafka broker and
PostgreSQL are each restarted once (on a cluster, ``--kafka-brokers 3``: one broker, then
another, is SIGKILLed and restarted instead); Redis is stopped for a while; poison records
(garbage bytes, JSON of the wrong shape, unknown types, missing headers) go into every topic;
and an operator cancels a RUNNING saga now and then and replays what is in the dead-letter
topics (through the admin API, as ``sagactl`` would: the poison comes back to its DLQ once).
Then the faults stop, the runner waits until every order is final and every outbox is empty,
runs the audit and prints a report. Exit status 0 only if the system went quiet and the audit
found nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from sagakit.contracts import OrderItem, PlaceOrder
from sagakit.messaging.envelope import Envelope
from sagaops.audit import AuditReport
from sagaops.harness import (
    ALL_TOPICS,
    CONSUMED_TOPICS,
    SERVICES,
    Load,
    LoadTally,
    System,
    TopicSender,
    cluster_size,
    default_bootstrap,
    find_root,
)

__all__ = ["ALL_TOPICS", "SERVICES", "Chaos", "Config", "Tally", "main", "render", "run"]

POISON_HEADER = "x-chaos-poison"
POISON_KINDS = ("garbage bytes", "wrong shape", "unknown type", "missing headers")


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
    kafka_bootstrap: str = field(default_factory=default_bootstrap)
    # More than one: the local cluster of scripts/infra (KAFKA_BROKERS), whose brokers are
    # SIGKILLed one at a time instead of the whole of Kafka being restarted. None: as many as
    # the cluster at kafka_bootstrap has (restarting "kafka" as one node would replace a
    # cluster by a single node's layout).
    kafka_brokers: int | None = None


@dataclass
class Tally(LoadTally):
    kills: Counter[str] = field(default_factory=Counter)
    infra_restarts: list[str] = field(default_factory=list)
    poison: Counter[str] = field(default_factory=Counter)
    poison_ids: set[str] = field(default_factory=set)
    cancels: Counter[str] = field(default_factory=Counter)  # by outcome: done, refused, failed
    replays: Counter[str] = field(default_factory=Counter)  # replayed, skipped, failed
    quiet_after_s: float | None = None


class Chaos:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.prefix = f"chaos-{config.seed}-{uuid.uuid4().hex[:6]}."
        self.logs = config.root / ".infra" / "logs" / "chaos" / self.prefix.rstrip(".")
        self.tally = Tally()
        self.system = System(
            root=config.root,
            kafka_bootstrap=config.kafka_bootstrap,
            prefix=self.prefix,
            replicas=config.replicas,
            logs=self.logs,
        )
        self.sender = TopicSender(config.kafka_bootstrap)
        self.load = Load(
            self.system, self.tally, rate=config.rate, rng=self.rng, sender=self.sender
        )
        self.stopping = asyncio.Event()
        self.started = 0.0

    async def prepare(self) -> None:
        await self.system.start()
        await self.sender.start()

    # --- faults -------------------------------------------------------------------------------

    async def kill_processes(self) -> None:
        # Every process in a shuffled cycle, so each service is killed at least once per cycle.
        victims = [(s, i) for s in SERVICES for i in range(self.config.replicas)]
        while not self.stopping.is_set():
            self.rng.shuffle(victims)
            for service, i in victims:
                if await self._pause(self.rng.uniform(*self.config.kill_every_s)):
                    return
                self.system.processes[service][i].kill()
                self.tally.kills[service] += 1
                await asyncio.sleep(self.rng.uniform(0.5, 2.0))
                await self.system.respawn(service, i)

    async def infrastructure(self) -> None:
        if not self.config.infra_faults:
            return
        d = self.config.duration_s
        kafka = [(d * 0.30, "kafka")]
        brokers = self.config.kafka_brokers or 1
        if brokers > 1:
            kafka = [(d * 0.30, "kafka broker"), (d * 0.65, "kafka broker")]
        plan = sorted([*kafka, (d * 0.55, "postgres"), (d * 0.75, "redis")])
        killed: list[int] = []
        for at, component in plan:
            # The whole plan runs even when it falls behind (a slow broker restart on a busy
            # machine): a fault that comes after the load stops still has to be recovered from.
            if await self._pause(at - (time.monotonic() - self.started)):
                self.tally.notes.append(f"{component} fault came after the load stopped")
            if component == "redis":
                await self._infra("down.sh", "redis")
                self.tally.infra_restarts.append(f"redis stopped for {self.config.redis_down_s:g}s")
                await asyncio.sleep(self.config.redis_down_s)
                await self._infra("up.sh", "redis")
            elif component == "kafka broker":
                # A crash, not a stop: no controlled shutdown hands its leaderships over.
                # Another broker each time, so the second kill finds the first one back.
                node = self.rng.choice([n for n in range(1, brokers + 1) if n not in killed])
                killed.append(node)
                await self._infra("down.sh", "--kill", f"kafka-{node}")
                await asyncio.sleep(2.0)
                await self._infra("up.sh", f"kafka-{node}")
                self.tally.infra_restarts.append(f"kafka-{node} killed and restarted")
            else:
                await self._infra("down.sh", component)
                await asyncio.sleep(2.0)
                await self._infra("up.sh", component)
                self.tally.infra_restarts.append(f"{component} restarted")

    async def _infra(self, script: str, *args: str) -> None:
        code = await self.system.infra(script, *args)
        if code != 0:
            self.tally.notes.append(f"{script} {' '.join(args)} exited {code}")

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
                await self.sender.send(self.prefix + topic, value, valid.key, headers)
                break
            except Exception:
                await asyncio.sleep(1.0)
        else:
            self.tally.notes.append(f"could not inject poison into {topic}")
            return
        self.tally.poison[topic] += 1
        if topic != "order.events":  # nobody of ours consumes it, so nothing dead-letters it
            self.tally.poison_ids.add(poison_id)

    async def operate(self) -> None:
        """An operator at work during the faults: every few seconds, cancel one RUNNING saga
        (409 is fine: it finished meanwhile) and replay the dead-letter topics (a filtered
        replay: never a record that already came back). Whatever replica answers; one that
        is down or restarting is just a failed attempt."""
        import httpx

        from sagaops.client import admin_token_from_env

        headers = {"Authorization": f"Bearer {admin_token_from_env()}", "X-Operator": "chaos"}
        while not await self._pause(self.rng.uniform(4.0, 8.0)):
            api = self.rng.choice(self.system.processes["orchestrator"]).base_url
            async with httpx.AsyncClient(base_url=api, headers=headers, timeout=10) as client:
                try:
                    listed = await client.get(
                        "/admin/sagas", params={"status": "RUNNING", "limit": 5}
                    )
                    running = listed.json()["sagas"] if listed.status_code == 200 else []
                    if running:
                        saga = self.rng.choice(running)["saga_id"]
                        answer = await client.post(
                            f"/admin/sagas/{saga}/cancel", json={"reason": "chaos operator"}
                        )
                        outcome = {202: "done", 409: "refused"}.get(answer.status_code, "failed")
                        self.tally.cancels[outcome] += 1
                    answer = await client.post(
                        "/admin/dlq/replay",
                        json={"filter": {}, "reason": "chaos operator", "limit": 20},
                    )
                    if answer.status_code == 200:
                        body = answer.json()
                        self.tally.replays["replayed"] += len(body["replayed"])
                        self.tally.replays["skipped"] += len(body["skipped"])
                    else:
                        self.tally.replays["failed"] += 1
                except (httpx.HTTPError, ValueError, KeyError):
                    self.tally.cancels["failed"] += 1

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
        quiet_after = await self.system.wait_quiet(
            self.tally.order_ids, self.config.quiet_timeout_s
        )
        self.tally.quiet_after_s = quiet_after
        return quiet_after is not None

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
        await self.system.stop()
        await self.sender.stop()


async def run(config: Config) -> tuple[Chaos, AuditReport | None, bool, int]:
    if config.kafka_brokers is None:
        config.kafka_brokers = await cluster_size(config.kafka_bootstrap)
    chaos = Chaos(config)
    print(
        f"chaos: seed {config.seed}, {config.duration_s:g}s at {config.rate:g} orders/s, "
        f"{config.replicas} replicas per service, {config.kafka_brokers} Kafka broker(s), "
        f"topics {chaos.prefix}*",
        file=sys.stderr,
    )
    await chaos.prepare()
    chaos.started = time.monotonic()
    tasks = [
        asyncio.create_task(coro, name=name)
        for name, coro in (
            ("load", chaos.load.run(chaos.stopping)),
            ("kills", chaos.kill_processes()),
            ("infrastructure", chaos.infrastructure()),
            ("poison", chaos.inject_poison()),
            ("operator", chaos.operate()),
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
            report = await chaos.system.audit(poison_header=POISON_HEADER)
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
        f"  operator           cancels {dict(t.cancels) or 0}; DLQ replays {dict(t.replays) or 0}",
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
        "--kafka-brokers",
        type=int,
        default=None,
        help="nodes of the local Kafka cluster (default: as many as it has); more than one:"
        " brokers are SIGKILLed one at a time instead of Kafka being restarted",
    )
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
        kafka_brokers=args.kafka_brokers,
    )
    chaos, report, quiet, dead_lettered = asyncio.run(run(config))
    print(render(chaos, report, quiet, dead_lettered))
    ok = quiet and report is not None and report.ok and dead_lettered == len(chaos.tally.poison_ids)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
