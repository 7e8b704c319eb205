"""The project's SMTP server for tests: where it listens and the folder it stores mail in.

Natively ``make infra-up`` runs ``scripts/infra/smtp_server.py`` on port 1025; with
Testcontainers the tests start the same script themselves (``smtp_server_process``), so its test
rules (``reject`` -> 550, ``tempfail`` -> 451 twice) hold on both paths.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sagakit.testing.processes import free_port

# libs/sagakit/src/sagakit/testing/smtp.py -> the repository (tests run from the workspace).
REPO_ROOT = Path(__file__).resolve().parents[5]
SCRIPT = REPO_ROOT / "scripts" / "infra" / "smtp_server.py"


@dataclass(frozen=True)
class SmtpServer:
    host: str
    port: int
    # One ``.eml`` file per accepted message (written under a temporary name, then renamed).
    mail_dir: Path


def local_mail_dir() -> Path:
    """Where the server of ``make infra-up`` stores mail."""
    return REPO_ROOT / ".infra" / "data" / "mail"


@contextlib.contextmanager
def smtp_server_process(startup_timeout_s: float = 15.0) -> Iterator[SmtpServer]:
    """Run ``scripts/infra/smtp_server.py`` on a free port with a fresh mail folder."""
    if not SCRIPT.is_file():
        raise RuntimeError(f"the SMTP server script is missing: {SCRIPT}")
    with tempfile.TemporaryDirectory(prefix="saga-smtp-") as tmp:
        server = SmtpServer("127.0.0.1", free_port(), Path(tmp) / "mail")
        log_path = Path(tmp) / "smtp_server.log"
        # A log file, not a pipe: nobody reads a pipe while tests run, and a full one would
        # block the server.
        command = [sys.executable, str(SCRIPT), "--host", server.host]
        command += ["--port", str(server.port), "--mail-dir", str(server.mail_dir)]
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_until_listening(server, process, log_path, startup_timeout_s)
            yield server
        finally:
            process.terminate()  # SIGTERM: the server closes and exits within 5 s
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_until_listening(
    server: SmtpServer, process: subprocess.Popen[bytes], log_path: Path, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(
                f"the SMTP server exited ({process.returncode}): {log_path.read_text()[-2000:]}"
            )
        with (
            contextlib.suppress(OSError),
            socket.create_connection((server.host, server.port), timeout=1),
        ):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the SMTP server is not listening after {timeout_s}s")
        time.sleep(0.1)
