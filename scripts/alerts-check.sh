#!/usr/bin/env bash
# The Prometheus config and alert rules of deploy/prometheus/ are valid, and every alert fires
# when it should (promtool test rules alerts.test.yml). promtool comes with Debian's
# "prometheus" package, installed here when missing (as root; once). Run by make test and lint.
set -euo pipefail

LOG_TAG=alerts
# shellcheck source-path=SCRIPTDIR source=infra/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/infra/lib.sh"

if ! command -v promtool >/dev/null 2>&1; then
  mkdir -p "$LOG_DIR"
  apt_install "$LOG_DIR/prometheus-install.log" prometheus
fi
cd "$ROOT/deploy/prometheus"
promtool check config prometheus.yml >/dev/null # and the rule files it names
promtool test rules alerts.test.yml

# The Grafana dashboard's queries parse too: each becomes a recording rule for promtool.
queries="$(mktemp --suffix=.json)"
trap 'rm -f "$queries"' EXIT
python3 - "$ROOT"/deploy/grafana/*.json >"$queries" <<'PY'
import json, sys
exprs = [t["expr"] for path in sys.argv[1:] for p in json.load(open(path))["panels"]
         for t in p.get("targets", [])]
rules = [{"record": f"dashboard:query_{i}", "expr": e} for i, e in enumerate(exprs)]
print(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))
PY
promtool check rules "$queries" >/dev/null
echo "  dashboard queries: valid PromQL"
