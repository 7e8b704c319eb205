"""Run a service as a real process (``python -m <service>``) for end-to-end tests."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from sagakit.testing.waiting import eventually

# Below Linux's ephemeral range (32768-60999): a port the kernel hands out for bind(0) is one it
# may also give any outgoing connection as its source port before the service binds it (seen:
# a payment process failing with "address already in use").
_PORTS = range(20_000, 32_000)


def free_port() -> int:
    """A port nothing listens on now, outside the range outgoing connections take theirs from."""
    for _ in range(200):
        port = random.choice(_PORTS)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {_PORTS}")


@dataclass
class ServiceProcess:
    name: str
    env: dict[str, str]
    log_path: Path
    port: int = field(default_factory=free_port)
    process: asyncio.subprocess.Process | None = None
    # What runs it (``python -m <module>``) when the name is not the module's: a second
    # process of one service in another role ("orchestrator-engine").
    module: str | None = None

    @property
    def program(self) -> str:
        return self.module or self.name

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        env = {**os.environ, **self.env, f"{self.program.upper()}_HTTP_PORT": str(self.port)}
        log = self.log_path.open("ab")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", self.program, env=env, stdout=log, stderr=log
        )
        log.close()

    async def status(self, path: str) -> int:
        try:
            async with httpx.AsyncClient(timeout=2) as client:
                return (await client.get(self.base_url + path)).status_code
        except httpx.HTTPError:
            return 0

    async def wait_ready(self, timeout: float = 90.0) -> None:
        async def ready() -> bool:
            if self.process is not None and self.process.returncode is not None:
                raise AssertionError(f"{self.name} exited: {self.tail()}")
            return await self.status("/readyz") == 200

        await eventually(ready, timeout=timeout, interval=0.2, what=f"{self.name} ready")

    async def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM and wait, for tests that take a service away on purpose."""
        await self.terminate(timeout)

    async def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM, then wait; returns the exit code (SIGKILL and fail past the timeout)."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), timeout=timeout)
        except TimeoutError:
            self.kill()
            await self.process.wait()
            raise AssertionError(
                f"{self.name} ignored SIGTERM for {timeout}s: {self.tail()}"
            ) from None

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text().splitlines()[-lines:])
        except OSError:
            return "<no log>"
