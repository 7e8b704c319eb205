"""Medians and ratios of two sets of bench results (``saga-bench-compare --a A.json.. --b B.json..``).

`scripts/bench-compare.sh` runs the benchmark alternately against two commits' stacks and calls
this to say whether B is slower than A: CPU per saga is the steady figure, latency the noisy one.
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

FIGURES: dict[str, Callable[[dict[str, Any]], float | None]] = {
    "stack CPU ms per saga": lambda r: r.get("stack_cpu_ms_per_saga"),
    "completed per s": lambda r: r["completed_per_s"],
    "latency p50 ms": lambda r: r["latency_ms"]["p50"],
    "latency p99 ms": lambda r: r["latency_ms"]["p99"],
    "response p99 ms": lambda r: r["response_ms"]["p99"],
}


def _figures(results: list[dict[str, Any]]) -> dict[str, list[float]]:
    return {
        name: [v for v in (pick(r) for r in results) if v is not None]
        for name, pick in FIGURES.items()
    }


def compare(a: list[dict[str, Any]], b: list[dict[str, Any]], names: tuple[str, str]) -> str:
    fa, fb = _figures(a), _figures(b)
    lines = [f"median of {len(a)} and {len(b)} runs; ratio = {names[1]} / {names[0]}"]
    for name in FIGURES:
        if not fa[name] or not fb[name]:
            continue
        ma, mb = statistics.median(fa[name]), statistics.median(fb[name])
        ratio = f"{mb / ma:.2f}" if ma else "-"
        runs = "; ".join(
            f"{side} " + "/".join(f"{v:g}" for v in values)
            for side, values in zip(names, (fa[name], fb[name]), strict=True)
        )
        lines.append(
            f"{name:22s} {names[0]} {ma:8.2f}   {names[1]} {mb:8.2f}   ratio {ratio}   ({runs})"
        )
    elsewhere = [r["processes"].get("elsewhere", {}).get("cpu_share_of_machine") for r in a + b]
    shares = [s for s in elsewhere if s is not None]
    if shares:
        lines.append(f"busy elsewhere on the machine during the runs: up to {max(shares):.0%}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--names", default="A,B", help="labels of the two sides, comma-separated")
    parser.add_argument("--a", nargs="+", type=Path, required=True, help="A's bench JSON files")
    parser.add_argument("--b", nargs="+", type=Path, required=True, help="B's bench JSON files")
    args = parser.parse_args()
    a, b = ([json.loads(f.read_text()) for f in files] for files in (args.a, args.b))
    first, _, second = args.names.partition(",")
    print(compare(a, b, (first, second or "B")))


if __name__ == "__main__":
    main()
