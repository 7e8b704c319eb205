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
