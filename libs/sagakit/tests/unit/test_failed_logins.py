"""Wrong admin credentials per client over a sliding window."""

from sagakit.ops.auth import FailedLogins


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_client_is_refused_past_the_limit_until_its_oldest_failure_leaves_the_window() -> None:
    clock = Clock()
    limiter = FailedLogins(3, 60.0, clock=clock)
    for _ in range(2):
        limiter.record("10.0.0.1", ok=False, surface="t")
        clock.now += 10
    assert limiter.retry_after("10.0.0.1") is None
    limiter.record("10.0.0.1", ok=False, surface="t")  # the third, at t=1020
    assert limiter.retry_after("10.0.0.1") == 40  # the first (t=1000) leaves at t=1060
    assert limiter.retry_after("10.0.0.2") is None  # others are not affected
    clock.now = 1060.5
    assert limiter.retry_after("10.0.0.1") is None


def test_a_right_credential_clears_the_record() -> None:
    limiter = FailedLogins(2, 60.0, clock=Clock())
    limiter.record("a", ok=False, surface="t")
    limiter.record("a", ok=True, surface="t")
    limiter.record("a", ok=False, surface="t")
    assert limiter.retry_after("a") is None


def test_only_the_most_recent_clients_are_tracked() -> None:
    limiter = FailedLogins(1, 60.0, max_clients=2, clock=Clock())
    for client in ("a", "b", "c"):
        limiter.record(client, ok=False, surface="t")
    assert limiter.retry_after("a") is None  # forgotten: memory stays bounded
    assert limiter.retry_after("b") == 60
    assert limiter.retry_after("c") == 60
