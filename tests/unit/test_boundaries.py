"""What ships in the services holds no test support: their code (and sagakit outside its
``testing`` extra) imports no test framework and not ``sagakit.testing``. (That payment's
migrations create none of the simulated Stripe's tables: services/payment/tests/integration/
test_schema_boundaries.py.)"""

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = [
    ROOT / "services" / s / d
    for s in ("orchestrator", "inventory", "payment", "notification")
    for d in ("src", "migrations")
]
SAGAKIT = ROOT / "libs" / "sagakit" / "src" / "sagakit"
TEST_ONLY = (
    "sagakit.testing",
    "pytest",
    "pytest_asyncio",
    "hypothesis",
    "testcontainers",
    "aiosmtpd",
)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _shipped_files() -> list[Path]:
    files = [f for d in SHIPPED for f in d.rglob("*.py")]
    files += [f for f in SAGAKIT.rglob("*.py") if "testing" not in f.relative_to(SAGAKIT).parts]
    return files


def test_shipped_code_imports_no_test_support() -> None:
    offenders = {
        f"{path.relative_to(ROOT)}: {name}"
        for path in _shipped_files()
        for name in _imports(path)
        if any(name == t or name.startswith(f"{t}.") for t in TEST_ONLY)
    }
    assert not offenders
