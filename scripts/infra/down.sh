#!/usr/bin/env bash
# Stop the local infrastructure (reverse start order). Keeps data by default.
#   scripts/infra/down.sh [--purge] [component...]   (default: all)
# --purge deletes the stopped components' data (all of .infra/data when no
# component is named); installed binaries and jars are kept.
set -euo pipefail

LOG_TAG=down
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

as_pg() {
  if ((EUID == 0)); then runuser -u postgres -- "$@"; else "$@"; fi
}

# stop_component NAME: graceful stop, escalating to SIGKILL only after a deadline.
stop_component() {
  local name="$1" pid timeout_s=30
  pid="$(component_pid "$name")"
  if [[ -z "$pid" ]]; then
    log "$name: already down"
    [[ "$name" == postgres ]] || rm -f "$(pidfile "$name")"
    return 0
  fi
  local t0
  t0="$(now_ms)"
  case "$name" in
    postgres)
      # Fast mode: roll back open transactions instead of waiting for clients.
      as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w -t 60 stop >/dev/null 2>&1 ||
        kill -INT "$pid" 2>/dev/null || true
      ;;
    kafka)
      # SIGTERM triggers a controlled shutdown that flushes logs and writes a
      # clean-shutdown marker, so the next start skips log recovery.
      timeout_s=120
      kill -TERM "$pid" 2>/dev/null || true
      ;;
    *)
      # Redis runs with --save '': SIGTERM exits without writing a snapshot,
      # the same as SHUTDOWN NOSAVE, and needs no redis-cli.
      kill -TERM "$pid" 2>/dev/null || true
      ;;
  esac
  if ! wait_for_exit "$pid" "$timeout_s"; then
    warn "$name: pid $pid still running after ${timeout_s}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_for_exit "$pid" 10 || die "$name: pid $pid survived SIGKILL"
  fi
  [[ "$name" == postgres ]] || rm -f "$(pidfile "$name")"
  log "$name: stopped (pid $pid) in $(fmt_ms $(($(now_ms) - t0)))"
}

purge_component() {
  case "$1" in
    postgres) rm -rf "$PGDATA_DIR" ;;
    redis) rm -rf "$DATA_DIR/redis" ;;
    kafka) rm -rf "$DATA_DIR/kafka" "$DATA_DIR/kafka-cluster-id" "$RUN_DIR/kafka-topics.stamp" ;;
    smtp) rm -rf "$DATA_DIR/mail" ;;
    stripe-mock) ;; # stateless
  esac
}

main() {
  local purge=0 arg
  local -a comps=()
  for arg in "$@"; do
    case "$arg" in
      --purge) purge=1 ;;
      -h | --help)
        sed -n '2,5s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
        return 0
        ;;
      *)
        is_component "$arg" || die "unknown component '$arg' (known: ${ALL_COMPONENTS[*]})"
        comps+=("$arg")
        ;;
    esac
  done
  local all=0
  if ((${#comps[@]} == 0)); then
    all=1
    comps=("${ALL_COMPONENTS[@]}")
  fi
  take_lock

  local i c
  for ((i = ${#comps[@]} - 1; i >= 0; i--)); do
    stop_component "${comps[i]}"
  done

  if ((purge)); then
    if ((all)); then
      log "purging $DATA_DIR"
      rm -rf "$DATA_DIR" "$RUN_DIR/kafka-topics.stamp"
    else
      for c in "${comps[@]}"; do
        log "purging $c data"
        purge_component "$c"
      done
    fi
  fi
}

main "$@"
