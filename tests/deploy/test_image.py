"""The Dockerfile and its helpers agree with the repository: every service is installed and
migrated, the image runs as a non-root user, and the build context leaves local files out.
(hadolint lints the Dockerfile itself, in `make lint`.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
SERVICES = sorted(p.parent.name for p in (ROOT / "services").glob("*/alembic.ini"))


def test_the_four_services_have_migrations() -> None:
    assert SERVICES == ["inventory", "notification", "orchestrator", "payment"]


def test_every_service_is_installed_and_its_migrations_copied_into_the_image() -> None:
    for service in SERVICES:
        assert f"--package {service}" in DOCKERFILE
        assert f"COPY services/{service}/pyproject.toml" in DOCKERFILE
    [loop] = re.findall(r"for s in ([a-z ]+); do", DOCKERFILE)
    assert sorted(loop.split()) == SERVICES


def test_migrate_applies_every_service() -> None:
    script = (ROOT / "scripts" / "migrate.sh").read_text()
    [default] = re.findall(r"services=\(([a-z ]+)\)", script)
    assert sorted(default.split()) == SERVICES


def test_the_runtime_stage_runs_unprivileged_on_every_interface() -> None:
    runtime = DOCKERFILE.split(" AS runtime", 1)[1]
    assert re.search(r"^USER 10001:10001$", runtime, re.MULTILINE)
    assert "HTTP_HOST=0.0.0.0" in runtime
    # Exec form: python is PID 1 and receives SIGTERM itself.
    assert re.search(r'^CMD \["python", "-m", "orchestrator"\]$', runtime, re.MULTILINE)


def test_the_build_context_is_an_allow_list() -> None:
    lines = [
        line
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    # Everything is excluded first, so .env, .git, .venv and .infra can never slip in.
    assert lines[0] == "**"
    assert not any(".env" in line for line in lines if line.startswith("!"))
