"""CPU seconds and peak memory of the system's processes during a run, read from /proc.

Every process of the machine that belongs to the system is grouped under a name: each service
(``python -m <service>``, all its replicas together), Kafka, PostgreSQL (every backend), Redis,
the SMTP server, stripe-mock, and the load generator itself. Linux only; elsewhere it reports
nothing rather than failing the run.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass, field
from pathlib import Path

SERVICES = ("orchestrator", "inventory", "payment", "notification")
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def classify(pid: int, cmdline: list[str]) -> str | None:
    """Which part of the system a process is, or None."""
    if pid == os.getpid():
        return "load generator"
    if not cmdline:
        return None
    joined = " ".join(cmdline)
    for service in SERVICES:
        if (
            "-m" in cmdline
            and service in cmdline[cmdline.index("-m") + 1 : cmdline.index("-m") + 2]
        ):
            return service
    exe = Path(cmdline[0]).name
    if exe == "java" and "kafka.Kafka" in joined:
        return "kafka"
    if exe == "postgres" or joined.startswith("postgres:"):
        return "postgresql"
    if exe.startswith("redis-server"):
        return "redis"
    if "smtp_server.py" in joined:
        return "smtp"
    if exe == "stripe-mock":
        return "stripe-mock"
    return None


@dataclass
class Usage:
    cpu_s: float = 0.0
    peak_rss_mb: float = 0.0  # the largest single process of the group
    processes: int = 0


@dataclass
class ProcessWatch:
    """Start, let it sample while the run goes, stop: ``usage`` then holds the run's figures."""

    interval_s: float = 0.5
    usage: dict[str, Usage] = field(default_factory=dict)
    _start_ticks: dict[int, tuple[str, int]] = field(default_factory=dict)
    _last_ticks: dict[int, tuple[str, int]] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None
    wall_s: float = 0.0

    def start(self) -> None:
        self._start_ticks = dict(_snapshot())
        self._last_ticks = dict(self._start_ticks)
        self._started = asyncio.get_running_loop().time()
        self._task = asyncio.create_task(self._sample())

    async def stop(self) -> dict[str, Usage]:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._record(_snapshot())
        self.wall_s = asyncio.get_running_loop().time() - self._started
        for pid, (group, ticks) in self._last_ticks.items():
            first = self._start_ticks.get(pid, (group, 0))[1]  # started during the run: from 0
            usage = self.usage.setdefault(group, Usage())
            usage.cpu_s += (ticks - first) / _TICKS
            usage.processes += 1
        return self.usage

    async def _sample(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            self._record(_snapshot())

    def _record(self, snapshot: list[tuple[int, tuple[str, int]]]) -> None:
        for pid, (group, ticks) in snapshot:
            self._last_ticks[pid] = (group, ticks)
            rss = _rss_mb(pid)
            usage = self.usage.setdefault(group, Usage())
            usage.peak_rss_mb = max(usage.peak_rss_mb, rss)

    def report(self) -> dict[str, dict[str, float]]:
        cores = os.cpu_count() or 1
        capacity = max(self.wall_s * cores, 1e-9)
        return {
            name: {
                "cpu_s": round(u.cpu_s, 2),
                "cpu_share_of_machine": round(u.cpu_s / capacity, 3),
                "peak_rss_mb": round(u.peak_rss_mb, 1),
                "processes": u.processes,
            }
            for name, u in sorted(self.usage.items(), key=lambda kv: -kv[1].cpu_s)
        }


def _snapshot() -> list[tuple[int, tuple[str, int]]]:
    found = []
    for entry in Path("/proc").iterdir() if Path("/proc").is_dir() else ():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        try:
            cmdline = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        group = classify(pid, [c.decode(errors="replace") for c in cmdline if c])
        if group is None:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        found.append((pid, (group, int(fields[11]) + int(fields[12]))))  # utime + stime
    return found


def _rss_mb(pid: int) -> float:
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * _PAGE / 2**20
