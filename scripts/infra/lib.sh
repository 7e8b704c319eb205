# shellcheck shell=bash disable=SC2034 # variables here are used by the sourcing scripts
# Common definitions for the local (Docker-free) infrastructure scripts.
# Sourced by up.sh, down.sh, status.sh and kafka.sh; not meant to be run.

# Everything is relative to the repo root so the scripts work from any cwd.
INFRA_SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$INFRA_SCRIPTS/../.." && pwd)"
INFRA_DIR="$ROOT/.infra"
DATA_DIR="$INFRA_DIR/data"
LOG_DIR="$INFRA_DIR/logs"
RUN_DIR="$INFRA_DIR/run"
TLS_DIR="$INFRA_DIR/tls" # a local CA and the brokers' certificate (test credentials)
BIN_DIR="$INFRA_DIR/bin"

# Pinned versions: bump deliberately, never float.
KAFKA_VERSION="3.9.1"
STRIPE_MOCK_VERSION="v0.203.0"
AIOSMTPD_VERSION="1.4.6" # only for the fallback venv when .venv lacks it
# The newest PostgreSQL server installed, else 15 (Debian 12's, installed with apt when missing).
PG_MAJOR="${PG_MAJOR:-$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -name postgres -path '*/bin/*' 2>/dev/null | sed -E 's|/usr/lib/postgresql/([0-9]+)/.*|\1|' | sort -n | tail -1)}"
PG_MAJOR="${PG_MAJOR:-15}"

POSTGRES_PORT="${POSTGRES_PORT:-5432}"
REDIS_PORT="${REDIS_PORT:-6379}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
# The SASL_PLAINTEXT listener of node i is KAFKA_SASL_PORT + i - 1 (default KAFKA_PORT + 20, so
# a port offset moves it too). Its one user is fixed: a local test credential, not a secret.
KAFKA_SASL_PORT="${KAFKA_SASL_PORT:-$((KAFKA_PORT + 20))}"
# The same login over TLS (SASL_SSL) on KAFKA_SASL_SSL_PORT + i - 1 (default KAFKA_PORT + 30),
# with a certificate of the local CA in .infra/tls (ca.pem: what a client trusts).
KAFKA_SASL_SSL_PORT="${KAFKA_SASL_SSL_PORT:-$((KAFKA_PORT + 30))}"
KAFKA_SASL_USERNAME_LOCAL="saga"
KAFKA_SASL_PASSWORD_LOCAL="saga-local-password"
# How many Kafka nodes (combined broker + controller). Empty: as many as are running, else 1.
KAFKA_BROKERS="${KAFKA_BROKERS:-}"
STRIPE_MOCK_PORT="${STRIPE_MOCK_PORT:-12111}"
STRIPE_MOCK_HTTPS_PORT="${STRIPE_MOCK_HTTPS_PORT:-12112}"
SMTP_PORT="${SMTP_PORT:-1025}"
PROMETHEUS_PORT="${PROMETHEUS_PORT:-9090}"
JAEGER_VERSION="v1.75.0"
JAEGER_OTLP_GRPC_PORT="${JAEGER_OTLP_GRPC_PORT:-4317}"
JAEGER_OTLP_HTTP_PORT="${JAEGER_OTLP_HTTP_PORT:-4318}"
JAEGER_UI_PORT="${JAEGER_UI_PORT:-16686}"
JAEGER_QUERY_GRPC_PORT="${JAEGER_QUERY_GRPC_PORT:-$((JAEGER_UI_PORT - 1))}"

PG_BIN="${PG_BIN:-/usr/lib/postgresql/$PG_MAJOR/bin}"
PGDATA_DIR="$DATA_DIR/postgres"
KAFKA_HOME="$INFRA_DIR/kafka"
KAFKA_LIBS="$KAFKA_HOME/libs-$KAFKA_VERSION"
KAFKA_CLASSES="$KAFKA_HOME/classes-$KAFKA_VERSION"

ALL_COMPONENTS=(postgres redis kafka stripe-mock smtp)
# Started only when named, or with INFRA_PROMETHEUS=1 / INFRA_JAEGER=1 (then part of "all");
# down.sh stops them whenever they run.
OPTIONAL_COMPONENTS=(prometheus jaeger)
if [[ "${INFRA_PROMETHEUS:-}" == 1 ]]; then ALL_COMPONENTS+=(prometheus); fi
if [[ "${INFRA_JAEGER:-}" == 1 ]]; then ALL_COMPONENTS+=(jaeger); fi
APT_UPDATED=0 # apt-get update at most once per run, and only if needed

