"""The broker-failure run's measurements: pause, time to full rate, the below-min-ISR rules,
and which broker leads the busiest partitions."""

import pytest

from sagaops.broker_failure import (
    Fault,
    Order,
    caught_up_after,
    full_rate_after,
    longest_gap,
    measure,
)
from sagaops.kafka_cluster import PartitionState, busiest_leader

pytestmark = pytest.mark.unit

RATE = 10.0


def steady(start: float, end: float, rate: float = RATE) -> list[float]:
    return [start + i / rate for i in range(int((end - start) * rate))]


def test_the_longest_gap_counts_from_the_fault() -> None:
    finished = [*steady(0, 10), *steady(16, 30)]
    assert longest_gap(finished, 10.0, 30.0) == pytest.approx(6.0)
    assert longest_gap([], 10.0, 30.0) == 20.0


def test_full_rate_is_back_at_the_first_completion_of_a_full_window_after_the_drop() -> None:
    # Completions stop at the kill (t=10) for 6 s, then a catch-up burst, then steady.
    finished = [*steady(0, 10), *steady(16, 20, rate=3 * RATE), *steady(20, 40)]
    assert full_rate_after(finished, 10.0, 40.0, RATE) == pytest.approx(6.0)


def test_a_late_burst_does_not_date_the_recovery_back_to_its_window() -> None:
    finished = [*steady(0, 10), *steady(19, 20, rate=40 * RATE), *steady(20, 40)]
    after = full_rate_after(finished, 10.0, 40.0, RATE)
    assert after == pytest.approx(9.0)


def test_full_rate_never_lost_is_zero_and_never_regained_is_none() -> None:
    assert full_rate_after(steady(0, 40), 10.0, 40.0, RATE) == 0.0
    assert full_rate_after(steady(0, 10), 10.0, 40.0, RATE) is None


def test_caught_up_when_the_backlog_is_back_to_its_level_before_the_fault() -> None:
    # One order every 0.1 s, each final 1 s later; nothing finishes in [10, 16), then the
    # backlog drains at three times the rate.
    orders = []
    for i in range(400):
        accepted = i / RATE
        finished = accepted + 1
        if 10 <= finished < 16:
            finished = 16 + (finished - 10) / 3
        orders.append(order(i, accepted, finished))
    after = caught_up_after(orders, 10.0, 40.0)
    assert after is not None
    assert 7.5 <= after <= 9.5
    assert caught_up_after([order(i, i / RATE, i / RATE + 1) for i in range(400)], 10, 40) == 0


def order(n: int, accepted: float, finished: float | None) -> Order:
    return Order(f"o{n}", "success", "CONFIRMED" if finished else "PENDING", accepted, finished)


def outage(outbox: list[int]) -> Fault:
    return Fault(
        "two down",
        [1, 2],
        "test",
        killed_at=10.0,
        restarted_at=[35.0, 60.0],
        back_at=[50.0, 75.0],
        outbox=outbox,
        until=100.0,
    )


def test_below_min_isr_passes_when_nothing_finishes_until_a_broker_returns() -> None:
    orders = [order(i, 12.0 + i, 51.0 + i) for i in range(5)]
    [result] = measure(orders, [outage([3, 5, 9])], baseline=RATE, pause_target_s=15)
    assert result["ok"]
    assert result["placed_during_outage"] == 5
    assert result["resumed_after_return_s"] == 16.0  # from the first broker's start (35 s)


def test_an_order_placed_during_the_outage_finishing_before_a_return_fails_it() -> None:
    orders = [order(1, 12.0, 20.0), order(2, 13.0, 52.0)]
    [result] = measure(orders, [outage([3, 5])], baseline=RATE, pause_target_s=15)
    assert not result["ok"]
    assert result["placed_during_outage_and_finished_before_a_return"] == 1


def test_a_shrinking_outbox_while_below_min_isr_fails_it() -> None:
    orders = [order(1, 12.0, 52.0)]
    [result] = measure(orders, [outage([3, 9, 4])], baseline=RATE, pause_target_s=15)
    assert result["outbox_rows_published_while_down"] == 5
    assert not result["ok"]


def test_not_resuming_before_the_second_broker_returns_fails_it() -> None:
    orders = [order(1, 12.0, 80.0)]
    [result] = measure(orders, [outage([3])], baseline=RATE, pause_target_s=15)
    assert not result["ok"]


def test_the_busiest_leader_is_weighted_by_records_and_skips_excluded_nodes() -> None:
    states = [
        PartitionState("orders", p, leader, (1, 2, 3), (1, 2, 3))
        for p, leader in enumerate([1, 2, 3, 2, 3, 1])
    ]
    records = {("orders", 0): 10, ("orders", 1): 500, ("orders", 2): 40, ("orders", 3): 480}
    assert busiest_leader(states, records, exclude=()).node == 2
    # Without kafka-2, the busiest third of what the others lead: orders-2 (kafka-3).
    other = busiest_leader(states, records, exclude={2})
    assert (other.node, other.partitions, other.busiest) == (3, 1, 1)
