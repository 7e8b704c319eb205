"""A one-line progress bar for long-running commands (stderr, redrawn in place)."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, label: str, *, width: int = 30) -> None:
        self.total = max(total, 1)
        self.label = label
        self.width = width
        self._last = 0.0
        self._tty = sys.stderr.isatty()

    def update(self, done: int, extra: str = "", *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < (0.1 if self._tty else 2.0):
            return
        self._last = now
        filled = int(self.width * min(done, self.total) / self.total)
        bar = "#" * filled + "." * (self.width - filled)
        line = f"{self.label} [{bar}] {done}/{self.total} {extra}"
        sys.stderr.write(("\r" + line) if self._tty else (line + "\n"))
        sys.stderr.flush()

    def close(self) -> None:
        if self._tty:
            sys.stderr.write("\n")
