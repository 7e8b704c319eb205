"""``/metrics`` refreshes the scrape-time gauges first; a failing refresher never fails it."""

import httpx
import pytest
from prometheus_client import REGISTRY, Gauge

from sagakit.ops.http import build_ops_app

pytestmark = pytest.mark.unit

PROBE = Gauge("saga_test_scrape_probe", "Set by a test refresher.")


async def test_a_scrape_runs_the_refreshers_and_survives_a_failing_one() -> None:
    app = build_ops_app("test", {})
    calls = []

    async def refresh() -> None:
        calls.append(1)
        PROBE.set(len(calls))

    async def broken() -> None:
        raise RuntimeError("database away")

    app.state.scrape.add("probe", refresh)
    app.state.scrape.add("broken", broken)
    app.state.scrape.min_interval_s = 0
    errors = REGISTRY.get_sample_value("saga_metrics_refresh_errors_total", {"refresher": "broken"})
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        first = await client.get("/metrics")
        second = await client.get("/metrics")
    assert first.status_code == second.status_code == 200
    assert "saga_test_scrape_probe 2.0" in second.text
    after = REGISTRY.get_sample_value("saga_metrics_refresh_errors_total", {"refresher": "broken"})
    assert after == (errors or 0) + 2


async def test_refreshers_run_at_most_once_per_interval() -> None:
    app = build_ops_app("test", {})
    calls = []

    async def refresh() -> None:
        calls.append(1)

    app.state.scrape.add("probe", refresh)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for _ in range(3):
            assert (await client.get("/metrics")).status_code == 200
    assert len(calls) == 1
