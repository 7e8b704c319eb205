"""The bench's process accounting counts this project's stack, not another checkout's."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from sagaops.procwatch import ProcessWatch, classify

BUSY = "import time\nend = time.time() + 0.6\nwhile time.time() < end: pass"


def test_processes_are_grouped_by_what_they_are() -> None:
    assert classify(1, ["/x/.venv/bin/python", "-m", "payment"]) == "payment"
    assert classify(1, ["postgres: orchestrator orchestrator 127.0.0.1(5) idle"]) == "postgresql"
    assert classify(1, ["java", "-Xmx1g", "kafka.Kafka", "server.properties"]) == "kafka"
    assert classify(1, ["/usr/bin/python3", "-m", "pytest"]) is None


async def _usage(root: Path, busy_in: Path) -> dict[str, dict[str, float]]:
    watch = ProcessWatch(interval_s=0.1, root=root)
    watch.start()
    # A stand-in SMTP server (classified by its script name) burning CPU in `busy_in`.
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", BUSY, "smtp_server.py", cwd=busy_in
    )
    await child.wait()
    await watch.stop()
    return watch.report()


async def test_a_process_working_under_the_project_counts(tmp_path: Path) -> None:
    report = await _usage(root=tmp_path, busy_in=tmp_path)
    assert report["smtp"]["cpu_s"] > 0.2
    assert report["smtp"]["processes"] == 1


async def test_another_checkouts_process_is_elsewhere(tmp_path: Path) -> None:
    ours, theirs = tmp_path / "ours", tmp_path / "theirs"
    ours.mkdir()
    theirs.mkdir()
    report = await _usage(root=ours, busy_in=theirs)
    assert "smtp" not in report
    assert report["elsewhere"]["cpu_s"] > 0.2  # the machine was busy: the report says so
