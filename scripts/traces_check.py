"""Against running services exporting to Jaeger (make demo INFRA_JAEGER=1): one order is one trace.

Places an order on the orchestrator, then asks Jaeger's HTTP API for the trace whose server span
carries that order_id, and checks it has spans of all four services. Exit 0 on success, 1 if not.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.parse
import urllib.request

SERVICES = ("orchestrator", "inventory", "payment", "notification")
ORDER = {
    "customer_id": "traces-check",
    "email": "traces@example.com",
    "items": [{"product_id": "widget", "quantity": 1}],
    "payment_method": "pm_card_visa",
    "currency": "USD",
}


def _json(url: str, body: dict[str, object] | None = None) -> dict[str, object]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        result: dict[str, object] = json.loads(resp.read())
        return result


def _services_in(trace: dict[str, object]) -> dict[str, int]:
    processes = trace.get("processes", {})
    assert isinstance(processes, dict)
    names = {pid: p.get("serviceName", "?") for pid, p in processes.items()}
    counts: dict[str, int] = {}
    spans = trace.get("spans", [])
    assert isinstance(spans, list)
    for span in spans:
        name = names.get(span.get("processID"), "?")
        counts[name] = counts.get(name, 0) + 1
    return counts


def main() -> int:
    api = f"http://127.0.0.1:{os.environ.get('ORCHESTRATOR_HTTP_PORT', '8000')}"
    jaeger = f"http://127.0.0.1:{os.environ.get('JAEGER_UI_PORT', '16686')}"
    order = _json(f"{api}/orders", ORDER)
    order_id = str(order["order_id"])
    print(f"order {order_id} placed; looking for its trace in {jaeger}")
    query = urllib.parse.urlencode(
        {"service": "orchestrator", "tags": json.dumps({"order_id": order_id}), "limit": 5}
    )
    counts: dict[str, int] = {}
    trace_id = ""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        data = _json(f"{jaeger}/api/traces?{query}").get("data") or []
        assert isinstance(data, list)
        for trace in data:
            trace_id = str(trace.get("traceID", ""))
            counts = _services_in(trace)
        if all(s in counts for s in SERVICES):
            break
        time.sleep(1)  # spans are batched by each service, the saga takes a moment
    if not trace_id:
        print("FAIL: no trace with that order_id in Jaeger within 60 s", file=sys.stderr)
        return 1
    spans = ", ".join(f"{s}={counts.get(s, 0)}" for s in SERVICES)
    missing = [s for s in SERVICES if s not in counts]
    print(f"trace {trace_id}: spans per service: {spans}")
    print(f"  {jaeger}/trace/{trace_id}")
    if missing:
        print(f"FAIL: no spans from {', '.join(missing)}", file=sys.stderr)
        return 1
    print("OK: one order is one trace across all four services")
    return 0


if __name__ == "__main__":
    sys.exit(main())
