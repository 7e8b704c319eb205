#!/usr/bin/env bash
# One line per component: state, pid, port. Exit 0 only if all are up.
#   scripts/infra/status.sh [component...]   (default: all)
# "kafka" is one line per node of the running cluster (or of KAFKA_BROKERS if none runs).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

main() {
  local -a comps=("$@") lines=()
  ((${#comps[@]})) || comps=("${ALL_COMPONENTS[@]}")
  local c i n pid port state rc=0
  for c in "${comps[@]}"; do
    is_component "$c" || die "unknown component '$c' (known: ${ALL_COMPONENTS[*]} kafka-<i>)"
    if [[ "$c" == kafka ]]; then
      n="$(kafka_count)"
      for ((i = 1; i <= n; i++)); do lines+=("kafka-$i"); done
    else
      lines+=("$c")
    fi
  done
  for c in "${lines[@]}"; do
    pid="$(component_pid "$c")"
    port="$(component_port "$c")"
    if [[ -n "$pid" ]] && port_open "$port"; then
      state="up"
    elif [[ -n "$pid" ]]; then
      state="down (process alive, port not answering: starting or stuck)"
      rc=1
    elif port_open "$port"; then
      state="down (port taken by a process not started by these scripts)"
      rc=1
    else
      state="down"
      rc=1
    fi
    printf '%-12s pid=%-8s port=%-6s %s\n' "$c" "${pid:--}" "$port" "$state"
  done
  return "$rc"
}

main "$@"
