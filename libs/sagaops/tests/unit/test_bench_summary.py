"""The bench's summary of one run, when the run ended normally and when --timeout ended it."""

from sagaops.bench import Run, report, summarise


def _closed_loop_run(*, sent: int, finished: int) -> Run:
    run = Run(started=100.0, sent=sent)
    for n in range(sent):
        run.accepted_at[f"o{n}"] = 100.0 + n * 0.01
    for n in range(finished):
        run.finished_at[f"o{n}"] = 100.5 + n * 0.01
        run.outcome[f"o{n}"] = "OrderConfirmed"
    return run


def test_a_closed_loop_stopped_by_the_timeout_says_so_and_rates_are_over_the_time_until_then() -> (
    None
):
    run = _closed_loop_run(sent=1200, finished=1000)
    run.stopped_by_timeout_at = 700.0  # the workers never finished: offering_ends stays unset

    result = summarise(run, rate=None, via="http")
    result["processes"], result["stack_cpu_ms_per_saga"] = {}, 0.0

    assert result["stopped_by_timeout_after_s"] == 600.0
    assert result["sent_per_s"] == 2.0  # 1,200 over 600 s, not over 1e-9 s
    assert result["accepted_per_s"] == 2.0
    assert result["unfinished"] == 200
    text = report(result)
    assert "STOPPED              by --timeout (BENCH_TIMEOUT) after 600 s" in text
    assert "200 accepted and unfinished" in text


def test_a_run_that_finished_says_nothing_of_a_timeout() -> None:
    run = _closed_loop_run(sent=100, finished=100)
    run.offering_ends = 110.0

    result = summarise(run, rate=None, via="http")
    result["processes"], result["stack_cpu_ms_per_saga"] = {}, 0.0

    assert result["stopped_by_timeout_after_s"] is None
    assert result["sent_per_s"] == 10.0
    text = report(result)
    assert "STOPPED" not in text
    assert "unfinished" not in text