# Timestamped log lines on stderr, so stdout stays usable for data.
log() { printf '%(%H:%M:%S)T [%s] %s\n' -1 "${LOG_TAG:-infra}" "$*" >&2; }
warn() { log "WARNING: $*"; }
die() {
  log "ERROR: $*"
  exit 1
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }
fmt_ms() { printf '%d.%02ds' $(($1 / 1000)) $(($1 % 1000 / 10)); }

# need_cmd CMD HINT: fail early with what to install instead of a cryptic error later.
need_cmd() {
  command -v "$1" >/dev/null 2>&1 || die "required command '$1' not found: $2"
}

# apt_install LOGFILE PACKAGE...
apt_install() {
  local logfile="$1"
  shift
  need_cmd apt-get "cannot install '$*' automatically: install it with your package manager"
  ((EUID == 0)) || die "installing '$*' needs root: sudo apt-get install --no-install-recommends $*"
  if ((APT_UPDATED == 0)); then
    log "apt-get update (output: $logfile)"
    apt-get update -qq >>"$logfile" 2>&1 || die "apt-get update failed"
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  # Debian packages start their own service on install (redis on 6379, a
  # postgres cluster on 5432), which would then squat our ports; a temporary
  # policy-rc.d returning 101 forbids that. An existing one is left alone.
  local policy=/usr/sbin/policy-rc.d created=0 rc=0
  if [[ ! -e "$policy" ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    created=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
    >>"$logfile" 2>&1 || rc=$?
  if ((created)); then rm -f "$policy"; fi
  ((rc == 0)) || die "apt-get install $* failed"
}

# Bash's /dev/tcp avoids depending on nc; loopback refusals come back immediately.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pidfile() { echo "$RUN_DIR/$1.pid"; }

read_pidfile() {
  local f="$1" pid=""
  if [[ -r "$f" ]]; then read -r pid <"$f" 2>/dev/null || true; fi
  [[ "$pid" =~ ^[0-9]+$ ]] && echo "$pid"
  return 0
}

# proc_running PID: alive and not a zombie. Our services are detached, so once
# they exit they wait as zombies until init reaps them, which some minimal inits
# (containers, microVMs) only do every second or two; kill -0 alone says "alive".
proc_running() {
  local st
  kill -0 "$1" 2>/dev/null || return 1
  st="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  st="${st##*) }" # skip "pid (comm) ": comm may contain spaces
  [[ "${st%% *}" != Z ]]
}

# pid_alive PID [PATTERN]: the pattern guards against a recycled pid from a stale
# pidfile belonging to an unrelated process.
pid_alive() {
  local pid="$1" pattern="${2:-}"
  [[ -n "$pid" ]] && proc_running "$pid" || return 1
  [[ -z "$pattern" ]] && return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$pattern"
}

# wait_for_port PORT TIMEOUT_S PID NAME: waits until PORT answers; fails fast if
# PID dies (no point in waiting out the deadline for a crashed process).
wait_for_port() {
  local port="$1" timeout_s="$2" pid="$3" name="$4"
  local deadline=$(($(date +%s) + timeout_s))
  until port_open "$port"; do
    if [[ -n "$pid" ]] && ! proc_running "$pid"; then
      log "$name (pid $pid) exited before port $port answered"
      return 1
    fi
    if (($(date +%s) >= deadline)); then
      log "$name: port $port not answering after ${timeout_s}s"
      return 1
    fi
    sleep 0.1
  done
}

# wait_for_exit PID TIMEOUT_S: true once PID is gone.
wait_for_exit() {
  local pid="$1" timeout_s="$2"
  local deadline=$(($(date +%s) + timeout_s))
  while proc_running "$pid"; do
    (($(date +%s) >= deadline)) && return 1
    sleep 0.1
  done
}

# rotate_log FILE: logs are appended across restarts; keep one old generation
# once a file passes 50 MB so a long-lived checkout does not fill the disk.
rotate_log() {
  local f="$1" size
  size="$(stat -c %s "$f" 2>/dev/null || echo 0)"
  if ((size > 50 * 1024 * 1024)); then mv -f "$f" "$f.1"; fi
}

# start_bg NAME LOGFILE CMD...: runs CMD detached in its own session (so a Ctrl-C
# or a job-control kill of the caller does not take the service down) and
# records its real pid: the child writes $$ itself, then execs CMD. Sets BG_PID
# (even if CMD already died, so callers notice a crash at once).
BG_PID=""
start_bg() {
  local name="$1" logfile="$2"
  shift 2
  local pf
  pf="$(pidfile "$name")"
  rm -f "$pf"
  rotate_log "$logfile"
  # shellcheck disable=SC2016 # $$ and $1 must expand in the child shell
  nohup setsid bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$pf" "$@" \
    >>"$logfile" 2>&1 </dev/null 9>&- &
  for _ in $(seq 50); do
    BG_PID="$(read_pidfile "$pf")"
    [[ -n "$BG_PID" ]] && return 0
    sleep 0.02
  done
  die "$name: no pidfile $pf after start (see $logfile)"
}

# component_pid NAME: pid of the running instance or empty. Postgres keeps its
# own pidfile in the data directory; the others use .infra/run/NAME.pid.
# (Kafka nodes are components too, "kafka-<i>", and "kafka" names them all: see below.)
component_pid() {
  local pid=""
  case "$1" in
    postgres) pid="$(head -n1 "$PGDATA_DIR/postmaster.pid" 2>/dev/null || true)" ;;
    kafka-1)
      # A broker started before clusters existed wrote kafka.pid: still ours to find and stop.
      pid="$(read_pidfile "$(pidfile kafka-1)")"
      if [[ -z "$pid" ]] && pid="$(read_pidfile "$(pidfile kafka)")" && [[ -n "$pid" ]]; then
        pid_alive "$pid" "kafka.Kafka $KAFKA_HOME/server.properties" && echo "$pid"
        return 0
      fi
      ;;
    *) pid="$(read_pidfile "$(pidfile "$1")")" ;;
  esac
  if [[ "$pid" =~ ^[0-9]+$ ]] && pid_alive "$pid" "$(component_pattern "$1")"; then
    echo "$pid"
  fi
  return 0
}

