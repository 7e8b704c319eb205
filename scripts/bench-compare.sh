#!/usr/bin/env bash
# Is a change slower? Runs the open-loop benchmark alternately against two commits' stacks,
# each a fresh clone of that commit with its own infrastructure on its own ports (offsets
# BENCH_COMPARE_OFFSETS, default 500 and 600), started side by side so that the machine is the
# same for both; then prints medians and ratios (sagaops.bench_compare). The bench tool of
# this checkout measures both. Usage: scripts/bench-compare.sh BASE [HEAD]  (HEAD default: HEAD)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
base=${1:?usage: bench-compare.sh BASE [HEAD]}
head=${2:-HEAD}
rate=${BENCH_RATE:-150}
seconds=${BENCH_SECONDS:-60}
runs=${BENCH_RUNS:-3}
# A fresh stack's first minute of load is slower (the Kafka JVM compiles its hot code: ~10 s of
# extra CPU); a warm-up loop per side, not counted, keeps that out of the comparison.
warmup=${BENCH_WARMUP_S:-30}
read -r offset_a offset_b <<<"${BENCH_COMPARE_OFFSETS:-500 600}"
work=$root/.bench-compare
mkdir -p "$work"

ports() { # the environment of a stack at port offset $1
  local k=$1 s
  export POSTGRES_PORT=$((5432 + k)) REDIS_PORT=$((6379 + k)) KAFKA_PORT=$((9092 + k))
  export KAFKA_CONTROLLER_PORT=$((9093 + k)) STRIPE_MOCK_PORT=$((12111 + k))
  export STRIPE_MOCK_HTTPS_PORT=$((12112 + k)) SMTP_PORT=$((1025 + k)) PROMETHEUS_PORT=$((9090 + k))
  export ORCHESTRATOR_HTTP_PORT=$((8000 + k)) INVENTORY_HTTP_PORT=$((8001 + k))
  export PAYMENT_HTTP_PORT=$((8002 + k)) NOTIFICATION_HTTP_PORT=$((8003 + k))
  export ORCHESTRATOR_ENGINE_HTTP_PORT=$((8004 + k))
  export KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:$KAFKA_PORT REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
  export STRIPE_API_BASE=http://127.0.0.1:$STRIPE_MOCK_PORT
  for s in orchestrator inventory payment notification; do
    export "${s^^}_DATABASE_URL=postgresql+asyncpg://$s:$s@127.0.0.1:$POSTGRES_PORT/$s"
  done
  unset OTEL_EXPORTER_OTLP_ENDPOINT # tracing off on both sides
}

side() { # side NAME COMMIT OFFSET: a fresh clone of COMMIT with its stack up
  local dir=$work/$1
  rm -rf "$dir"
  git clone --quiet --no-checkout "$root" "$dir"
  git -C "$dir" checkout --quiet "$(git rev-parse "$2")"
  (ports "$3" && cd "$dir" && make demo >"$work/$1-demo.log" 2>&1) ||
    { echo "bench-compare: $1 ($2) did not start, see $work/$1-demo.log" >&2; exit 1; }
}

stop() { # stop NAME OFFSET: that side's services and infrastructure, if it has any
  [ -d "$work/$1/.infra" ] || return 0
  (ports "$2" && cd "$work/$1" && make down >"$work/$1-down.log" 2>&1) ||
    echo "bench-compare: stopping side $1 failed, see $work/$1-down.log" >&2
}
down() { stop a "$offset_a"; stop b "$offset_b"; }
trap down EXIT

echo "bench-compare: A = $base, B = $head, open loop $rate/s for $seconds s, $runs runs each"
side a "$base" "$offset_a"
side b "$head" "$offset_b"
files_a=() files_b=()
bench() { # bench NAME OFFSET RUN: one open loop against that side; prints its JSON's path
  echo "  run $3, side $1" >&2
  (ports "$2" && cd "$work/$1" &&
    "$root/.venv/bin/saga-bench" --via http --rate "$rate" --seconds "$seconds" >"$work/$1-$3.log" 2>&1) ||
    { echo "bench-compare: run $3 of side $1 failed, see $work/$1-$3.log" >&2; exit 1; }
  ls -t "$work/$1"/bench-results/*.json | head -1
}
if [ "$warmup" != 0 ]; then
  for side_offset in "a $offset_a" "b $offset_b"; do
    read -r name offset <<<"$side_offset"
    echo "  warm-up, side $name ($warmup s, not counted)" >&2
    (ports "$offset" && cd "$work/$name" &&
      "$root/.venv/bin/saga-bench" --via http --rate "$rate" --seconds "$warmup" \
        --out "$work/$name-warmup" >"$work/$name-warmup.log" 2>&1) ||
      { echo "bench-compare: warm-up of side $name failed, see $work/$name-warmup.log" >&2; exit 1; }
  done
fi
for i in $(seq 1 "$runs"); do
  files_a+=("$(bench a "$offset_a" "$i")")
  files_b+=("$(bench b "$offset_b" "$i")")
done
"$root/.venv/bin/saga-bench-compare" --names "$base,$head" --a "${files_a[@]}" --b "${files_b[@]}"
