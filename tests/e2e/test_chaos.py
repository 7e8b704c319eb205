"""A shortened chaos run: every service killed at least once, one broker restart, one database
restart, Redis stopped, poison on every topic, an operator cancelling sagas and replaying the
dead-letter topics; then the audit must find nothing.

It restarts the shared broker and database, so it always runs last (see conftest.py).
"""

from pathlib import Path

import pytest

from sagaops.chaos import ALL_TOPICS, SERVICES, Config, render, run

pytestmark = [pytest.mark.e2e, pytest.mark.chaos]

REPORT = Path(__file__).resolve().parents[2] / ".infra" / "logs" / "chaos-test-report.txt"


@pytest.mark.timeout(900)
async def test_a_short_chaos_run_ends_quiet_with_zero_violations() -> None:
    config = Config(
        duration_s=60,
        rate=3,
        seed=20261121,
        kill_every_s=(2.0, 3.5),
        redis_down_s=8,
        quiet_timeout_s=240,
    )
    chaos, report, quiet, dead_lettered = await run(config)
    rendered = render(chaos, report, quiet, dead_lettered)
    print(rendered)
    # Kept when the test passes too (pytest shows output only on failure): its time to quiet and
    # notes (a task slow to stop) explain a slow `make test`.
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text(rendered + "\n")
    tally = chaos.tally
    assert quiet, "the system did not go quiet"
    assert report is not None
    assert report.ok, report.render()
    assert all(tally.kills[s] >= 1 for s in SERVICES), tally.kills
    # One broker: "kafka restarted"; on a cluster (KAFKA_BROKERS=3): "kafka-<i> killed and ...".
    assert any(fault.startswith("kafka") for fault in tally.infra_restarts)
    assert "postgres restarted" in tally.infra_restarts
    assert set(tally.poison) == set(ALL_TOPICS)
    assert dead_lettered == len(tally.poison_ids), "poison went missing"
    assert sum(tally.orders.values()) >= 150
    # The operator acted during the faults (a short run makes about a dozen attempts; some meet
    # a replica being killed): at least one RUNNING saga cancelled and one DLQ record replayed,
    # and the audit above held with them.
    assert tally.cancels["done"] >= 1, tally.cancels
    assert tally.replays["replayed"] >= 1, tally.replays