# What the process's command line must contain: guards against a recycled pid. A Kafka node
# is matched by its own properties file, so another checkout's broker never matches.
component_pattern() {
  case "$1" in
    postgres) echo "postgres" ;;
    redis) echo "redis-server" ;;
    kafka-*) echo "kafka.Kafka $(kafka_props "${1#kafka-}")" ;;
    stripe-mock) echo "stripe-mock" ;;
    smtp) echo "smtp_server.py" ;;
    jaeger) echo "bin/jaeger" ;;
  esac
}

component_port() {
  case "$1" in
    postgres) echo "$POSTGRES_PORT" ;;
    redis) echo "$REDIS_PORT" ;;
    kafka) kafka_port 1 ;;
    kafka-*) kafka_port "${1#kafka-}" ;;
    stripe-mock) echo "$STRIPE_MOCK_PORT" ;;
    smtp) echo "$SMTP_PORT" ;;
    prometheus) echo "$PROMETHEUS_PORT" ;;
    jaeger) echo "$JAEGER_UI_PORT" ;;
  esac
}

component_log() {
  case "$1" in
    kafka) echo "$LOG_DIR/kafka-1.log" ;;
    *) echo "$LOG_DIR/$1.log" ;;
  esac
}

is_component() {
  local c
  [[ "$1" =~ ^kafka-[1-9]$ ]] && return 0
  for c in "${ALL_COMPONENTS[@]}" "${OPTIONAL_COMPONENTS[@]}"; do
    [[ "$c" == "$1" ]] && return 0
  done
  return 1
}

# component_desc NAME: "pid P, port N" for the summary lines; for "kafka" every node's.
component_desc() {
  if [[ "$1" != kafka ]]; then
    echo "pid $(component_pid "$1"), port $(component_port "$1")"
    return 0
  fi
  local n i pids="" ports=""
  n="$(kafka_count)"
  for ((i = 1; i <= n; i++)); do
    pids+="${pids:+ }$(component_pid "kafka-$i")"
    ports+="${ports:+ }$(kafka_port "$i")"
  done
  echo "$n node(s): pids $pids, ports $ports"
}

# Up means both: our process is alive AND its port answers.
component_up() {
  [[ -n "$(component_pid "$1")" ]] && port_open "$(component_port "$1")"
}

# ------------------------------------------------------------------ kafka nodes --
# KAFKA_BROKERS nodes, each a combined broker + controller; together they are the controller
# quorum. Node i listens on KAFKA_PORT + 2(i-1) for clients and KAFKA_CONTROLLER_PORT + 2(i-1)
# for the quorum (defaults: 9092/9093, 9094/9095, 9096/9097). One node is the laptop layout
# (replication factor 1); three or more are replicated as in production: replication factor 3,
# min.insync.replicas 2, so one broker may fail and no acknowledged record is lost.
KAFKA_MAX_BROKERS=9
KAFKA_BROKERS_FILE="$RUN_DIR/kafka.brokers" # node count of the cluster last started

