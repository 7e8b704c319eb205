"""The local Kafka cluster as the failure runs see it: who leads which partitions, how busy
they are, whether every replica is back in sync; and its nodes killed and restarted through
this checkout's own scripts (``down.sh --kill kafka-<i>``, ``up.sh kafka-<i>``), which only
ever signal processes recorded in its ``.infra/run``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from sagakit.messaging.kafka_clients import kafka_admin, kafka_consumer
from sagakit.settings import kafka_security_from_env
from sagaops.harness import System

INTERNAL_TOPICS = ("__consumer_offsets",)


@dataclass(frozen=True)
class PartitionState:
    topic: str
    partition: int
    leader: int  # -1: none
    replicas: tuple[int, ...]
    isr: tuple[int, ...]

    @property
    def under_replicated(self) -> bool:
        return len(self.isr) < len(self.replicas)


@dataclass(frozen=True)
class BusiestLeader:
    node: int
    partitions: int  # of the busiest partitions, how many it leads
    busiest: int  # how many partitions counted as the busiest
    share: float  # of their records, the share on partitions it leads

    def describe(self) -> str:
        return (
            f"kafka-{self.node} leads {self.partitions} of the {self.busiest} busiest partitions"
            f" ({self.share:.0%} of their records)"
        )


def busiest_leader(
    states: list[PartitionState], records: dict[tuple[str, int], int], exclude: Collection[int]
) -> BusiestLeader:
    """The node leading the most traffic on the busiest third of the partitions (by records
    so far) that are led by nodes not in ``exclude``."""
    eligible = [s for s in states if s.leader >= 0 and s.leader not in exclude]
    if not eligible:
        raise RuntimeError(f"no partition led by a node outside {sorted(exclude)}")
    ranked = sorted(eligible, key=lambda s: records.get((s.topic, s.partition), 0), reverse=True)
    top = ranked[: max(1, len(ranked) // 3)]
    weight: Counter[int] = Counter()
    led: Counter[int] = Counter()
    for state in top:
        weight[state.leader] += records.get((state.topic, state.partition), 0) + 1
        led[state.leader] += 1
    node, heaviest = weight.most_common(1)[0]
    total = sum(records.get((s.topic, s.partition), 0) + 1 for s in top)
    return BusiestLeader(node, led[node], len(top), heaviest / total)


class Cluster:
    """An admin client on every node, for the topics under ``prefix`` (and the internal ones)."""

    def __init__(self, system: System, topics: list[str], nodes: int) -> None:
        self.system = system
        self.topics = topics
        self.nodes = nodes
        self._security = kafka_security_from_env()
        self._admin = kafka_admin(system.kafka_bootstrap, self._security, request_timeout_ms=5000)

    async def start(self) -> None:
        await self._admin.start()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._admin.close()

    async def partitions(self, *, internal: bool = False) -> list[PartitionState]:
        names = [*self.topics, *(INTERNAL_TOPICS if internal else ())]
        described: list[dict[str, Any]] = await asyncio.wait_for(
            self._admin.describe_topics(names), timeout=10
        )
        return [
            PartitionState(
                topic["topic"],
                p["partition"],
                p["leader"],
                tuple(p["replicas"]),
                tuple(p["isr"]),
            )
            for topic in described
            for p in topic["partitions"]
        ]

    async def records(self, states: list[PartitionState]) -> dict[tuple[str, int], int]:
        """Records per partition so far (end offsets: the run's topics started empty)."""
        consumer = kafka_consumer(
            bootstrap_servers=self.system.kafka_bootstrap,
            security=self._security,
            group_id=None,
            request_timeout_ms=15_000,  # a busy 2-core machine answers slowly, not never
        )
        await consumer.start()
        try:
            partitions = [TopicPartition(s.topic, s.partition) for s in states]
            for attempt in range(3):
                try:
                    ends = await consumer.end_offsets(partitions)
                    break
                except KafkaError:
                    if attempt == 2:
                        raise
                    await asyncio.sleep(1.0)
        finally:
            await consumer.stop()
        return {(tp.topic, tp.partition): offset for tp, offset in ends.items()}

    async def busiest_leader(self, exclude: Collection[int] = ()) -> BusiestLeader:
        states = await self.partitions()
        return busiest_leader(states, await self.records(states), exclude)

    async def wait(
        self,
        done: Callable[[list[PartitionState]], bool],
        *,
        timeout_s: float,
        internal: bool = False,
        interval_s: float = 0.5,
    ) -> float | None:
        """Seconds until ``done(partition states)`` holds (None: not within ``timeout_s``).
        Errors while brokers come and go only mean "not yet"."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        while loop.time() - started < timeout_s:
            with contextlib.suppress(KafkaError, TimeoutError, OSError):
                if done(await self.partitions(internal=internal)):
                    return loop.time() - started
            await asyncio.sleep(interval_s)
        return None

    async def leaders_moved_off(self, node: int, timeout_s: float) -> float | None:
        """Seconds until no partition of the run names ``node`` as leader and every one has a
        leader: the controller has fenced the dead broker and elected others."""
        return await self.wait(
            lambda states: all(s.leader not in (node, -1) for s in states), timeout_s=timeout_s
        )

    async def in_sync(self, timeout_s: float) -> float | None:
        """Seconds until every replica of the run's partitions (and __consumer_offsets) is in
        sync again."""
        return await self.wait(
            lambda states: not any(s.under_replicated for s in states),
            timeout_s=timeout_s,
            internal=True,
        )

    async def kill(self, node: int) -> None:
        """SIGKILL: a crash, no controlled shutdown handing leaderships over first."""
        if await self.system.infra("down.sh", "--kill", f"kafka-{node}") != 0:
            raise RuntimeError(f"down.sh --kill kafka-{node} failed (see {self.system.logs})")

    async def restart(self, node: int) -> None:
        """Starts the node again; returns once its client port answers."""
        if await self.system.infra("up.sh", f"kafka-{node}") != 0:
            raise RuntimeError(f"up.sh kafka-{node} failed (see {self.system.logs})")
