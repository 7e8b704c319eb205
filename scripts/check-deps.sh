#!/usr/bin/env bash
# deptry on every workspace package: the code it ships (src/, and migrations/ for a service)
# imports exactly what its own pyproject.toml declares (nothing missing, nothing only
# transitive, nothing unused). Tests are left out: they run with the workspace's dev group.
# Used by `make lint` and the pre-commit hook. DEPTRY: the deptry to run (default: on PATH,
# else .venv/bin/deptry).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
DEPTRY="${DEPTRY:-$(command -v deptry || echo "$ROOT/.venv/bin/deptry")}"
PACKAGES=(libs/sagakit libs/sagaops services/orchestrator services/inventory services/payment
  services/notification)
failed=()
for pkg in "${PACKAGES[@]}"; do
  dirs=(src)
  [[ -d "$ROOT/$pkg/migrations" ]] && dirs+=(migrations)
  if ! out="$(cd "$ROOT/$pkg" && "$DEPTRY" --no-ansi "${dirs[@]}" 2>&1)"; then
    echo "deptry: $pkg"
    echo "$out" | grep -v '^Scanning\|^$\|For more information'
    failed+=("$pkg")
  fi
done
if ((${#failed[@]})); then
  echo "deptry: undeclared or unused dependencies in ${failed[*]}" >&2
  exit 1
fi
echo "deptry: ${#PACKAGES[@]} packages declare exactly what they import"
