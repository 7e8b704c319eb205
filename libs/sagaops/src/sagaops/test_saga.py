"""``make test-saga``: one live order of every kind against running services, then a table.

Exit status 1 if any order ends differently from what its scenario expects.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from sagaops.client import Endpoints, SagaShop
from sagaops.scenarios import Outcome, run_all


def render(outcomes: list[Outcome]) -> str:
    rows = [("scenario", "order", "expected", "actual", "steps taken", "time")]
    for o in outcomes:
        actual = o.error or f"{o.order_status} / {o.saga_status}"
        rows.append(
            (
                o.scenario.name,
                o.order_id[:8] or "-",
                f"{o.scenario.expected_order} / {o.scenario.expected_saga}",
                ("" if o.ok else "✗ ") + actual,
                ", ".join(o.steps) or "-",
                f"{o.seconds:.1f}s",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


async def _main(endpoints: Endpoints, timeout: float) -> int:
    shop = SagaShop(endpoints)
    try:
        if not await shop.ready():
            print(
                f"services are not ready at {endpoints.api} and {endpoints.inventory}: "
                "start them with `make demo` (or make run-<service>)",
                file=sys.stderr,
            )
            return 2
        print(f"placing one order of each kind on {endpoints.api} ...", file=sys.stderr)
        outcomes = await run_all(shop, timeout=timeout)
    finally:
        await shop.close()
    print(render(outcomes))
    failed = [o for o in outcomes if not o.ok]
    print(f"\n{len(outcomes) - len(failed)} of {len(outcomes)} scenarios ended as expected")
    return 1 if failed else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    local = Endpoints.from_env()
    parser.add_argument("--api", default=local.api, help="orchestrator address")
    parser.add_argument("--inventory", default=local.inventory, help="inventory address")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per order")
    args = parser.parse_args()
    sys.exit(asyncio.run(_main(Endpoints(args.api, args.inventory), args.timeout)))


if __name__ == "__main__":
    main()
