#!/usr/bin/env bash
# Run the four services in the background (for `make demo`), one log file each.
#   ORCHESTRATOR_SPLIT=1 scripts/services.sh start: the orchestrator's two roles as two processes
#   scripts/services.sh start|stop|status
# Logs: .infra/logs/services/<service>.log   pids: .infra/run/services/<service>.pid
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LOGS="$ROOT/.infra/logs/services"
PIDS="$ROOT/.infra/run/services"
# ORCHESTRATOR_SPLIT=1: the orchestrator as two processes, its API role (order API, admin,
# console) and its engine role (replies, timeouts, retries) on ORCHESTRATOR_ENGINE_HTTP_PORT.
# Off by default: on a 2-core machine the split costs CPU and buys no latency (README,
# "The orchestrator's two roles").
ALL=(orchestrator orchestrator-engine inventory payment notification)
if [[ "${ORCHESTRATOR_SPLIT:-0}" == 1 ]]; then
  SERVICES=("${ALL[@]}")
else
  SERVICES=(orchestrator inventory payment notification)
fi
# The ports the services themselves take from <SERVICE>_HTTP_PORT (defaults 8000-8004).
declare -A PORTS=(
  [orchestrator]="${ORCHESTRATOR_HTTP_PORT:-8000}" [inventory]="${INVENTORY_HTTP_PORT:-8001}"
  [payment]="${PAYMENT_HTTP_PORT:-8002}" [notification]="${NOTIFICATION_HTTP_PORT:-8003}"
  [orchestrator-engine]="${ORCHESTRATOR_ENGINE_HTTP_PORT:-8004}"
)
# What runs each: python -m <module>, with this environment on top of the caller's.
declare -A MODULE=([orchestrator-engine]=orchestrator)
declare -A ENVIRONMENT=(
  [orchestrator-engine]="ORCHESTRATOR_ROLES=engine ORCHESTRATOR_HTTP_PORT=${PORTS[orchestrator-engine]}"
)
if [[ "${ORCHESTRATOR_SPLIT:-0}" == 1 ]]; then ENVIRONMENT[orchestrator]="ORCHESTRATOR_ROLES=api"; fi

running() { [[ -f "$PIDS/$1.pid" ]] && kill -0 "$(cat "$PIDS/$1.pid")" 2>/dev/null; }

ready() { curl -fsS -o /dev/null "http://127.0.0.1:${PORTS[$1]}/readyz" 2>/dev/null; }

start() {
  mkdir -p "$LOGS" "$PIDS"
  for s in "${SERVICES[@]}"; do
    if running "$s"; then echo "  $s already running (pid $(cat "$PIDS/$s.pid"))"; continue; fi
    # shellcheck disable=SC2086  # ENVIRONMENT entries are NAME=value words
    (cd "$ROOT" && exec env ${ENVIRONMENT[$s]:-} setsid "$ROOT/.venv/bin/python" -m "${MODULE[$s]:-$s}" \
      >>"$LOGS/$s.log" 2>&1) &
    echo $! >"$PIDS/$s.pid"
    echo "  $s started (pid $!, log .infra/logs/services/$s.log)"
  done
  local deadline=$((SECONDS + 60))
  for s in "${SERVICES[@]}"; do
    until ready "$s"; do
      if ! running "$s"; then echo "ERROR: $s exited; last log lines:" >&2; tail -20 "$LOGS/$s.log" >&2; exit 1; fi
      if ((SECONDS > deadline)); then echo "ERROR: $s not ready after 60s (see $LOGS/$s.log)" >&2; exit 1; fi
      sleep 0.3
    done
    echo "  $s ready on http://127.0.0.1:${PORTS[$s]}"
  done
}

stop() {
  for s in "${ALL[@]}"; do
    if running "$s"; then
      local pid; pid="$(cat "$PIDS/$s.pid")"
      kill -TERM "$pid"
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      if kill -0 "$pid" 2>/dev/null; then echo "  $s ignored SIGTERM for 10s: killing"; kill -KILL "$pid"; fi
      echo "  $s stopped"
    fi
    rm -f "$PIDS/$s.pid"
  done
}

status() {
  local all=0
  for s in "${ALL[@]}"; do
    if [[ ! " ${SERVICES[*]} " =~ " $s " ]] && ! running "$s"; then continue; fi # not started here
    if running "$s"; then
      if ready "$s"; then state="ready"; else state="running, NOT ready"; all=1; fi
      printf '  %-19s %-20s pid %-7s http://127.0.0.1:%s\n' "$s" "$state" "$(cat "$PIDS/$s.pid")" "${PORTS[$s]}"
    else
      printf '  %-19s %s\n' "$s" "stopped"; all=1
    fi
  done
  return $all
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
