"""``make bench``: place N orders as fast as the system takes them, then report completed sagas
per second and end-to-end latency (order accepted -> terminal event on ``order.events``).

Prints the figures, and writes them as JSON plus a PNG chart under ``bench-results/``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer

from sagakit.backoff import sleep_unless
from sagaops.client import Endpoints, SagaShop
from sagaops.progress import Progress

PRODUCT = "bench-widget"


@dataclass
class Run:
    orders: int
    accepted_at: dict[str, float] = field(default_factory=dict)
    finished_at: dict[str, float] = field(default_factory=dict)
    outcome: dict[str, str] = field(default_factory=dict)
    started: float = 0.0
    placed_by: float = 0.0
    failures: list[str] = field(default_factory=list)


async def _watch_events(consumer: AIOKafkaConsumer, run: Run, done: asyncio.Event) -> None:
    async for record in consumer:
        headers = {k: v.decode() for k, v in record.headers or ()}
        order_id = headers.get("order-id")
        if order_id in run.accepted_at and order_id not in run.finished_at:
            run.finished_at[order_id] = time.monotonic()
            run.outcome[order_id] = headers.get("message-type", "?")
            if len(run.finished_at) == run.orders:
                done.set()


async def _place(shop: SagaShop, run: Run, queue: asyncio.Queue[int], tag: str) -> None:
    while True:
        try:
            n = queue.get_nowait()
        except asyncio.QueueEmpty:
            return
        body = {
            "customer_id": f"bench-{tag}-{n % 97}",
            "email": f"bench+{n}@example.com",
            "items": [{"product_id": PRODUCT, "quantity": 1}],
            "payment_method": "pm_card_visa",
            "currency": "USD",
        }
        try:
            placed = await shop.place_order(body)
            run.accepted_at[placed["order_id"]] = time.monotonic()
        except Exception as exc:  # counted and reported, the run goes on
            run.failures.append(str(exc))


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    shop = SagaShop(Endpoints(args.api, args.inventory))
    if not await shop.ready():
        raise SystemExit(f"services are not ready at {args.api}: start them with `make demo`")
    await shop.ensure_product(
        PRODUCT, name="Bench widget", price=500, currency="USD", stock=args.orders
    )
    consumer = AIOKafkaConsumer(
        f"{args.topic_prefix}order.events",
        bootstrap_servers=args.bootstrap,
        group_id=None,
        auto_offset_reset="latest",
        enable_auto_commit=False,
    )
    await consumer.start()
    await consumer.getmany(timeout_ms=1000)  # take the partitions and their end offsets now
    run = Run(orders=args.orders)
    done = asyncio.Event()
    watcher = asyncio.create_task(_watch_events(consumer, run, done))
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(args.orders):
        queue.put_nowait(n)
    tag = uuid.uuid4().hex[:6]
    progress = Progress(args.orders, "bench")
    run.started = time.monotonic()
    placers = [asyncio.create_task(_place(shop, run, queue, tag)) for _ in range(args.concurrency)]
    deadline = run.started + args.timeout
    while not done.is_set() and time.monotonic() < deadline:
        if all(p.done() for p in placers) and not run.placed_by:
            run.placed_by = time.monotonic()
            if len(run.accepted_at) == len(run.finished_at):
                break
        progress.update(
            len(run.finished_at),
            f"finished, {len(run.accepted_at)} accepted, {len(run.failures)} refused",
        )
        await sleep_unless(done, 0.2)
    progress.update(len(run.finished_at), "finished", force=True)
    progress.close()
    run.placed_by = run.placed_by or time.monotonic()
    watcher.cancel()
    await consumer.stop()
    await shop.close()
    return summarise(run)


def summarise(run: Run) -> dict[str, Any]:
    latencies = sorted(run.finished_at[o] - run.accepted_at[o] for o in run.finished_at)
    last = max(run.finished_at.values(), default=run.started)
    elapsed = max(last - run.started, 1e-9)
    outcomes: dict[str, int] = {}
    for kind in run.outcome.values():
        outcomes[kind] = outcomes.get(kind, 0) + 1

    def pct(p: float) -> float:
        if not latencies:
            return float("nan")
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

    return {
        "orders": run.orders,
        "accepted": len(run.accepted_at),
        "refused": len(run.failures),
        "finished": len(run.finished_at),
        "outcomes": outcomes,
        "elapsed_s": round(elapsed, 3),
        "accepted_per_s": round(len(run.accepted_at) / max(run.placed_by - run.started, 1e-9), 1),
        "completed_sagas_per_s": round(len(run.finished_at) / elapsed, 1),
        "latency_ms": {
            "p50": round(pct(50), 1),
            "p95": round(pct(95), 1),
            "p99": round(pct(99), 1),
            "max": round(latencies[-1] * 1000, 1) if latencies else None,
            "mean": round(statistics.fmean(latencies) * 1000, 1) if latencies else None,
        },
        "_latencies_s": latencies,
        "_finish_offsets_s": sorted(t - run.started for t in run.finished_at.values()),
    }


def chart(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    lat = [x * 1000 for x in result["_latencies_s"]]
    left.hist(lat, bins=50, color="#3b7dd8")
    for name, colour in (("p50", "green"), ("p95", "orange"), ("p99", "red")):
        left.axvline(
            result["latency_ms"][name],
            color=colour,
            linestyle="--",
            label=f"{name} {result['latency_ms'][name]:.0f} ms",
        )
    left.set(title="end-to-end latency (accepted -> terminal event)", xlabel="ms", ylabel="orders")
    left.legend()
    finished = result["_finish_offsets_s"]
    right.plot(finished, range(1, len(finished) + 1), color="#3b7dd8")
    right.set(
        title=f"completed sagas ({result['completed_sagas_per_s']}/s)",
        xlabel="seconds since start",
        ylabel="sagas finished",
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def report(result: dict[str, Any]) -> str:
    lat = result["latency_ms"]
    return "\n".join(
        [
            f"orders placed        {result['accepted']} accepted, {result['refused']} refused "
            f"(of {result['orders']})",
            f"sagas finished       {result['finished']}  {result['outcomes']}",
            f"elapsed              {result['elapsed_s']:.1f} s",
            f"intake               {result['accepted_per_s']} orders/s accepted",
            f"throughput           {result['completed_sagas_per_s']} completed sagas/s",
            f"latency (ms)         p50 {lat['p50']}  p95 {lat['p95']}  p99 {lat['p99']}  "
            f"max {lat['max']}",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    local = Endpoints.from_env()
    parser.add_argument("--api", default=local.api)
    parser.add_argument("--inventory", default=local.inventory)
    parser.add_argument(
        "--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    parser.add_argument("--topic-prefix", default=os.environ.get("KAFKA_TOPIC_PREFIX", ""))
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--out", default="bench-results")
    args = parser.parse_args()
    result = asyncio.run(bench(args))
    print(report(result))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    public = {k: v for k, v in result.items() if not k.startswith("_")}
    (out / f"bench-{stamp}.json").write_text(json.dumps(public, indent=2))
    chart(result, out / f"bench-{stamp}.png")
    print(f"\nwritten: {out}/bench-{stamp}.json and .png")
    if result["finished"] < result["accepted"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
