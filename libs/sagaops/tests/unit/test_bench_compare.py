"""bench-compare's summary: medians of each side and B's ratio to A."""

from typing import Any

from sagaops.bench_compare import compare


def _result(cpu: float, p99: float, elsewhere: float = 0.05) -> dict[str, Any]:
    return {
        "stack_cpu_ms_per_saga": cpu,
        "completed_per_s": 150.0,
        "latency_ms": {"p50": p99 / 2, "p99": p99},
        "response_ms": {"p99": 20.0},
        "processes": {"elsewhere": {"cpu_share_of_machine": elsewhere}},
    }


def test_medians_and_ratios_of_two_sides() -> None:
    before = [_result(10.0, 400.0), _result(11.0, 900.0), _result(10.5, 500.0)]
    after = [_result(12.6, 450.0), _result(12.0, 600.0), _result(13.0, 550.0, elsewhere=0.2)]
    lines = compare(before, after, ("before", "after")).splitlines()
    cpu = next(line for line in lines if line.startswith("stack CPU ms per saga"))
    assert "before    10.50" in cpu
    assert "after    12.60" in cpu
    assert "ratio 1.20" in cpu
    p99 = next(line for line in lines if line.startswith("latency p99 ms"))
    assert "ratio 1.10" in p99
    assert "(before 400/900/500; after 450/600/550)" in p99
    assert lines[-1] == "busy elsewhere on the machine during the runs: up to 20%"


def test_results_without_cpu_figures_leave_that_line_out() -> None:
    old = _result(10.0, 400.0)
    del old["stack_cpu_ms_per_saga"]
    summary = compare([old], [_result(10.0, 400.0)], ("a", "b"))
    assert "stack CPU" not in summary
    assert "latency p99 ms" in summary
