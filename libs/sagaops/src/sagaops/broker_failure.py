"""``make broker-failure``: Kafka brokers die under load; nothing is lost, doubled or left
unfinished, and the pause it causes is measured.

On the local cluster (``make infra-up KAFKA_BROKERS=3``: replication factor 3, min.insync.replicas
2) the runner starts the system as processes (two replicas of every service, own databases and
topics, as ``make chaos``) and puts a steady, seeded mix of orders through the HTTP API while:

1. leader loss: the broker leading the busiest partitions is SIGKILLed, stays down a while and
   is restarted; the run waits until every replica is back in sync;
2. another leader loss: the busiest leader among the other brokers, the same way;
3. below min ISR: two brokers are SIGKILLed at once. One is left: writes cannot reach two
   replicas (and with combined nodes there is no controller quorum either), so nothing may be
   acknowledged; then one broker returns and the system must resume by itself; later the other.

Then the load stops, the runner waits until every order is final and every outbox empty, and
runs the audit. When each order became final is read from the orchestrator's database, so the
pause is measured on the system itself rather than on a client suffering the same broker loss.

Exit status 0 only if: the system went quiet, the audit found nothing, no accepted order is
missing or extra, every leader loss was back to full rate within the target, and while two
brokers were down no outbox row was published and no order placed during the outage finished.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import os
import random
import sys
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sagaops.audit import AuditReport
from sagaops.harness import (
    ALL_TOPICS,
    TERMINAL,
    Load,
    LoadTally,
    System,
    default_bootstrap,
    find_root,
)
from sagaops.kafka_cluster import Cluster

# The production default (.env.example): an outage longer than this still cancels the sagas
# waiting on it, which the report shows; chaos's 15 s would cancel more.
SERVICE_ENV = {"SAGA_STEP_TIMEOUT_S": "30"}
DRAIN_S = 5.0  # after two brokers die, what was acknowledged just before may still finish


@dataclass
class Config:
    rate: float = 5.0
    seed: int = 1
    replicas: int = 2
    warmup_s: float = 30.0  # steady load before the first fault: the baseline rate
    down_s: float = 20.0  # a killed leader stays down this long before it is restarted
    settle_s: float = 20.0  # steady load once every replica is back in sync
    below_min_isr_s: float = 25.0  # both brokers down before the first is restarted
    second_return_s: float = 30.0  # after the first is back, until the second is restarted
    pause_target_s: float = 15.0  # a leader loss must be back to full rate within this
    quiet_timeout_s: float = 300.0
    brokers: int = field(default_factory=lambda: int(os.environ.get("KAFKA_BROKERS", "3")))
    root: Path = field(default_factory=lambda: find_root())
    kafka_bootstrap: str = field(default_factory=default_bootstrap)


@dataclass
class Fault:
    """One fault on the timeline; times in seconds since the load started."""

    name: str
    nodes: list[int]
    why: str
    killed_at: float
    leaders_moved_s: float | None = None  # until no partition was led by a killed node
    restarted_at: list[float] = field(default_factory=list)  # each node's start command
    back_at: list[float] = field(default_factory=list)  # each node's port answering again
    in_sync_s: float | None = None  # after the last return, until every replica was in sync
    outbox: list[int] = field(default_factory=list)  # rows waiting, sampled while below min ISR
    until: float = 0.0  # where its effects are measured to: the next fault, or the end

    @property
    def below_min_isr(self) -> bool:
        return len(self.nodes) > 1


# --- measuring, from the orders' times alone ------------------------------------------------


def longest_gap(finished: list[float], start: float, end: float) -> float:
    """The longest stretch in ``[start, end]`` in which no order became final."""
    points = [start, *sorted(t for t in finished if start < t < end), end]
    return max(b - a for a, b in itertools.pairwise(points))


def full_rate_after(
    finished: list[float],
    start: float,
    end: float,
    rate: float,
    *,
    window_s: float = 5.0,
    step_s: float = 0.5,
    threshold: float = 0.8,
) -> float | None:
    """Seconds from ``start`` until completions are back at full rate: windows of
    ``window_s`` slide from ``start`` by ``step_s``; after the first one with fewer than
    ``threshold`` x ``rate`` completions per second (the drop), the first one at that rate
    again marks the recovery, timed at its first completion (a catch-up burst at the end of a
    window must not date the recovery back to the window's start).

    0: the rate never dropped. None: not back to full rate before ``end``. Completions come in
    bursts (batches, the mix's slow paths), so one short window proves nothing either way:
    5 s at 80% is what a steady run here never fell below for long.
    """
    times = sorted(finished)
    dropped = False
    s = start
    while s + window_s <= end + 1e-9:
        inside = [t for t in times if s <= t < s + window_s]
        if len(inside) < threshold * rate * window_s:
            dropped = True
        elif dropped:
            return inside[0] - start
        s += step_s
    return None if dropped else 0.0


def caught_up_after(orders: list[Order], start: float, end: float) -> float | None:
    """Seconds from ``start`` until the orders in flight are back to their level before it
    (the most in the 10 s before): the backlog the fault built is worked off. 0: it never
    built up; None: not before ``end``."""

    def in_flight(t: float) -> int:
        return sum(1 for o in orders if o.accepted <= t and (o.finished is None or o.finished > t))

    level = max(in_flight(start - i * 0.5) for i in range(21))
    built, t = False, start
    while t <= end:
        now = in_flight(t)
        if now > level:
            built = True
        elif built:
            return t - start
        t += 0.5
    return None if built else 0.0


@dataclass
class Order:
    order_id: str
    kind: str
    status: str
    accepted: float  # seconds since the load started
    finished: float | None  # when it became final, or None


def _percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def measure(
    orders: list[Order], faults: list[Fault], *, baseline: float, pause_target_s: float
) -> list[dict[str, Any]]:
    """Per fault: the pause in completions, how long until full rate, latency of the orders
    caught by it, and for the below-min-ISR outage what finished while it lasted."""
    finished = [o.finished for o in orders if o.finished is not None]
    results = []
    for fault in faults:
        start = fault.killed_at
        caught = [
            o.finished - o.accepted
            for o in orders
            if o.finished is not None and start - 2 <= o.accepted <= start + 10
        ]
        result: dict[str, Any] = {
            "fault": fault.name,
            "nodes": [f"kafka-{n}" for n in fault.nodes],
            "why": fault.why,
            "killed_at_s": round(start, 1),
            "leaders_moved_s": _round(fault.leaders_moved_s),
            "back_at_s": [round(t, 1) for t in fault.back_at],
            "in_sync_after_return_s": _round(fault.in_sync_s),
            "longest_gap_s": round(longest_gap(finished, start, fault.until), 1),
            "latency_of_caught_orders_s": {
                "p50": _round(_percentile(caught, 50)),
                "max": _round(max(caught, default=None)),
            },
        }
        if not fault.below_min_isr:
            after = full_rate_after(finished, start, fault.until, baseline)
            result["full_rate_after_s"] = _round(after)
            result["caught_up_after_s"] = _round(caught_up_after(orders, start, fault.until))
            result["ok"] = after is not None and after <= pause_target_s
        else:
            # A broker is back from its start: it replicates (and writes are acknowledged
            # again) before its client port opens at the end of its start-up.
            first_start = fault.restarted_at[0] if fault.restarted_at else fault.until
            back = first_start
            # Anything placed once both were down needs a write to two replicas to finish.
            early = [
                o.order_id
                for o in orders
                if o.accepted >= start and o.finished is not None and o.finished < first_start
            ]
            outage = [o for o in orders if start <= o.accepted < back]
            resumed = [o.finished - back for o in outage if o.finished is not None]
            drops = sum(max(0, a - b) for a, b in itertools.pairwise(fault.outbox))
            after = full_rate_after(finished, back, fault.until, baseline)
            result.update(
                {
                    "first_restarted_at_s": round(back, 1),
                    "finished_during_outage": sum(
                        1 for t in finished if start + DRAIN_S <= t < first_start
                    ),
                    "placed_during_outage_and_finished_before_a_return": len(early),
                    "outbox_rows_while_down": [
                        min(fault.outbox, default=0),
                        max(fault.outbox, default=0),
                    ],
                    "outbox_rows_published_while_down": drops,
                    "placed_during_outage": len(outage),
                    "resumed_after_return_s": _round(min(resumed, default=None)),
                    "outage_orders_final_after_return_s": _round(
                        max(resumed) if len(resumed) == len(outage) and resumed else None
                    ),
                    "full_rate_after_return_s": _round(after),
                    "caught_up_after_return_s": _round(caught_up_after(orders, back, fault.until)),
                }
            )
            # Resumed by itself: orders of the outage finished before the second broker was
            # even started again.
            second_start = fault.restarted_at[1] if len(fault.restarted_at) > 1 else fault.until
            resumed_alone = bool(resumed) and back + min(resumed) < second_start
            result["ok"] = not early and drops == 0 and resumed_alone
        results.append(result)
    return results


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


# --- the run ----------------------------------------------------------------------------------


class BrokerFailure:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.prefix = f"brokers-{config.seed}-{uuid.uuid4().hex[:6]}."
        self.logs = config.root / ".infra" / "logs" / "broker-failure" / self.prefix.rstrip(".")
        self.tally = LoadTally()
        self.system = System(
            root=config.root,
            kafka_bootstrap=config.kafka_bootstrap,
            prefix=self.prefix,
            replicas=config.replicas,
            logs=self.logs,
            service_env=SERVICE_ENV,
        )
        self.load = Load(self.system, self.tally, rate=config.rate, rng=self.rng, topic_share=0)
        self.cluster = Cluster(self.system, [self.prefix + t for t in ALL_TOPICS], config.brokers)
        self.faults: list[Fault] = []
        self.down: set[int] = set()
        self.stopping = asyncio.Event()
        self.t0 = 0.0  # wall clock when the load started (the databases store wall-clock times)
        self.quiet_after_s: float | None = None

    def now(self) -> float:
        return time.time() - self.t0

    def say(self, message: str) -> None:
        print(f"  t={self.now():5.0f}s  {message}", file=sys.stderr, flush=True)

    async def check_cluster(self) -> None:
        await self.cluster.start()
        if self.config.brokers < 3:
            raise SystemExit(
                "broker-failure needs a cluster of 3 or more brokers (KAFKA_BROKERS=3)"
            )
        try:
            states = await self.cluster.partitions(internal=True)
        except Exception as exc:
            raise SystemExit(
                f"cannot read the cluster at {self.config.kafka_bootstrap}: {exc}"
            ) from exc
        single = [s for s in states if len(s.replicas) < 3]
        if not states or single:
            raise SystemExit(
                f"the topics at {self.config.kafka_bootstrap} are not replicated 3 times: "
                "start the cluster with `make infra-up KAFKA_BROKERS=3` (and its bootstrap list)"
            )

    async def leader_loss(self, name: str, exclude: set[int]) -> None:
        busiest = await self.cluster.busiest_leader(exclude)
        node = busiest.node
        fault = Fault(name, [node], busiest.describe(), killed_at=self.now())
        self.faults.append(fault)
        self.say(f"{name}: SIGKILL kafka-{node} ({busiest.describe()})")
        await self.cluster.kill(node)
        self.down.add(node)
        fault.leaders_moved_s = await self.cluster.leaders_moved_off(node, self.config.down_s)
        await self._until(fault.killed_at + self.config.down_s)
        await self._restart(fault, node)
        fault.in_sync_s = await self.cluster.in_sync(timeout_s=180)
        self.say(
            f"{name}: kafka-{node} back at {fault.back_at[0]:.0f}s, replicas in sync after "
            f"{_fmt(fault.in_sync_s)}; leaders had moved after {_fmt(fault.leaders_moved_s)}"
        )
        await asyncio.sleep(self.config.settle_s)

    async def below_min_isr(self, name: str) -> None:
        busiest = await self.cluster.busiest_leader()
        others = [n for n in range(1, self.config.brokers + 1) if n != busiest.node]
        nodes = [busiest.node, self.rng.choice(others)]
        survivors = sorted(set(range(1, self.config.brokers + 1)) - set(nodes))
        why = f"{busiest.describe()}; kafka-{','.join(map(str, survivors))} left alone"
        fault = Fault(name, nodes, why, killed_at=self.now())
        self.faults.append(fault)
        self.say(f"{name}: SIGKILL kafka-{nodes[0]} and kafka-{nodes[1]}")
        for node in nodes:
            await self.cluster.kill(node)
            self.down.add(node)
        sampler = asyncio.create_task(self._sample_outbox(fault))
        await self._until(fault.killed_at + self.config.below_min_isr_s)
        sampler.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sampler
        await self._restart(fault, nodes[0])
        self.say(f"{name}: kafka-{nodes[0]} back; kafka-{nodes[1]} still down")
        await self._until(fault.back_at[0] + self.config.second_return_s)
        await self._restart(fault, nodes[1])
        fault.in_sync_s = await self.cluster.in_sync(timeout_s=180)
        self.say(f"{name}: both back, replicas in sync after {_fmt(fault.in_sync_s)}")
        await asyncio.sleep(self.config.settle_s)

    async def _restart(self, fault: Fault, node: int) -> None:
        fault.restarted_at.append(self.now())
        await self.cluster.restart(node)
        self.down.discard(node)
        fault.back_at.append(self.now())

    async def _sample_outbox(self, fault: Fault) -> None:
        await self._until(fault.killed_at + DRAIN_S)
        while True:
            with contextlib.suppress(Exception):
                fault.outbox.append(await self.system.outbox_rows())
            await asyncio.sleep(1.0)

    async def _until(self, at: float) -> None:
        await asyncio.sleep(max(0.0, at - self.now()))

    async def progress(self) -> None:
        while not self.stopping.is_set():
            await asyncio.sleep(10.0)
            with contextlib.suppress(Exception):
                pending, outbox = await self.system.in_flight(self.tally.order_ids)
                down = ", ".join(f"kafka-{n}" for n in sorted(self.down)) or "none"
                self.say(
                    f"orders {len(self.tally.order_ids):5d}  in flight {pending:4d}  "
                    f"outbox {outbox:4d}  brokers down: {down}"
                )

    async def timeline(self) -> None:
        await asyncio.sleep(self.config.warmup_s)
        await self.leader_loss("leader loss", exclude=set())
        first = self.faults[-1].nodes[0]
        await self.leader_loss("another leader loss", exclude={first})
        await self.below_min_isr("two brokers down (below min ISR)")

    async def orders(self) -> list[Order]:
        rows = await self.system.orders()
        return [
            Order(
                order_id=r["id"],
                kind=self.tally.kinds.get(r["id"], "?"),
                status=r["status"],
                accepted=r["created_at"].timestamp() - self.t0,
                finished=(
                    r["updated_at"].timestamp() - self.t0 if r["status"] in TERMINAL else None
                ),
            )
            for r in rows
        ]


async def run(config: Config) -> tuple[BrokerFailure, AuditReport | None, list[Order]]:
    bf = BrokerFailure(config)
    print(
        f"broker-failure: {config.rate:g} orders/s, {config.replicas} replicas per service, "
        f"{config.brokers} brokers at {config.kafka_bootstrap}, topics {bf.prefix}*",
        file=sys.stderr,
    )
    report = None
    try:
        await bf.check_cluster()
        await bf.system.start()
        bf.t0 = time.time()
        load = asyncio.create_task(bf.load.run(bf.stopping), name="load")
        progress = asyncio.create_task(bf.progress(), name="progress")
        try:
            await bf.timeline()
        finally:
            end = bf.now()
            for i, fault in enumerate(bf.faults):  # each measured up to the next one
                fault.until = bf.faults[i + 1].killed_at if i + 1 < len(bf.faults) else end
            bf.stopping.set()
            await asyncio.wait([load], timeout=150)
            progress.cancel()
        print("broker-failure: load stopped; waiting for the system to go quiet", file=sys.stderr)
        bf.quiet_after_s = await bf.system.wait_quiet(bf.tally.order_ids, config.quiet_timeout_s)
        if bf.quiet_after_s is not None:
            report = await bf.system.audit()
        orders = await bf.orders()
    finally:
        for node in sorted(bf.down):  # never leave the cluster short of a broker
            with contextlib.suppress(Exception):
                await bf.cluster.restart(node)
        await bf.cluster.close()
        await bf.system.stop()
    return bf, report, orders


# --- the report ---------------------------------------------------------------------------


def summarise(bf: BrokerFailure, report: AuditReport | None, orders: list[Order]) -> dict[str, Any]:
    config = bf.config
    # Full rate is the offered rate the load achieved before the faults: the system keeps
    # up with it in steady state (a run at a rate it cannot keep up with fails, rightly).
    warm = [o for o in orders if o.accepted < config.warmup_s]
    baseline = len(warm) / config.warmup_s if warm else config.rate
    stored = {o.order_id for o in orders}
    outcomes = Counter(f"{o.kind} -> {o.status}" for o in orders)
    faults = measure(orders, bf.faults, baseline=baseline, pause_target_s=config.pause_target_s)
    lost = sorted(bf.tally.order_ids - stored)
    extra = sorted(stored - bf.tally.order_ids)
    unfinished = [o.order_id for o in orders if o.finished is None]
    audit_ok = report is not None and report.ok
    ok = (
        bf.quiet_after_s is not None
        and audit_ok
        and not lost
        and not extra
        and not unfinished
        and all(f["ok"] for f in faults)
        and len(faults) == 3
    )
    return {
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        "accepted": len(bf.tally.order_ids),
        "refused": bf.tally.refused,
        "outcomes": dict(outcomes.most_common()),
        "lost": lost,
        "extra": extra,
        "unfinished": unfinished,
        "full_rate_orders_per_s": round(baseline, 2),
        "faults": faults,
        "quiet_after_s": _round(bf.quiet_after_s),
        "audit": "not run" if report is None else ("ok" if report.ok else "VIOLATIONS"),
        "violations": None if report is None else sum(len(i.violations) for i in report.invariants),
        "notes": bf.tally.notes[:20],
        "ok": ok,
    }


def render(summary: dict[str, Any], report: AuditReport | None, logs: Path) -> str:
    c = summary["config"]
    lines = [
        "",
        f"broker-failure report ({c['brokers']} brokers, RF 3, min ISR 2; {c['rate']:g} orders/s; "
        f"{c['replicas']} replicas per service)",
        f"  orders accepted    {summary['accepted']} (refused {summary['refused']}); "
        f"lost {len(summary['lost'])}, extra {len(summary['extra'])}, "
        f"not final {len(summary['unfinished'])}",
        f"  outcomes           {', '.join(f'{k} {v}' for k, v in summary['outcomes'].items())}",
        f"  full rate          {summary['full_rate_orders_per_s']} orders/s accepted before the faults",
    ]
    for f in summary["faults"]:
        lines.append(
            f"  {f['fault']}: {', '.join(f['nodes'])} SIGKILLed at {f['killed_at_s']}s ({f['why']})"
        )
        lat = f["latency_of_caught_orders_s"]
        if "full_rate_after_s" in f:
            lines += [
                f"      leaders moved after {_fmt(f['leaders_moved_s'])}; longest gap in "
                f"completions {f['longest_gap_s']}s; back to full rate after "
                f"{_fmt(f['full_rate_after_s'])} (target {c['pause_target_s']:g}s), backlog "
                f"worked off after {_fmt(f['caught_up_after_s'])}",
                f"      orders caught: latency p50 {_fmt(lat['p50'])}, max {_fmt(lat['max'])}; "
                f"restarted, back at {', '.join(f'{t}s' for t in f['back_at_s'])}, replicas in sync "
                f"{_fmt(f['in_sync_after_return_s'])} later",
            ]
        else:
            low, high = f["outbox_rows_while_down"]
            lines += [
                f"      while down: {f['outbox_rows_published_while_down']} outbox rows published "
                f"(waiting rows {low} -> {high}), {f['finished_during_outage']} orders finished "
                f"after the {DRAIN_S:g}s drain, {f['placed_during_outage_and_finished_before_a_return']}"
                f" of {f['placed_during_outage']} placed during the outage finished before a return",
                f"      first restarted at {f['first_restarted_at_s']}s (port answering at "
                f"{f['back_at_s'][0]}s): resumed after "
                f"{_fmt(f['resumed_after_return_s'])}, full rate after "
                f"{_fmt(f['full_rate_after_return_s'])}, backlog worked off after "
                f"{_fmt(f['caught_up_after_return_s'])}, every outage order final after "
                f"{_fmt(f['outage_orders_final_after_return_s'])}; second back at "
                f"{f['back_at_s'][-1]}s, replicas in sync {_fmt(f['in_sync_after_return_s'])} later",
            ]
        lines.append(f"      {'ok' if f['ok'] else 'FAILED'}")
    lines.append(f"  time to quiet      {_fmt(summary['quiet_after_s'])}")
    lines.append(f"  audit              {summary['audit']} ({summary['violations']} violations)")
    if report is not None:
        lines += ["", report.render()]
    lines += [f"  note: {n}" for n in summary["notes"]]
    lines.append(f"  logs: {logs}")
    lines.append("RESULT: " + ("PASS" if summary["ok"] else "FAIL"))
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f}s"


def chart(orders: list[Order], faults: list[Fault], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    finished = [o.finished for o in orders if o.finished is not None]
    if not finished:
        return
    end = int(max(finished)) + 1
    per_second = Counter(int(t) for t in finished)
    fig, ax = plt.subplots(figsize=(12, 4))
    ax.bar(range(end), [per_second.get(s, 0) for s in range(end)], width=1.0, color="#3b7dd8")
    for fault in faults:
        ax.axvline(fault.killed_at, color="red", linestyle="--")
        ax.annotate(
            f"kill {'+'.join(f'kafka-{n}' for n in fault.nodes)}",
            (fault.killed_at, ax.get_ylim()[1] * 0.92),
            color="red",
            fontsize=8,
        )
        for back in fault.back_at:
            ax.axvline(back, color="green", linestyle=":")
        if fault.below_min_isr and fault.restarted_at:
            ax.axvspan(fault.killed_at, fault.restarted_at[0], color="red", alpha=0.08)
    ax.set(
        title="orders becoming final per second (red: brokers killed, shaded: two down until"
        " one starts again, green: its port answers)",
        xlabel="seconds since the load started",
        ylabel="orders/s",
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    # The runner's own admin client would log every refused connection to a killed broker:
    # the report says what happened to the brokers.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    d = Config()
    parser.add_argument("--rate", type=float, default=d.rate, help="orders per second")
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--replicas", type=int, default=d.replicas, help="processes per service")
    parser.add_argument("--warmup", type=float, default=d.warmup_s, help="seconds before faults")
    parser.add_argument(
        "--down", type=float, default=d.down_s, help="seconds a killed leader stays down"
    )
    parser.add_argument("--settle", type=float, default=d.settle_s, help="seconds between faults")
    parser.add_argument(
        "--below-min-isr", type=float, default=d.below_min_isr_s, help="seconds both stay down"
    )
    parser.add_argument(
        "--pause-target",
        type=float,
        default=d.pause_target_s,
        help="a leader loss must be back to full rate within this many seconds",
    )
    parser.add_argument("--out", default="bench-results")
    args = parser.parse_args()
    config = Config(
        rate=args.rate,
        seed=args.seed,
        replicas=args.replicas,
        warmup_s=args.warmup,
        down_s=args.down,
        settle_s=args.settle,
        below_min_isr_s=args.below_min_isr,
        pause_target_s=args.pause_target,
    )
    bf, report, orders = asyncio.run(run(config))
    summary = summarise(bf, report, orders)
    print(render(summary, report, bf.logs))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"broker-failure-{stamp}.json").write_text(json.dumps(summary, indent=2))
    chart(orders, bf.faults, out / f"broker-failure-{stamp}.png")
    print(f"\nwritten: {out}/broker-failure-{stamp}.json and .png")
    sys.exit(0 if summary["ok"] else 1)


if __name__ == "__main__":
    main()
