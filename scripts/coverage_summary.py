"""Prints the line coverage of each workspace package from the data `make test` collected.

Run after `pytest --cov=...` (see the Makefile's `test`): one line per package (statements,
covered, percent) and the total. Unimported modules count as not covered. Measures the test
process only: the services started as processes by the e2e and fault tests are not measured.
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import coverage

PACKAGES = ("sagakit", "sagaops", "orchestrator", "inventory", "payment", "notification")


def package_of(path: str) -> str | None:
    parts = Path(path).parts
    for i, part in enumerate(parts[:-1]):
        if part == "src" and parts[i + 1] in PACKAGES:
            return parts[i + 1]
    return None


def main() -> int:
    if not Path(".coverage").exists():
        print("coverage: no data (.coverage); run make test first", file=sys.stderr)
        return 1
    cov = coverage.Coverage()
    cov.load()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "coverage.json"
        cov.json_report(outfile=str(out), ignore_errors=True)
        files = json.loads(out.read_text())["files"]
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for path, data in files.items():
        package = package_of(path)
        if package is None:
            continue
        totals[package][0] += data["summary"]["num_statements"]
        totals[package][1] += data["summary"]["covered_lines"]
    print("\ncoverage per package (lines, test process only)")
    print(f"  {'package':<14}{'statements':>11}{'covered':>9}{'percent':>9}")
    all_statements = all_covered = 0
    for package in PACKAGES:
        statements, covered = totals.get(package, [0, 0])
        all_statements += statements
        all_covered += covered
        print(f"  {package:<14}{statements:>11}{covered:>9}{_percent(covered, statements):>9}")
    print(
        f"  {'total':<14}{all_statements:>11}{all_covered:>9}{_percent(all_covered, all_statements):>9}"
    )
    return 0


def _percent(covered: int, statements: int) -> str:
    return f"{100 * covered / statements:.1f}%" if statements else "-"


if __name__ == "__main__":
    sys.exit(main())
