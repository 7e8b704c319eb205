"""``make bench``: load on the running system, and what it did with it.

Modes:
- closed loop (default): ``--orders`` orders, ``--concurrency`` sagas in flight: each client
  places an order, waits for its terminal event, places the next (a refusal is retried after
  its Retry-After): the sustained throughput;
- open loop: ``--rate`` orders per second for ``--seconds``, arrival times fixed in advance
  (an order is sent at its time whether or not the earlier ones were answered): latency at a
  given load, and what overload does;
- sweep: ``--sweep 50,100,200`` runs the open loop at each rate: the knee is the capacity.

Orders go through ``POST /orders`` (``--via http``, default) or onto the ``orders`` topic
(``--via kafka``). Each accepted order is timed from its 202 (or the broker's ack) to its terminal
event on ``order.events``. The report gives offered and completed rates, latency percentiles,
refusals (429/503, and whether they carried ``Retry-After``), dropped connections,
cancellations with their reasons, each process's CPU seconds and peak memory and the load
generator's own share of the machine; JSON and PNG go to ``bench-results/``.
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
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import uvloop
from aiokafka import AIOKafkaConsumer

from sagakit.backoff import sleep_unless
from sagakit.contracts import OrderItem, PlaceOrder
from sagakit.messaging.envelope import Envelope
from sagakit.messaging.kafka_clients import kafka_consumer
from sagakit.messaging.producer import Producer
from sagakit.ops import gc_pauses
from sagakit.settings import kafka_security_from_env
from sagaops.client import Endpoints, SagaShop
from sagaops.loadgen import ConnectionDropped, LoadClient
from sagaops.procwatch import ProcessWatch
from sagaops.progress import Progress

PRODUCT = "bench-widget"
TERMINAL = {"OrderConfirmed", "OrderCancelled", "OrderNeedsAttention"}
# p99 counts as flat when the later half of the run's 10 s windows is at most this much above
# the earlier half (median of each): noise moves single windows, a growing backlog all of them.
FLAT_P99_RATIO = 1.5


@dataclass
class Run:
    """What happened to every order of one run (times from ``time.monotonic``)."""

    started: float = 0.0
    offering_ends: float = 0.0
    # Set when --timeout ended the run first: the rates are then over the time until the stop.
    stopped_by_timeout_at: float = 0.0
    sent: int = 0
    accepted_at: dict[str, float] = field(default_factory=dict)
    finished_at: dict[str, float] = field(default_factory=dict)
    outcome: dict[str, str] = field(default_factory=dict)
    cancel_reasons: Counter[str] = field(default_factory=Counter)
    refused: Counter[int] = field(default_factory=Counter)
    refused_without_retry_after: int = 0
    dropped: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    response_s: list[float] = field(default_factory=list)  # request -> 202
    done: asyncio.Event = field(default_factory=asyncio.Event)
    all_sent: bool = False
    # Closed loop: a client waits for its order's terminal event.
    waiting: dict[str, asyncio.Future[None]] = field(default_factory=dict)

    @property
    def pending(self) -> int:
        return len(self.accepted_at) - len(self.finished_at)


# --- placing orders ---------------------------------------------------------------------------


def _order(n: int, tag: str) -> dict[str, Any]:
    return {
        # Many customers: the per-customer rate limit is not what this measures.
        "customer_id": f"bench-{tag}-{n % 997}",
        "email": f"bench+{n}@example.com",
        "items": [{"product_id": PRODUCT, "quantity": 1}],
        "payment_method": "pm_card_visa",
        "currency": "USD",
    }


class HttpPlacer:
    def __init__(self, api: str, connections: int) -> None:
        self.client = LoadClient(api, connections=connections)

    async def place(self, run: Run, n: int, tag: str) -> str | float | None:
        """The order id if accepted, the seconds to wait if refused, else None."""
        sent = time.monotonic()
        run.sent += 1
        try:
            response = await self.client.post_json("/orders", _order(n, tag))
        except ConnectionDropped:
            run.dropped += 1
            return None
        except OSError as exc:
            run.errors[type(exc).__name__] += 1
            return None
        now = time.monotonic()
        if response.status == 202:
            order_id = str(orjson.loads(response.body)["order_id"])
            run.accepted_at[order_id] = now
            run.response_s.append(now - sent)
            return order_id
        if response.status in (429, 503):
            run.refused[response.status] += 1
            if "retry-after" not in response.headers:
                run.refused_without_retry_after += 1
                return 1.0
            return float(response.headers["retry-after"])
        run.errors[f"HTTP {response.status}"] += 1
        return None

    async def close(self) -> None:
        await self.client.close()


class KafkaPlacer:
    """Orders as ``PlaceOrder`` records on the ``orders`` topic, as an upstream system sends
    them; accepted when the broker acknowledged them."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.producer = Producer(
            bootstrap, client_id="saga-bench", security=kafka_security_from_env()
        )
        self.topic = topic

    async def start(self) -> None:
        await self.producer.start()

    async def place(self, run: Run, n: int, tag: str) -> str | float | None:
        body = _order(n, tag)
        order_id = uuid.uuid4()
        envelope: Envelope[Any] = Envelope(
            payload=PlaceOrder(
                order_id=order_id,
                customer_id=body["customer_id"],
                email=body["email"],
                items=[OrderItem(**item) for item in body["items"]],
                payment_method=body["payment_method"],
                currency=body["currency"],
            ),
            order_id=order_id,
        )
        sent = time.monotonic()
        run.sent += 1
        try:
            await self.producer.publish(self.topic, envelope)
        except Exception as exc:  # counted and reported, the run goes on
            run.errors[type(exc).__name__] += 1
            return None
        now = time.monotonic()
        run.accepted_at[str(order_id)] = now
        run.response_s.append(now - sent)
        return str(order_id)

    async def close(self) -> None:
        await self.producer.stop()


