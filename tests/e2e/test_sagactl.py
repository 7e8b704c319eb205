"""``sagactl`` through its console-script entry point, against the running system."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from sagakit.testing.waiting import eventually

pytestmark = pytest.mark.e2e

TERMINAL = {"COMPLETED", "FAILED", "COMPENSATED", "COMPENSATION_FAILED"}
SAGACTL = str(Path(sys.executable).parent / "sagactl")
ORDER = {
    "customer_id": "cust-sagactl",
    "email": "buyer@example.com",
    "items": [{"product_id": "widget", "quantity": 1}],
    "payment_method": "pm_card_visa",
    "currency": "USD",
}


def sagactl(
    url: str, *args: str, token: str = "local-admin-token"
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ADMIN_TOKEN": token}
    return subprocess.run(
        [SAGACTL, "--url", url, "--operator", "bob", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )


async def test_sagactl_reads_and_refuses_with_exit_codes(system) -> None:  # type: ignore[no-untyped-def]
    async with httpx.AsyncClient(base_url=system.api) as client:
        placed = (await client.post("/orders", json=ORDER)).json()

    async def finished() -> bool:
        shown = sagactl(system.api, "show", placed["order_id"], "--json")
        assert shown.returncode == 0, shown.stderr
        return json.loads(shown.stdout)["status"] in TERMINAL

    await eventually(finished, timeout=20, interval=0.3)
    listed = sagactl(system.api, "list", "--customer-id", "cust-sagactl", "--json")
    assert listed.returncode == 0
    assert [s["saga_id"] for s in json.loads(listed.stdout)["sagas"]] == [placed["saga_id"]]
    table = sagactl(system.api, "show", placed["saga_id"])
    assert table.returncode == 0
    assert "history" not in table.stdout  # a readable table, not JSON
    assert any(status in table.stdout for status in TERMINAL)
    refused = sagactl(system.api, "cancel", placed["saga_id"], "--reason", "too late")
    assert refused.returncode == 1
    assert "not_cancellable" in refused.stderr
    assert sagactl(system.api, "show", "not-a-uuid").returncode == 1
    assert sagactl(system.api, "list", token="wrong").returncode == 1
    assert sagactl(system.api, "frobnicate").returncode == 2
    assert sagactl("http://127.0.0.1:9", "stuck").returncode == 3


async def test_sagactl_dlq_list_show_replay_discard(system) -> None:  # type: ignore[no-untyped-def]
    """A record inventory cannot read goes to its DLQ; replayed, it fails again and comes back
    once with its count; a filtered replay does not take it again; discard is audited."""
    from sagakit.testing.runners import running_producer

    source = system.prefix + "inventory.commands"
    topic = source + ".dlq"
    async with running_producer(system.infra.kafka_bootstrap_servers) as producer:
        await producer.send_raw(source, key=b"k1", value=b"\x00garbage", headers=[])

    async def records(expected: int) -> list[dict[str, object]] | None:
        listed = sagactl(system.api, "dlq", "list", topic, "--json")
        assert listed.returncode == 0, listed.stderr
        found: list[dict[str, object]] = json.loads(listed.stdout)["records"]
        return found if len(found) >= expected else None

    [first] = await eventually(lambda: records(1), timeout=30, interval=0.5)  # type: ignore[misc]
    summary = sagactl(system.api, "dlq", "list", "--json")
    assert summary.returncode == 0, summary.stderr
    [mine] = [t for t in json.loads(summary.stdout)["topics"] if t["topic"] == topic]
    assert mine["unreplayed"] == 1
    shown = sagactl(system.api, "dlq", "show", str(first["ref"]))
    assert shown.returncode == 0, shown.stderr
    assert "dlq-error-code: missing_header" in shown.stdout

    replayed = sagactl(system.api, "dlq", "replay", "--topic", topic, "--reason", "try again")
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.strip() == "replayed 1, skipped 0"
    assert "replayed 1" in replayed.stderr  # progress
    first_again, returned = await eventually(lambda: records(2), timeout=30, interval=0.5)  # type: ignore[misc]
    assert first_again["state"] == "replayed"
    assert returned["replay_count"] == 1
    assert returned["replayed_from"] == first["ref"]
    again = sagactl(system.api, "dlq", "replay", "--topic", topic)
    assert again.stdout.strip() == "replayed 0, skipped 0"
    refused = sagactl(system.api, "dlq", "replay", str(first["ref"]))
    assert refused.returncode == 1
    assert "already_replayed" in refused.stderr

    discarded = sagactl(system.api, "dlq", "discard", str(returned["ref"]), "--reason", "junk")
    assert discarded.returncode == 0, discarded.stderr
    assert (
        sagactl(system.api, "dlq", "discard", str(returned["ref"]), "--reason", "x").returncode == 1
    )
    assert sagactl(system.api, "dlq", "show", "nope").returncode == 1
    assert sagactl(system.api, "dlq", "list", "no.such.dlq").returncode == 1
    rows = await system.query(
        "orchestrator",
        "SELECT operator, action, outcome FROM admin_actions WHERE target LIKE $1 ORDER BY id",
        f"dlq:{topic}/%",
    )
    assert [tuple(r) for r in rows] == [
        ("bob", "dlq_replay", "done"),
        ("bob", "dlq_replay", "refused"),
        ("bob", "dlq_discard", "done"),
        ("bob", "dlq_discard", "refused"),
    ]
