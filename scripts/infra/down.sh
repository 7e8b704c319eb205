#!/usr/bin/env bash
# Stop the local infrastructure (reverse start order). Keeps data by default.
#   scripts/infra/down.sh [--purge] [--kill] [component...]   (default: all)
# "kafka" is every running Kafka node, whatever KAFKA_BROKERS says; "kafka-<i>" is one node.
# --purge deletes the stopped components' data (all of .infra/data when no component is
# named); installed binaries and jars are kept. --kill sends SIGKILL at once, no graceful
# stop: a crash, for failure tests (scripts/infra/up.sh <component> starts it again).
# Only processes recorded in this checkout's .infra/run (or Postgres's own pidfile in
# .infra/data) are ever signalled, never a process found by name.
set -euo pipefail

LOG_TAG=down
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

KILL=0

as_pg() {
  if ((EUID == 0)); then runuser -u postgres -- "$@"; else "$@"; fi
}

forget_pid() {
  case "$1" in
    postgres) ;; # Postgres removes its own pidfile
    kafka-1) rm -f "$(pidfile kafka-1)" "$(pidfile kafka)" ;;
    *) rm -f "$(pidfile "$1")" ;;
  esac
}

# signal_component NAME: starts the stop (graceful unless --kill); echoes the pid signalled.
signal_component() {
  local name="$1" pid
  pid="$(component_pid "$name")"
  [[ -n "$pid" ]] || return 0
  if ((KILL)); then
    kill -KILL "$pid" 2>/dev/null || true
  else
    case "$name" in
      postgres)
        # Fast mode: roll back open transactions instead of waiting for clients.
        as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w -t 60 stop >/dev/null 2>&1 ||
          kill -INT "$pid" 2>/dev/null || true
        ;;
      *)
        # Kafka: SIGTERM is a controlled shutdown (leadership handed over, logs flushed, a
        # clean-shutdown marker so the next start skips recovery). Redis runs with --save '':
        # SIGTERM exits without a snapshot, the same as SHUTDOWN NOSAVE, and needs no redis-cli.
        kill -TERM "$pid" 2>/dev/null || true
        ;;
    esac
  fi
  echo "$pid"
}

# await_stop NAME PID T0: waits for the exit, escalating to SIGKILL only after a deadline.
await_stop() {
  local name="$1" pid="$2" t0="$3" timeout_s=30 how=stopped
  ((KILL)) && how=killed
  [[ "$name" == kafka* ]] && timeout_s=120
  if ! wait_for_exit "$pid" "$timeout_s"; then
    warn "$name: pid $pid still running after ${timeout_s}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_for_exit "$pid" 10 || die "$name: pid $pid survived SIGKILL"
  fi
  forget_pid "$name"
  log "$name: $how (pid $pid) in $(fmt_ms $(($(now_ms) - t0)))"
}

# stop_components NAME...: signals them all, then waits for each. Kafka nodes must stop
# together: one by one, the last nodes would wait for a controller quorum that has gone.
stop_components() {
  local name pid t0
  local -a names=() pids=()
  t0="$(now_ms)"
  for name in "$@"; do
    pid="$(signal_component "$name")"
    if [[ -z "$pid" ]]; then
      log "$name: already down"
      forget_pid "$name"
      continue
    fi
    names+=("$name")
    pids+=("$pid")
  done
  local i
  for i in "${!names[@]}"; do await_stop "${names[i]}" "${pids[i]}" "$t0"; done
}

# kafka_nodes: every node with a pidfile here (any cluster size, and a pre-cluster kafka.pid),
# plus those of the configured layout.
kafka_nodes() {
  local f i n
  local -A nodes=()
  n="$(kafka_count)"
  for ((i = 1; i <= n; i++)); do nodes[$i]=1; done
  for f in "$RUN_DIR"/kafka-[1-9].pid; do
    [[ -e "$f" ]] || continue
    f="${f##*/kafka-}"
    nodes[${f%.pid}]=1
  done
  [[ -e "$(pidfile kafka)" ]] && nodes[1]=1
  for i in $(printf '%s\n' "${!nodes[@]}" | sort -n); do echo "kafka-$i"; done
}

purge_component() {
  case "$1" in
    postgres) rm -rf "$PGDATA_DIR" ;;
    redis) rm -rf "$DATA_DIR/redis" ;;
    kafka)
      rm -rf "$DATA_DIR/kafka" "$DATA_DIR"/kafka-*-brokers "$DATA_DIR/kafka-cluster-id" \
        "$RUN_DIR/kafka-topics.stamp"
      ;;
    kafka-*) die "--purge takes the whole cluster ('kafka'), not one node" ;;
    smtp) rm -rf "$DATA_DIR/mail" ;;
    prometheus) rm -rf "$DATA_DIR/prometheus" ;;
    stripe-mock | jaeger) ;; # stateless (Jaeger keeps traces in memory)
  esac
}

main() {
  local purge=0 arg
  local -a comps=()
  for arg in "$@"; do
    case "$arg" in
      --purge) purge=1 ;;
      --kill) KILL=1 ;;
      -h | --help)
        sed -n '2,10s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
        return 0
        ;;
      *)
        is_component "$arg" || die "unknown component '$arg' (known: ${ALL_COMPONENTS[*]} kafka-<i>)"
        comps+=("$arg")
        ;;
    esac
  done
  local all=0
  if ((${#comps[@]} == 0)); then
    all=1
    comps=("${ALL_COMPONENTS[@]}")
    for c in "${OPTIONAL_COMPONENTS[@]}"; do # stopped whenever they run
      if [[ " ${comps[*]} " != *" $c "* ]] && [[ -n "$(component_pid "$c")" ]]; then comps+=("$c"); fi
    done
  fi
  take_lock

  local i c
  local -a nodes
  for ((i = ${#comps[@]} - 1; i >= 0; i--)); do
    if [[ "${comps[i]}" == kafka ]]; then
      mapfile -t nodes < <(kafka_nodes)
      stop_components "${nodes[@]}"
    else
      stop_components "${comps[i]}"
    fi
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
