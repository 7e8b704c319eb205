"""CPU seconds and peak memory of the system's processes during a run, read from /proc.

Every process of the machine that belongs to the system is grouped under a name: each service
(``python -m <service>``, all its replicas together), Kafka, PostgreSQL (every backend), Redis,
the SMTP server, stripe-mock, and the load generator itself. Only processes working under the
project's directory count (PostgreSQL backends run in their data directory, the services and
the other servers where the scripts started them): another checkout's stack on the same machine
is not ours. Linux only; elsewhere it reports nothing rather than failing the run.
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
    root: Path = field(default_factory=Path.cwd)  # the project's directory: whose stack to count
    usage: dict[str, Usage] = field(default_factory=dict)
    _start_ticks: dict[int, tuple[str, int]] = field(default_factory=dict)
    _last_ticks: dict[int, tuple[str, int]] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None
    wall_s: float = 0.0

    machine_busy_s: float = 0.0  # every process of the machine, ours or not

    def start(self) -> None:
        self._machine_start = _machine_busy_ticks()
        self._start_ticks = dict(_snapshot(self.root))
        self._last_ticks = dict(self._start_ticks)
        self._started = asyncio.get_running_loop().time()
        self._task = asyncio.create_task(self._sample())

    async def stop(self) -> dict[str, Usage]:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._record(_snapshot(self.root))
        self.wall_s = asyncio.get_running_loop().time() - self._started
        self.machine_busy_s = (_machine_busy_ticks() - self._machine_start) / _TICKS
        for pid, (group, ticks) in self._last_ticks.items():
            first = self._start_ticks.get(pid, (group, 0))[1]  # started during the run: from 0
            usage = self.usage.setdefault(group, Usage())
            usage.cpu_s += (ticks - first) / _TICKS
            usage.processes += 1
        return self.usage

    async def _sample(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            self._record(_snapshot(self.root))

    def _record(self, snapshot: list[tuple[int, tuple[str, int]]]) -> None:
        for pid, (group, ticks) in snapshot:
            self._last_ticks[pid] = (group, ticks)
            rss = _rss_mb(pid)
            usage = self.usage.setdefault(group, Usage())
            usage.peak_rss_mb = max(usage.peak_rss_mb, rss)

    def report(self) -> dict[str, dict[str, float]]:
        """Per group; "elsewhere" is what the rest of the machine used meanwhile (another
        session, a build): a run with much of it measured a shared machine."""
        cores = os.cpu_count() or 1
        capacity = max(self.wall_s * cores, 1e-9)
        groups = sorted(self.usage.items(), key=lambda kv: -kv[1].cpu_s)
        ours = sum(u.cpu_s for _, u in groups)
        if self.machine_busy_s:
            groups.append(("elsewhere", Usage(cpu_s=max(self.machine_busy_s - ours, 0.0))))
        return {
            name: {
                "cpu_s": round(u.cpu_s, 2),
                "cpu_share_of_machine": round(u.cpu_s / capacity, 3),
                "peak_rss_mb": round(u.peak_rss_mb, 1),
                "processes": u.processes,
            }
            for name, u in groups
        }


def _snapshot(root: Path) -> list[tuple[int, tuple[str, int]]]:
    found = []
    root = root.resolve()
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
        if group is None or not (group == "load generator" or _works_under(pid, root)):
            continue
        fields = stat.rsplit(")", 1)[1].split()
        found.append((pid, (group, int(fields[11]) + int(fields[12]))))  # utime + stime
    return found


def _machine_busy_ticks() -> int:
    """Non-idle CPU ticks of the whole machine since boot (user..steal of /proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return 0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return user + nice + system + irq + softirq + steal


def _works_under(pid: int, root: Path) -> bool:
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd")).is_relative_to(root)
    except OSError:
        return False


def _rss_mb(pid: int) -> float:
    try:
        pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0
    return pages * _PAGE / 2**20
