"""Fixtures of the deployment checks: a pinned helm (built on first use) and the rendered chart."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "saga-shop"
TEST_VALUES = CHART / "ci" / "test-values.yaml"

Manifest = dict[str, Any]


@pytest.fixture(scope="session")
def helm() -> Path:
    """The pinned helm in .infra/bin: built with `go install` the first time, then reused."""
    done = subprocess.run(
        [str(ROOT / "scripts" / "deploy" / "install-helm.sh")],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, f"cannot install helm:\n{done.stderr}"
    return Path(done.stdout.strip())


@pytest.fixture(scope="session")
def helm_template(helm: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """`helm template` of the chart with the test values (unless told) and ``--set`` pairs."""

    def run(*sets: str, values: Path | None = TEST_VALUES) -> subprocess.CompletedProcess[str]:
        args = [str(helm), "template", "shop", str(CHART), "--namespace", "shop"]
        if values is not None:
            args += ["-f", str(values)]
        for pair in sets:
            args += ["--set", pair]
        return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)

    return run


@pytest.fixture(scope="session")
def render(
    helm_template: Callable[..., subprocess.CompletedProcess[str]],
) -> Callable[..., list[Manifest]]:
    """The manifests `helm template` renders (it must succeed)."""

    def run(*sets: str, values: Path | None = TEST_VALUES) -> list[Manifest]:
        done = helm_template(*sets, values=values)
        assert done.returncode == 0, done.stderr
        return [doc for doc in yaml.safe_load_all(done.stdout) if doc]

    return run


@pytest.fixture(scope="session")
def manifests(render: Callable[..., list[Manifest]]) -> list[Manifest]:
    return render()


@pytest.fixture(scope="session")
def chart_values() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(TEST_VALUES.read_text())
    return loaded