kafka_port() { echo $((KAFKA_PORT + 2 * ($1 - 1))); }
kafka_controller_port() { echo $((KAFKA_CONTROLLER_PORT + 2 * ($1 - 1))); }
kafka_sasl_port() { echo $((KAFKA_SASL_PORT + $1 - 1)); }
kafka_sasl_ssl_port() { echo $((KAFKA_SASL_SSL_PORT + $1 - 1)); }
kafka_props() { echo "$KAFKA_HOME/server-$1.properties"; }
kafka_replication() { echo $(($1 >= 3 ? 3 : $1)); }
kafka_min_isr() { echo $(($1 >= 3 ? 2 : 1)); }

# Each layout keeps its own data: a cluster's topics (replicated) and its quorum of voters
# cannot be reused by another node count, and switching must not delete anything.
kafka_layout_dir() {
  if (($1 == 1)); then echo "$DATA_DIR"; else echo "$DATA_DIR/kafka-$1-brokers"; fi
}
kafka_data_dir() {
  if (($2 == 1)); then echo "$DATA_DIR/kafka"; else echo "$(kafka_layout_dir "$2")/node-$1"; fi
}

# The node count the running nodes were started with (empty when none is running).
kafka_running_count() {
  local n="" f
  if [[ -r "$KAFKA_BROKERS_FILE" ]]; then read -r n <"$KAFKA_BROKERS_FILE" || true; fi
  [[ "$n" =~ ^[1-9]$ ]] || n=1 # a broker from before clusters existed: a single node
  for f in "$RUN_DIR"/kafka-[1-9].pid "$RUN_DIR/kafka.pid"; do
    [[ -e "$f" ]] || continue
    f="${f##*/}"
    f="${f%.pid}"
    [[ "$f" == kafka ]] && f=kafka-1
    if [[ -n "$(component_pid "$f")" ]]; then
      echo "$n"
      return 0
    fi
  done
  return 0
}

# Checked here, once: the helpers below run in $(...), where a die would not stop the caller.
if [[ -n "$KAFKA_BROKERS" ]] && ! [[ "$KAFKA_BROKERS" =~ ^[1-9]$ ]]; then
  die "KAFKA_BROKERS must be a number from 1 to $KAFKA_MAX_BROKERS, not '$KAFKA_BROKERS'"
fi

# kafka_count: KAFKA_BROKERS if set, else the running cluster's size, else 1.
kafka_count() {
  local n="${KAFKA_BROKERS:-$(kafka_running_count)}"
  echo "${n:-1}"
}

# kafka_bootstrap N: the client addresses of every node, comma separated (what the services'
# KAFKA_BOOTSTRAP_SERVERS takes).
kafka_bootstrap() {
  local i list=""
  for ((i = 1; i <= $1; i++)); do list+="${list:+,}127.0.0.1:$(kafka_port "$i")"; done
  echo "$list"
}

# kafka_sasl_bootstrap N [ssl]: the same through the SASL_PLAINTEXT (or SASL_SSL) listeners.
kafka_sasl_bootstrap() {
  local i list="" port=kafka_sasl_port
  [[ "${2:-}" == ssl ]] && port=kafka_sasl_ssl_port
  for ((i = 1; i <= $1; i++)); do list+="${list:+,}127.0.0.1:$("$port" "$i")"; done
  echo "$list"
}

# kafka_voters N: the static controller quorum, "1@127.0.0.1:9093,2@127.0.0.1:9095,...".
kafka_voters() {
  local i list=""
  for ((i = 1; i <= $1; i++)); do list+="${list:+,}$i@127.0.0.1:$(kafka_controller_port "$i")"; done
  echo "$list"
}

# Serialise up/down runs: two concurrent starts would race on pidfiles and ports.
# The lock is fd 9; every long-lived child must be started with 9>&- or it
# would inherit the fd and hold the lock for its whole life.
take_lock() {
  mkdir -p "$RUN_DIR"
  exec 9>"$RUN_DIR/infra.lock"
  if ! flock -n 9; then
    log "waiting for another up.sh/down.sh (lock $RUN_DIR/infra.lock)"
    flock -w 900 9 || die "another up.sh/down.sh still holds $RUN_DIR/infra.lock after 900s"
  fi
}

ensure_dirs() {
  mkdir -p "$DATA_DIR" "$LOG_DIR" "$RUN_DIR" "$BIN_DIR"
  # The postgres OS user must traverse these to reach its data and log files.
  chmod 755 "$INFRA_DIR" "$DATA_DIR" "$LOG_DIR" "$RUN_DIR"
}

# Java command line shared by the broker helpers and kafka.sh tools.
kafka_tool_java() {
  java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
    -Dlog4j.configuration="file:$INFRA_SCRIPTS/kafka/tools-log4j.properties" \
    -cp "$KAFKA_LIBS/*:$KAFKA_CLASSES" "$@"
}