# --- watching outcomes ------------------------------------------------------------------------


async def _watch_events(consumer: AIOKafkaConsumer, run: Run) -> None:
    while True:
        batch = await consumer.getmany(timeout_ms=200)
        now = time.monotonic()
        for records in batch.values():
            for record in records:
                headers = dict(record.headers or ())
                kind = headers.get("message-type", b"").decode()
                order_id = headers.get("order-id", b"").decode()
                if kind not in TERMINAL or order_id in run.finished_at:
                    continue
                run.finished_at[order_id] = now
                run.outcome[order_id] = kind
                waiter = run.waiting.pop(order_id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(None)
                if kind != "OrderConfirmed":
                    reason = orjson.loads(record.value).get("reason", "?")
                    run.cancel_reasons[str(reason)] += 1
        if run.all_sent and run.pending <= 0:
            run.done.set()


# --- one run ----------------------------------------------------------------------------------


async def run_once(
    args: argparse.Namespace, *, rate: float | None, orders: int, label: str
) -> dict[str, Any]:
    """A closed loop (``rate`` None) or an open loop at ``rate`` per second."""
    shop = SagaShop(Endpoints(args.api, args.inventory))
    if not await shop.ready():
        raise SystemExit(f"services are not ready at {args.api}: start them with `make demo`")
    await shop.ensure_product(PRODUCT, name="Bench widget", price=500, currency="USD", stock=orders)
    await shop.close()

    consumer = kafka_consumer(
        f"{args.topic_prefix}order.events",
        bootstrap_servers=args.bootstrap,
        security=kafka_security_from_env(),
        group_id=None,
        auto_offset_reset="latest",
        enable_auto_commit=False,
    )
    await consumer.start()
    await consumer.getmany(timeout_ms=1000)  # take the partitions and their end offsets now
    placer: HttpPlacer | KafkaPlacer
    if args.via == "kafka":
        placer = KafkaPlacer(args.bootstrap, f"{args.topic_prefix}orders")
        await placer.start()
    else:
        placer = HttpPlacer(args.api, args.connections)

    run = Run()
    watcher = asyncio.create_task(_watch_events(consumer, run))
    watch = ProcessWatch()
    watch.start()
    tag = uuid.uuid4().hex[:6]
    progress = Progress(orders, label)
    run.started = time.monotonic()
    sender = asyncio.create_task(
        _open_loop(placer, run, tag, rate, orders)
        if rate
        else _closed_loop(placer, run, tag, args.concurrency, orders)
    )
    deadline = run.started + args.timeout
    while not run.done.is_set():
        if time.monotonic() >= deadline:
            run.stopped_by_timeout_at = time.monotonic()
            break
        if sender.done() and not run.all_sent:
            run.all_sent = True
            run.offering_ends = run.offering_ends or time.monotonic()
            if run.pending <= 0:
                break
        progress.update(
            len(run.finished_at),
            f"done, {len(run.accepted_at)} accepted, {sum(run.refused.values())} refused, "
            f"{run.dropped} dropped",
        )
        await sleep_unless(run.done, 0.2)
    progress.update(len(run.finished_at), "done", force=True)
    progress.close()
    sender.cancel()
    await watch.stop()
    watcher.cancel()
    await asyncio.gather(sender, watcher, return_exceptions=True)
    await consumer.stop()
    await placer.close()
    result = summarise(run, rate=rate, via=args.via)
    result["processes"] = watch.report()
    generator = result["processes"].get("load generator", {})
    result["load_generator_cpu_share"] = generator.get("cpu_share_of_machine")
    stack_s = sum(
        u["cpu_s"]
        for name, u in result["processes"].items()
        if name not in ("load generator", "elsewhere")
    )
    result["stack_cpu_ms_per_saga"] = round(stack_s * 1000 / max(result["finished"], 1), 2)
    return result


async def _closed_loop(
    placer: HttpPlacer | KafkaPlacer, run: Run, tag: str, concurrency: int, orders: int
) -> None:
    numbers = iter(range(orders))
    loop = asyncio.get_running_loop()

    async def worker() -> None:
        for n in numbers:
            outcome = await placer.place(run, n, tag)
            while isinstance(outcome, float):  # refused: as a polite client, wait and retry
                await asyncio.sleep(outcome)
                outcome = await placer.place(run, n, tag)
            if isinstance(outcome, str) and outcome not in run.finished_at:
                waiter = run.waiting.setdefault(outcome, loop.create_future())
                await waiter

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    run.offering_ends = time.monotonic()


async def _open_loop(
    placer: HttpPlacer | KafkaPlacer, run: Run, tag: str, rate: float, orders: int
) -> None:
    """Order n is sent at start + n/rate, whatever happened to the others."""
    in_flight: set[asyncio.Task[None]] = set()
    for n in range(orders):
        delay = run.started + n / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(_send_once(placer, run, n, tag))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    run.offering_ends = time.monotonic()
    if in_flight:
        await asyncio.gather(*in_flight)


async def _send_once(placer: HttpPlacer | KafkaPlacer, run: Run, n: int, tag: str) -> None:
    await placer.place(run, n, tag)  # open loop: a refusal is counted, not retried


# --- figures ----------------------------------------------------------------------------------


def _trend(p99s: list[float | None]) -> dict[str, Any]:
    """Is p99 flat over the run or climbing? The median p99 of the later full 10 s windows over
    that of the earlier ones: a backlog that grows shows as a ratio well above 1."""
    values = [v for v in p99s if v is not None]
    if len(values) < 2:
        return {"ratio": None, "flat": None}
    half = len(values) // 2
    ratio = statistics.median(values[half:]) / max(statistics.median(values[:half]), 1e-9)
    return {"ratio": round(ratio, 2), "flat": ratio <= FLAT_P99_RATIO}


def _percentiles(values: list[float]) -> dict[str, float | None]:
    ordered = sorted(values)

    def pct(p: float) -> float | None:
        if not ordered:
            return None
        return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000, 1)

    return {
        "p50": pct(50),
        "p95": pct(95),
        "p99": pct(99),
        "max": round(ordered[-1] * 1000, 1) if ordered else None,
        "mean": round(statistics.fmean(ordered) * 1000, 1) if ordered else None,
    }


