"""The bench's verdict on p99 over a run: flat, or climbing behind a growing backlog."""

from sagaops.bench import _trend


def test_noise_in_single_windows_is_flat() -> None:
    assert _trend([120.0, 480.0, 130.0, 110.0, 140.0, 125.0]) == {"ratio": 0.96, "flat": True}


def test_a_growing_backlog_is_climbing() -> None:
    assert _trend([100.0, 120.0, 110.0, 300.0, 400.0, 650.0])["flat"] is False


def test_too_short_a_run_has_no_verdict() -> None:
    assert _trend([150.0, None]) == {"ratio": None, "flat": None}
