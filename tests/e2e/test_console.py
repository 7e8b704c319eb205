"""The web console in a real headless Chromium (Debian's, driven by Selenium) against the running
system: log in, the list and its filters, a saga's diagram and timeline, cancel a saga that
waits on a silent participant, the stuck list, replay a dead letter.

``CONSOLE_SCREENSHOTS=<dir>`` also saves a screenshot of each page there (``make
console-screenshots`` writes docs/console/ that way).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiokafka import AIOKafkaProducer
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from sagakit.testing.infra import Infra
from sagakit.testing.waiting import eventually
from sagaops.client import Endpoints, SagaShop
from sagaops.scenarios import run_all

from .conftest import System, running_system

pytestmark = pytest.mark.e2e

TOKEN = "local-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
SHOTS = os.environ.get("CONSOLE_SCREENSHOTS")
# A step waits a minute for its reply: the saga whose participant is silent stays RUNNING.
ENV = {"SAGA_STEP_TIMEOUT_S": "60"}
RUNNING_ORDER = {
    "customer_id": "cust-waiting",
    "email": "buyer@example.com",
    "items": [{"product_id": "widget", "quantity": 1}],
    "payment_method": "pm_card_visa",
    "currency": "USD",
}


@pytest_asyncio.fixture(scope="module")
async def console_system(infra: Infra, tmp_path_factory: Any) -> AsyncIterator[dict[str, Any]]:
    """The system with one saga of every kind finished, and one RUNNING: payment is stopped
    while its order waits for process_payment."""
    async with running_system(infra, tmp_path_factory.mktemp("services"), **ENV) as system:
        shop = SagaShop(Endpoints(system.api, system.inventory_api))
        try:
            outcomes = await run_all(shop, timeout=60)
        finally:
            await shop.close()
        assert all(o.ok for o in outcomes), [(o.scenario.name, o.error) for o in outcomes]
        await system.processes["payment"].stop()
        async with httpx.AsyncClient(base_url=system.api, headers=ADMIN) as client:
            placed = (await client.post("/orders", json=RUNNING_ORDER)).json()

            async def waiting_for_payment() -> bool:
                saga = (await client.get(f"/sagas/{placed['saga_id']}")).json()
                return bool(saga["awaiting_step"] == "process_payment")

            await eventually(waiting_for_payment, timeout=20, what="saga waiting for payment")
        yield {"system": system, "running": placed["saga_id"], "order": placed["order_id"]}


def _chromium() -> WebDriver:
    driver_path = shutil.which("chromedriver")
    binary = shutil.which("chromium")
    assert driver_path, "no chromedriver: run scripts/install-browser.sh"
    assert binary, "no chromium: run scripts/install-browser.sh"
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1440,960",
        "--lang=en-US",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(driver_path), options=options)


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    driver = _chromium()
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()  # before the system stops: no live stream stays open


def wait(driver: WebDriver, timeout: float = 10) -> WebDriverWait[WebDriver]:
    # The pages update live: an element found a moment ago may have been replaced since.
    return WebDriverWait(
        driver, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)
    )


def shot(driver: WebDriver, name: str, *, full: bool = False) -> None:
    if not SHOTS:
        return
    Path(SHOTS).mkdir(parents=True, exist_ok=True)
    if full:
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1440, max(960, int(height)))
    driver.save_screenshot(str(Path(SHOTS) / f"{name}.png"))
    driver.set_window_size(1440, 960)


def rows(driver: WebDriver) -> list[str]:
    return [
        r.get_attribute("data-saga") or ""
        for r in driver.find_elements(By.CSS_SELECTOR, "table.grid tbody tr[data-saga]")
    ]


def login(driver: WebDriver, api: str) -> None:
    driver.get(f"{api}/console/sagas")
    wait(driver).until(ec.url_contains("/console/login"))
    driver.find_element(By.NAME, "operator").send_keys("carol")
    driver.find_element(By.NAME, "token").send_keys("wrong token")
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    assert (
        "Wrong token"
        in wait(driver)
        .until(ec.visibility_of_element_located((By.CSS_SELECTOR, ".alert.error")))
        .text
    )
    driver.find_element(By.NAME, "token").send_keys(TOKEN)
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver).until(ec.url_contains("/console/sagas"))


async def test_the_console_lists_filters_draws_and_cancels(
    console_system: dict[str, Any], browser: WebDriver
) -> None:
    system: System = console_system["system"]
    running: str = console_system["running"]
    driver = browser
    login(driver, system.api)
    cookie = driver.get_cookie("console_session")
    assert cookie is not None
    assert cookie["httpOnly"]
    assert cookie["sameSite"] == "Strict"

    # The list: every saga, live counts by status.
    wait(driver).until(lambda d: len(rows(d)) == 7)
    assert driver.find_element(By.CSS_SELECTOR, '[data-count="total"]').text == "7"
    assert driver.find_element(By.CSS_SELECTOR, '[data-count="RUNNING"]').text == "1"
    assert driver.find_element(By.CSS_SELECTOR, '[data-count="COMPENSATED"]').text == "2"
    shot(driver, "sagas")

    # Filters: by status, then by what the failure reason says.
    Select(driver.find_element(By.NAME, "status")).select_by_value("COMPENSATED")
    driver.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    wait(driver).until(ec.url_contains("status=COMPENSATED"))
    assert len(rows(driver)) == 2
    assert {b.text for b in driver.find_elements(By.CSS_SELECTOR, "tbody .badge")} == {
        "COMPENSATED"
    }
    Select(driver.find_element(By.NAME, "status")).select_by_value("")
    driver.find_element(By.NAME, "reason").send_keys("declined")
    driver.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    wait(driver).until(ec.url_contains("reason=declined"))
    assert len(rows(driver)) == 1
    driver.find_element(By.LINK_TEXT, "Clear").click()
    wait(driver).until(lambda d: len(rows(d)) == 7)

    # The RUNNING saga: its diagram shows where it is, its timeline how it got there.
    driver.find_element(By.CSS_SELECTOR, f'tr[data-saga="{running}"] a').click()
    wait(driver).until(ec.url_contains(f"/console/sagas/{running}"))
    assert driver.find_element(By.CSS_SELECTOR, ".saga-title .badge").text == "RUNNING"
    current = driver.find_element(By.CSS_SELECTOR, "svg.wf g.node.current")
    assert current.get_attribute("data-node") == "do_process_payment"
    visited = {
        n.get_attribute("data-node")
        for n in driver.find_elements(By.CSS_SELECTOR, "svg.wf g.node.visited")
    }
    assert visited == {"start", "do_reserve_inventory", "do_process_payment"}
    assert len(driver.find_elements(By.CSS_SELECTOR, "svg.wf g.edge.taken")) == 2
    events = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "table.timeline .event")]
    assert events == ["saga started", "command sent", "step succeeded", "command sent"]
    shot(driver, "saga-running", full=True)

    # The stuck list (RUNNING longer than 0 s) has it.
    driver.get(f"{system.api}/console/stuck?grace_s=0&running_over_s=0")
    assert running in rows(driver)
    # (Parked sagas are listed too: look at this one's row.)
    why = driver.find_element(By.CSS_SELECTOR, f'tr[data-saga="{running}"] .why')
    assert "running too long" in why.text
    shot(driver, "stuck")

    # Cancel it, confirming in the dialog: it compensates the reservation it made.
    driver.get(f"{system.api}/console/sagas/{running}")
    driver.find_element(By.CSS_SELECTOR, "[data-open=cancel-dialog]").click()
    dialog = wait(driver).until(ec.visibility_of_element_located((By.ID, "cancel-dialog")))
    dialog.find_element(By.NAME, "reason").send_keys("customer called to cancel")
    dialog.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver).until(ec.url_contains("notice=cancelled"))
    assert "Cancelled" in driver.find_element(By.CSS_SELECTOR, ".alert.notice").text
    # The payment it abandoned may have been taken: its refund waits for the payment service.
    assert driver.find_element(By.CSS_SELECTOR, ".saga-title .badge").text == "COMPENSATING"
    current = driver.find_element(By.CSS_SELECTOR, "svg.wf g.node.current")
    assert current.get_attribute("data-node") == "undo_process_payment"
    shot(driver, "saga-compensating", full=True)
    await system.restart("payment")
    # The page follows the saga live (no reload) until it is compensated.
    wait(driver, 30).until(
        lambda d: d.find_element(By.CSS_SELECTOR, ".saga-title .badge").text == "COMPENSATED"
    )
    current = driver.find_element(By.CSS_SELECTOR, "svg.wf g.node.current")
    assert current.get_attribute("data-node") == "COMPENSATED"
    timeline = driver.find_element(By.CSS_SELECTOR, "table.timeline").text
    assert "operator cancel" in timeline
    assert "carol" in timeline
    assert "customer called to cancel" in timeline
    shot(driver, "saga-cancelled", full=True)

    audit = await system.query(
        "orchestrator",
        "SELECT operator, action, outcome FROM admin_actions WHERE target = $1",
        f"saga:{running}",
    )
    assert [tuple(r) for r in audit] == [("carol", "cancel", "done")]
    released = await system.query(
        "inventory",
        "SELECT status FROM reservations WHERE order_id = $1::uuid",
        console_system["order"],
    )
    assert [r["status"] for r in released] == ["released"]

    # A saga of every other kind draws its own path; the one that needs attention offers retry.
    driver.get(f"{system.api}/console/sagas?status=COMPENSATION_FAILED")
    driver.find_element(By.CSS_SELECTOR, "tbody tr[data-saga] a").click()
    wait(driver).until(ec.presence_of_element_located((By.CSS_SELECTOR, "svg.wf")))
    assert driver.find_element(By.CSS_SELECTOR, "[data-open=retry-dialog]").is_displayed()
    current = driver.find_element(By.CSS_SELECTOR, "svg.wf g.node.current")
    assert current.get_attribute("data-node") == "COMPENSATION_FAILED"
    shot(driver, "saga-needs-attention", full=True)


async def test_console_posts_need_the_session_and_its_csrf_token(
    console_system: dict[str, Any],
) -> None:
    system: System = console_system["system"]
    async with httpx.AsyncClient(base_url=system.api) as client:
        listed = await client.get("/console/sagas")
        assert listed.status_code == 303
        assert listed.headers["location"].startswith("/console/login")
        anonymous = await client.post("/console/sagas/" + console_system["running"] + "/cancel")
        assert anonymous.status_code == 303  # to the login page, nothing done
        logged = await client.post(
            "/console/login", data={"operator": "mallory", "token": TOKEN, "next": "/console"}
        )
        assert logged.status_code == 303
        sagas = (await client.get("/admin/sagas?status=COMPLETED", headers=ADMIN)).json()
        target = sagas["sagas"][0]["saga_id"]
        forged = await client.post(
            f"/console/sagas/{target}/retry", data={"reason": "x", "csrf": "forged"}
        )
        assert forged.status_code == 403
        cross_site = await client.post(
            f"/console/sagas/{target}/retry",
            data={"reason": "x"},
            headers={"Origin": "https://evil.example"},
        )
        assert cross_site.status_code == 403
    audit = await system.query("orchestrator", "SELECT operator FROM admin_actions")
    assert "mallory" not in {r["operator"] for r in audit}


async def test_the_console_replays_a_dead_letter(
    console_system: dict[str, Any], browser: WebDriver
) -> None:
    """A record nobody can read lands in inventory.commands.dlq; replayed from the console it goes
    back to its topic, fails again and returns once, with its replay count."""
    system: System = console_system["system"]
    driver = browser
    producer = AIOKafkaProducer(bootstrap_servers=system.infra.kafka_bootstrap_servers)
    await producer.start()
    try:
        await producer.send_and_wait(
            system.prefix + "inventory.commands", b"{not json", key=b"poison-1"
        )
    finally:
        await producer.stop()
    topic = system.prefix + "inventory.commands.dlq"
    if driver.get_cookie("console_session") is None:
        login(driver, system.api)

    def dead_letters(d: WebDriver) -> list[Any]:
        d.get(f"{system.api}/console/dlq?topic={topic}")
        return d.find_elements(By.CSS_SELECTOR, "table.dlq tbody tr[data-ref]")

    wait(driver, 30).until(lambda d: len(dead_letters(d)) == 1)
    shot(driver, "dlq")
    driver.find_element(By.CSS_SELECTOR, "[data-open=replay-dialog]").click()
    dialog = wait(driver).until(ec.visibility_of_element_located((By.ID, "replay-dialog")))
    dialog.find_element(By.NAME, "reason").send_keys("parser fixed")
    dialog.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    wait(driver).until(ec.url_contains("notice=replayed"))
    assert "Replayed" in driver.find_element(By.CSS_SELECTOR, ".alert.notice").text

    def states(d: WebDriver) -> list[tuple[str, str]]:
        rows = dead_letters(d)
        return [
            (
                r.find_element(By.CSS_SELECTOR, ".state").text,
                r.find_elements(By.TAG_NAME, "td")[5].text,
            )
            for r in rows
        ]

    # Still unreadable: back once, with its count; the first copy stays "replayed".
    wait(driver, 30).until(lambda d: sorted(states(d)) == [("replayed", "0"), ("unreplayed", "1")])
    shot(driver, "dlq-replayed")
    audit = await system.query(
        "orchestrator",
        "SELECT operator, action, outcome FROM admin_actions WHERE action LIKE 'dlq%'",
    )
    assert [tuple(r) for r in audit] == [("carol", "dlq_replay", "done")]