def summarise(run: Run, *, rate: float | None, via: str) -> dict[str, Any]:
    done = [o for o in run.finished_at if o in run.accepted_at]
    latencies = [run.finished_at[o] - run.accepted_at[o] for o in done]
    last = max(run.finished_at.values(), default=run.started)
    offering_ends = run.offering_ends or run.stopped_by_timeout_at
    offering = max(offering_ends - run.started, 1e-9)
    elapsed = max(last - run.started, 1e-9)
    in_window = sum(1 for o in done if run.finished_at[o] <= offering_ends)
    # p99 per 10 s of arrivals: is it flat over the run, or climbing?
    windows: dict[int, list[float]] = {}
    for order_id in done:
        bucket = int((run.accepted_at[order_id] - run.started) // 10)
        windows.setdefault(bucket, []).append(run.finished_at[order_id] - run.accepted_at[order_id])
    return {
        "mode": "open" if rate else "closed",
        "via": via,
        "offered_rate": rate,
        "sent": run.sent,
        "accepted": len(run.accepted_at),
        "refused": {str(k): v for k, v in sorted(run.refused.items())},
        "refused_without_retry_after": run.refused_without_retry_after,
        "dropped_connections": run.dropped,
        "errors": dict(run.errors),
        "finished": len(done),
        "unfinished": len(run.accepted_at) - len(done),
        "stopped_by_timeout_after_s": (
            round(run.stopped_by_timeout_at - run.started, 1) if run.stopped_by_timeout_at else None
        ),
        "outcomes": dict(Counter(run.outcome[o] for o in done)),
        "cancel_reasons": dict(run.cancel_reasons),
        "offering_s": round(offering, 2),
        "elapsed_s": round(elapsed, 2),
        "sent_per_s": round(run.sent / offering, 1),
        "accepted_per_s": round(len(run.accepted_at) / offering, 1),
        "completed_per_s": round(len(done) / elapsed, 1),
        "completed_while_offering_per_s": round(in_window / offering, 1),
        "latency_ms": _percentiles(latencies),
        "latency_p99_ms_by_10s": [_percentiles(windows[b])["p99"] for b in sorted(windows)],
        "p99_trend": _trend(
            [_percentiles(windows[b])["p99"] for b in sorted(windows) if (b + 1) * 10 <= offering]
        ),
        "response_ms": _percentiles(run.response_s),
        "_timeline": sorted(
            (run.accepted_at[o] - run.started, run.finished_at[o] - run.accepted_at[o])
            for o in done
        ),
        "_finishes": sorted(run.finished_at[o] - run.started for o in done),
        "_accepts": sorted(t - run.started for t in run.accepted_at.values()),
    }


def report(result: dict[str, Any]) -> str:
    lat, resp = result["latency_ms"], result["response_ms"]
    mode = (
        f"open loop at {result['offered_rate']:g} orders/s"
        if result["mode"] == "open"
        else "closed loop"
    )
    lines = [
        f"mode                 {mode}, via {result['via']}",
        f"orders               {result['sent']} sent, {result['accepted']} accepted, "
        f"refused {result['refused'] or 0} ({result['refused_without_retry_after']} without "
        f"Retry-After), {result['dropped_connections']} dropped, errors {result['errors'] or 0}",
        f"sagas finished       {result['finished']} {result['outcomes']}"
        + (f", cancelled because {result['cancel_reasons']}" if result["cancel_reasons"] else "")
        + (f", {result['unfinished']} accepted and unfinished" if result["unfinished"] else ""),
        f"rates (per s)        sent {result['sent_per_s']}, accepted {result['accepted_per_s']}, "
        f"completed {result['completed_per_s']} "
        f"({result['completed_while_offering_per_s']} while offering)",
        f"latency (ms)         202 -> terminal event: p50 {lat['p50']}  p95 {lat['p95']}  "
        f"p99 {lat['p99']}  max {lat['max']}",
        f"p99 by 10 s (ms)     {result['latency_p99_ms_by_10s']}"
        + _trend_words(result["p99_trend"]),
        f"response (ms)        request -> 202: p50 {resp['p50']}  p99 {resp['p99']}",
        f"stack CPU per saga   {result['stack_cpu_ms_per_saga']} ms (every process above but "
        "the load generator and what ran elsewhere)",
        "processes            cpu s (share of machine), peak RSS MB:",
    ]
    if result["stopped_by_timeout_after_s"] is not None:
        lines.insert(
            1,
            f"STOPPED              by --timeout (BENCH_TIMEOUT) after "
            f"{result['stopped_by_timeout_after_s']:g} s, before every order was placed and "
            "finished: rates are over the time until the stop",
        )
    for name, usage in result["processes"].items():
        lines.append(
            f"  {name:18s} {usage['cpu_s']:7.1f} s ({usage['cpu_share_of_machine'] * 100:4.1f}%)"
            f"  {usage['peak_rss_mb']:6.1f} MB  x{usage['processes']}"
        )
    return "\n".join(lines)


def _trend_words(trend: dict[str, Any]) -> str:
    if trend["ratio"] is None:
        return ""
    verdict = "flat" if trend["flat"] else "CLIMBING"
    return f"  {verdict} (later/earlier windows x{trend['ratio']})"


def chart(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.2))
    timeline = result["_timeline"]
    if timeline:
        left.scatter(
            [t for t, _ in timeline], [lat * 1000 for _, lat in timeline], s=2, color="#3b7dd8"
        )
        left.set_yscale("log")
    left.set(
        title=f"latency, 202 -> terminal event (p99 {result['latency_ms']['p99']} ms)",
        xlabel="order accepted at (s since start)",
        ylabel="ms (log)",
    )
    span = int(max([*result["_finishes"], *result["_accepts"], 1])) + 1
    for key, label, colour in (
        ("_accepts", "accepted", "#999999"),
        ("_finishes", "completed", "#3b7dd8"),
    ):
        per_second = Counter(int(t) for t in result[key])
        right.plot(
            range(span), [per_second.get(s, 0) for s in range(span)], label=label, color=colour
        )
    if result["offered_rate"]:
        right.axhline(result["offered_rate"], color="orange", linestyle="--", label="offered")
    right.set(
        title=f"per second (completed {result['completed_per_s']}/s)",
        xlabel="seconds since start",
        ylabel="orders",
    )
    right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def sweep_chart(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    offered = [r["offered_rate"] for r in rows]
    ax.plot(offered, [r["completed_while_offering_per_s"] for r in rows], "o-", label="completed/s")
    ax.plot(offered, offered, ":", color="grey", label="offered")
    ax.set(xlabel="offered orders/s", ylabel="completed sagas/s", title="throughput and p99")
    twin = ax.twinx()
    twin.plot(offered, [r["latency_ms"]["p99"] or 0 for r in rows], "s-", color="red", label="p99")
    twin.set_ylabel("p99 latency (ms)", color="red")
    twin.set_yscale("log")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _write(out: Path, name: str, result: dict[str, Any]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    public = {k: v for k, v in result.items() if not k.startswith("_")}
    path = out / f"{name}.json"
    path.write_text(json.dumps(public, indent=2))
    return path


# --- entry point ------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> int:
    out = Path(args.out)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    if args.sweep:
        rows = []
        for rate in [float(r) for r in args.sweep.split(",")]:
            result = await run_once(
                args, rate=rate, orders=int(rate * args.seconds), label=f"{rate:g}/s"
            )
            rows.append(result)
            print(report(result), flush=True)
            print()
        print(
            f"{'offered/s':>10} {'completed/s':>12} {'p50 ms':>8} {'p99 ms':>8} {'refused':>8} "
            f"{'cancelled':>10}"
        )
        for r in rows:
            cancelled = sum(n for k, n in r["outcomes"].items() if k != "OrderConfirmed")
            print(
                f"{r['offered_rate']:>10g} {r['completed_while_offering_per_s']:>12} "
                f"{r['latency_ms']['p50']!s:>8} {r['latency_ms']['p99']!s:>8} "
                f"{sum(r['refused'].values()):>8} {cancelled:>10}"
            )
        path = _write(out, f"sweep-{stamp}", {"runs": rows})
        sweep_chart(rows, out / f"sweep-{stamp}.png")
        print(f"\nwritten: {path} and .png")
        return 0
    if args.rate:
        result = await run_once(
            args, rate=args.rate, orders=int(args.rate * args.seconds), label="bench"
        )
    else:
        result = await run_once(args, rate=None, orders=args.orders, label="bench")
    print(report(result))
    path = _write(out, f"bench-{stamp}", result)
    chart(result, out / f"bench-{stamp}.png")
    print(f"\nwritten: {path} and .png")
    return 1 if result["unfinished"] else 0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--orders", type=int, default=2000, help="closed loop: how many")
    parser.add_argument("--concurrency", type=int, default=32, help="closed loop: in flight")
    parser.add_argument("--rate", type=float, default=0.0, help="open loop: orders per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="open loop: for how long")
    parser.add_argument("--sweep", default="", help="open loops at these rates, e.g. 50,100,200")
    parser.add_argument("--via", choices=("http", "kafka"), default="http")
    parser.add_argument("--connections", type=int, default=256, help="HTTP connections at most")
    local = Endpoints.from_env()
    parser.add_argument("--api", default=os.environ.get("BENCH_API", local.api))
    parser.add_argument("--inventory", default=os.environ.get("BENCH_INVENTORY", local.inventory))
    parser.add_argument(
        "--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    parser.add_argument("--topic-prefix", default=os.environ.get("KAFKA_TOPIC_PREFIX", ""))
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="a run ends after this many seconds at most"
    )
    parser.add_argument("--out", default="bench-results")
    args = parser.parse_args()
    gc_pauses.settle()  # a full collection would stall the timing of every order in flight
    sys.exit(uvloop.run(main_async(args)))


if __name__ == "__main__":
    main()
