#!/usr/bin/env bash
# Start the local infrastructure without Docker, installing what is missing.
#   scripts/infra/up.sh [postgres|redis|kafka|kafka-<i>|stripe-mock|smtp ...]   (default: all)
#   KAFKA_BROKERS=3 scripts/infra/up.sh     a 3-node Kafka cluster (replication factor 3)
# Idempotent: a component whose process is alive and whose port answers is skipped.
# "kafka" is every node of the cluster; "kafka-<i>" is node i alone (restarting a crashed one).
# Runtime state lives in <repo>/.infra (data/, logs/, run/, bin/, kafka/).
set -euo pipefail

LOG_TAG=up
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CURRENT=""    # component being brought up, for the failure report
RESULT=""     # what the last up_* did: "already up" or "started"

# On any failure inside a component, show the tail of its log: the cause is
# almost always there, and the user should not have to go looking.
on_exit() {
  local rc=$?
  if ((rc != 0)) && [[ -n "$CURRENT" ]]; then
    local f
    f="$(component_log "$CURRENT")"
    log "$CURRENT FAILED (exit $rc). Last lines of $f:"
    if [[ -s "$f" ]]; then tail -n 25 "$f" | sed 's/^/    | /' >&2; fi
    log "fix the cause, then re-run up.sh (scripts/infra/down.sh $CURRENT resets a stuck process)"
  fi
}
trap on_exit EXIT

# check_running NAME TIMEOUT_S: 0 if already up (sets RESULT), 1 if it must be
# started; dies on states that a restart would not fix by itself.
check_running() {
  local name="$1" timeout_s="$2" pid port
  pid="$(component_pid "$name")"
  port="$(component_port "$name")"
  if [[ -n "$pid" ]]; then
    if port_open "$port"; then
      RESULT="already up"
      return 0
    fi
    # Alive but not listening yet: probably still starting (another up.sh run).
    log "$name: pid $pid alive, waiting for port $port"
    wait_for_port "$port" "$timeout_s" "$pid" "$name" ||
      die "$name: pid $pid is alive but port $port never answered; run scripts/infra/down.sh $name"
    RESULT="already up"
    return 0
  fi
  if port_open "$port"; then
    die "$name: port $port is in use by a process not started by these scripts" \
      "(stop it, or pick another port: $(port_var "$name")=<port> scripts/infra/up.sh)"
  fi
  return 1
}

port_var() {
  case "$1" in
    postgres) echo POSTGRES_PORT ;;
    redis) echo REDIS_PORT ;;
    kafka*) echo KAFKA_PORT ;;
    stripe-mock) echo STRIPE_MOCK_PORT ;;
    smtp) echo SMTP_PORT ;;
    prometheus) echo PROMETHEUS_PORT ;;
    jaeger) echo JAEGER_UI_PORT ;;
  esac
}

# ---------------------------------------------------------------- postgres --

# initdb and postgres refuse to run as root: as root, run them as 'postgres'.
as_pg() {
  if ((EUID == 0)); then runuser -u postgres -- "$@"; else "$@"; fi
}

up_postgres() {
  # A server started by an older up.sh offers no TLS: restart it (fast shutdown) so that it does.
  if [[ -n "$(component_pid postgres)" && -f "$PGDATA_DIR/infra.conf" ]] &&
    ! grep -q '^ssl = on' "$PGDATA_DIR/infra.conf"; then
    log "postgres: running without TLS (started by an older up.sh); restarting it"
    as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -m fast -w -t 60 stop >/dev/null 9>&- ||
      die "pg_ctl stop failed (scripts/infra/down.sh postgres)"
  fi
  check_running postgres 60 && return 0
  local logfile="$LOG_DIR/postgres.log"
  if [[ ! -x "$PG_BIN/postgres" ]]; then
    if [[ "$PG_BIN" == "/usr/lib/postgresql/$PG_MAJOR/bin" ]]; then
      apt_install "$logfile" "postgresql-$PG_MAJOR"
    fi
    [[ -x "$PG_BIN/postgres" ]] ||
      die "PostgreSQL server binaries not found in $PG_BIN (set PG_BIN, or install postgresql-$PG_MAJOR)"
  fi

  local owner
  if ((EUID == 0)); then
    if ! id postgres >/dev/null 2>&1; then
      log "creating system user 'postgres' (initdb refuses to run as root)"
      useradd --system --user-group --home-dir /nonexistent --no-create-home \
        --shell /usr/sbin/nologin postgres
    fi
    as_pg test -x "$DATA_DIR" ||
      die "OS user 'postgres' cannot traverse to $DATA_DIR: make its parent directories" \
        "searchable (e.g. chmod o+x on each parent of $ROOT)"
    owner=postgres
  else
    owner="$(id -un)"
  fi

  # Unix sockets have a ~107-byte path limit; deep checkouts fall back to /tmp.
  local sockdir="$RUN_DIR/postgres"
  if ((${#sockdir} > 90)); then sockdir=/tmp; fi
  mkdir -p "$sockdir"
  rotate_log "$logfile"
  touch "$logfile"
  if [[ "$sockdir" != /tmp ]]; then chown "$owner" "$sockdir"; fi
  chown "$owner" "$logfile"

  if [[ ! -s "$PGDATA_DIR/PG_VERSION" ]]; then
    if [[ -d "$PGDATA_DIR" ]] && [[ -n "$(ls -A "$PGDATA_DIR")" ]]; then
      die "$PGDATA_DIR exists but holds no initialised cluster (interrupted initdb?):" \
        "remove it with scripts/infra/down.sh --purge postgres"
    fi
    log "postgres: initdb $PGDATA_DIR"
    local pwfile="$RUN_DIR/pg-superuser-pw"
    printf 'postgres\n' >"$pwfile"
    chown "$owner" "$pwfile"
    chmod 600 "$pwfile"
    mkdir -p "$PGDATA_DIR"
    chown "$owner" "$PGDATA_DIR"
    chmod 700 "$PGDATA_DIR"
    as_pg "$PG_BIN/initdb" -D "$PGDATA_DIR" -U postgres --pwfile="$pwfile" \
      --auth-local=peer --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 \
      >>"$logfile" 2>&1 || {
      rm -f "$pwfile"
      die "initdb failed"
    }
    rm -f "$pwfile"
    # Settings live in an included file, rewritten on each start so that a
    # changed POSTGRES_PORT takes effect without touching postgresql.conf.
    printf "\ninclude_if_exists = 'infra.conf'\n" >>"$PGDATA_DIR/postgresql.conf"
  fi
  # TLS offered (ssl = on) with the local CA's certificate for 127.0.0.1/localhost, so that
  # DB_SSLMODE=verify-full can be proven locally; clients connect in clear unless they ask
  # (sagakit.db.tls: no DB_SSLMODE means disable). The CA is also the one client
  # certificates are checked against, when a client presents one.
  ensure_local_tls "$logfile"
  install -m 600 -o "$owner" "$TLS_DIR/kafka.pem" "$PGDATA_DIR/server.crt"
  install -m 600 -o "$owner" "$TLS_DIR/kafka.key" "$PGDATA_DIR/server.key"
  install -m 644 -o "$owner" "$TLS_DIR/ca.pem" "$PGDATA_DIR/root.crt"
  cat >"$PGDATA_DIR/infra.conf" <<EOF
# Written by scripts/infra/up.sh on every start: edit there, not here.
listen_addresses = '127.0.0.1'
ssl = on
ssl_cert_file = 'server.crt'
ssl_key_file = 'server.key'
ssl_ca_file = 'root.crt'
port = $POSTGRES_PORT
unix_socket_directories = '$sockdir'
max_connections = 300
shared_buffers = 256MB
# Statement statistics for profiling (CREATE EXTENSION pg_stat_statements in a database to read).
shared_preload_libraries = 'pg_stat_statements'
# The outboxes are queues (a row per message, deleted once published): vacuum them often.
autovacuum_naptime = 15s
# Checkpoints less often, and full-page images compressed: after each checkpoint the first
# change of every page writes the whole page to the WAL, most of the WAL under load. Durability
# is unchanged (fsync, full_page_writes and synchronous_commit stay on); recovery replays more.
checkpoint_timeout = 15min
max_wal_size = 4GB
wal_compression = lz4
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
EOF
  chown "$owner" "$PGDATA_DIR/infra.conf"

  as_pg "$PG_BIN/pg_ctl" -D "$PGDATA_DIR" -l "$logfile" -w -t 60 start >/dev/null 9>&- ||
    die "pg_ctl start failed"
  local pid
  pid="$(component_pid postgres)"
  wait_for_port "$POSTGRES_PORT" 30 "$pid" postgres || die "postgres is not listening"
  # Roles and databases: idempotent, so run on every start (self-healing).
  PGPASSWORD=postgres "$PG_BIN/psql" -h 127.0.0.1 -p "$POSTGRES_PORT" -U postgres -d postgres \
    -X -q -v ON_ERROR_STOP=1 -f "$INFRA_SCRIPTS/postgres-init.sql" >>"$logfile" 2>&1 ||
    die "creating roles/databases (postgres-init.sql) failed"
  RESULT="started"
}

# ------------------------------------------------------------------- redis --

up_redis() {
  check_running redis 15 && return 0
  local logfile="$LOG_DIR/redis.log"
  command -v redis-server >/dev/null 2>&1 || apt_install "$logfile" redis-server
  mkdir -p "$DATA_DIR/redis"
  rotate_log "$logfile"
  # Redis daemonizes itself and writes its own pidfile; only start-up errors
  # reach our stdout redirect, so sharing the log file is harmless.
  # shellcheck disable=SC2094
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" \
    --dir "$DATA_DIR/redis" --pidfile "$(pidfile redis)" --logfile "$logfile" \
    --save '' --appendonly no >>"$logfile" 2>&1 9>&- || die "redis-server failed to start"
  local pid=""
  for _ in $(seq 100); do
    pid="$(component_pid redis)"
    [[ -n "$pid" ]] && break
    sleep 0.05
  done
  [[ -n "$pid" ]] || die "redis-server wrote no pidfile"
  wait_for_port "$REDIS_PORT" 15 "$pid" redis || die "redis is not listening"
  RESULT="started"
}

# ------------------------------------------------------------------- kafka --

TOPICS_FILE="$INFRA_SCRIPTS/topics.txt"
TOPICS_STAMP="$RUN_DIR/kafka-topics.stamp"

ensure_kafka_runtime() {
  local logfile="$1"
  # javac is needed once, to compile the topic helper.
  if ! command -v java >/dev/null 2>&1 || ! command -v javac >/dev/null 2>&1; then
    apt_install "$logfile" openjdk-17-jdk-headless
  fi
  if [[ ! -f "$KAFKA_LIBS/.complete" ]]; then
    command -v mvn >/dev/null 2>&1 || apt_install "$logfile" maven
    log "kafka: fetching Kafka $KAFKA_VERSION jars with Maven into $KAFKA_LIBS"
    # Copy into a scratch dir and rename, so an interrupted download is redone.
    local tmp="$KAFKA_LIBS.tmp"
    rm -rf "$tmp"
    mvn -q -B -Dstyle.color=never -f "$INFRA_SCRIPTS/kafka/pom.xml" \
      -Dkafka.version="$KAFKA_VERSION" dependency:copy-dependencies \
      -DoutputDirectory="$tmp" >>"$logfile" 2>&1 || die "mvn dependency:copy-dependencies failed"
    [[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] || die "mvn did not produce kafka_2.13-$KAFKA_VERSION.jar"
    touch "$tmp/.complete"
    rm -rf "$KAFKA_LIBS"
    mv "$tmp" "$KAFKA_LIBS"
  fi
  local src="$INFRA_SCRIPTS/kafka/EnsureTopics.java"
  if [[ ! -f "$KAFKA_CLASSES/EnsureTopics.class" || "$src" -nt "$KAFKA_CLASSES/EnsureTopics.class" ]]; then
    mkdir -p "$KAFKA_CLASSES"
    javac -nowarn -cp "$KAFKA_LIBS/*" -d "$KAFKA_CLASSES" "$src" >>"$logfile" 2>&1 ||
      die "compiling $src failed"
  fi
}

# A Kafka cluster id is 16 random bytes in URL-safe base64 without padding;
# generating it here saves a JVM launch of 'StorageTool random-uuid'.
new_cluster_id() {
  local id="-"
  while [[ "$id" == -* ]]; do
    id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
  done
  echo "$id"
}

# cluster_id N: the id every node of the N-node layout is formatted with. Kept in a file;
# if that is gone but a node's storage remains, the id comes from there (a new one would
# make the old node refuse to start).
cluster_id() {
  local n="$1" idfile meta
  idfile="$(kafka_layout_dir "$n")/kafka-cluster-id"
  if [[ ! -s "$idfile" ]]; then
    mkdir -p "$(dirname "$idfile")"
    for meta in "$(kafka_layout_dir "$n")"/kafka/meta.properties \
      "$(kafka_layout_dir "$n")"/node-*/meta.properties; do
      [[ -f "$meta" ]] && sed -n 's/^cluster\.id=//p' "$meta" >"$idfile" && break
    done
    [[ -s "$idfile" ]] || new_cluster_id >"$idfile"
  fi
  cat "$idfile"
}

# The stamp holds the node count the topics were last ensured for.
topics_current() {
  [[ -f "$TOPICS_STAMP" && ! "$TOPICS_FILE" -nt "$TOPICS_STAMP" &&
    "$(cat "$TOPICS_STAMP")" == "$1" ]]
}

ensure_topics() {
  local logfile="$1" n="$2" out
  log "kafka: ensuring topics from ${TOPICS_FILE#"$ROOT"/} (replication factor $(kafka_replication "$n"))"
  out="$(kafka_tool_java EnsureTopics "$(kafka_bootstrap "$n")" 90 "$n" 6 \
    "$(kafka_replication "$n")" "$TOPICS_FILE" 2>>"$logfile")" ||
    die "topic setup failed (cluster not ready, a create error, or too few replicas)"
  log "kafka: $out"
  echo "$n" >"$TOPICS_STAMP"
}

# check_kafka_ports N: 2N distinct ports; a clash would only show as a node dying later.
check_kafka_ports() {
  local n="$1" i p
  local -A seen=()
  for ((i = 1; i <= n; i++)); do
    for p in "$(kafka_port "$i")" "$(kafka_controller_port "$i")" "$(kafka_sasl_port "$i")" \
      "$(kafka_sasl_ssl_port "$i")"; do
      [[ -z "${seen[$p]:-}" ]] || die "kafka: nodes ${seen[$p]} and $i would both use port $p:" \
        "set KAFKA_PORT, KAFKA_CONTROLLER_PORT, KAFKA_SASL_PORT and KAFKA_SASL_SSL_PORT at" \
        "least $((2 * n)) apart"
      seen[$p]="$i"
    done
  done
}

# ensure_local_tls: a local CA (ca.pem, what clients trust) and a certificate it signed for
# 127.0.0.1/localhost, made once with openssl (EC P-256, ten years). Kafka's SASL_SSL listener
# reads key and certificate from kafka-keystore.pem; PostgreSQL a copy of kafka.pem/kafka.key. Test credentials, like the SASL password.
ensure_local_tls() {
  [[ -s "$TLS_DIR/ca.pem" && -s "$TLS_DIR/kafka-keystore.pem" ]] && return 0
  need_cmd openssl "needed once to make the local CA for Kafka's SASL_SSL listener and PostgreSQL's TLS"
  local tmp
  tmp="$(mktemp -d "$INFRA_DIR/tls.XXXXXX")"
  local -a ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "basicConstraints=critical,CA:FALSE" \
    "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth" \
    >"$tmp/kafka.ext"
  {
    openssl req -x509 "${ec[@]}" -keyout "$tmp/ca.key" -out "$tmp/ca.pem" -days 3650 \
      -subj "/CN=saga-shop local CA" -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" &&
      openssl req "${ec[@]}" -keyout "$tmp/kafka.key" -out "$tmp/kafka.csr" -subj "/CN=127.0.0.1" &&
      openssl x509 -req -in "$tmp/kafka.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca.key" \
        -CAcreateserial -out "$tmp/kafka.pem" -days 3650 -extfile "$tmp/kafka.ext"
  } >>"$1" 2>&1 || {
    rm -rf "$tmp"
    die "openssl could not make the local CA (see $1)"
  }
  cat "$tmp/kafka.key" "$tmp/kafka.pem" >"$tmp/kafka-keystore.pem"
  chmod 600 "$tmp"/*.key "$tmp/kafka-keystore.pem"
  rm -rf "$TLS_DIR"
  mv "$tmp" "$TLS_DIR"
  log "made a local CA and the servers' certificate in ${TLS_DIR#"$ROOT"/}"
}

# render_kafka_props I N: node I's server.properties, from the template and the ports.
render_kafka_props() {
  local i="$1" n="$2"
  sed -e "s|@NODE_ID@|$i|g" \
    -e "s|@QUORUM_VOTERS@|$(kafka_voters "$n")|g" \
    -e "s|@KAFKA_PORT@|$(kafka_port "$i")|g" \
    -e "s|@KAFKA_CONTROLLER_PORT@|$(kafka_controller_port "$i")|g" \
    -e "s|@KAFKA_SASL_PORT@|$(kafka_sasl_port "$i")|g" \
    -e "s|@KAFKA_SASL_SSL_PORT@|$(kafka_sasl_ssl_port "$i")|g" \
    -e "s|@KAFKA_TLS_KEYSTORE@|$TLS_DIR/kafka-keystore.pem|g" \
    -e "s|@KAFKA_SASL_USERNAME@|$KAFKA_SASL_USERNAME_LOCAL|g" \
    -e "s|@KAFKA_SASL_PASSWORD@|$KAFKA_SASL_PASSWORD_LOCAL|g" \
    -e "s|@KAFKA_LOG_DIRS@|$(kafka_data_dir "$i" "$n")|g" \
    -e "s|@REPLICATION_FACTOR@|$(kafka_replication "$n")|g" \
    -e "s|@MIN_ISR@|$(kafka_min_isr "$n")|g" \
    "$INFRA_SCRIPTS/kafka/server.properties.template"
}

# restart_stale_kafka N: a running cluster whose nodes were started with other properties
# than the template renders now (say, before the SASL listener was added) is stopped, all
# nodes together (one by one, the last would wait for a quorum that has gone), so that the
# caller starts it again with the current ones. Data is kept.
restart_stale_kafka() {
  local n="$1" i pid stale=0
  local -a running=()
  for ((i = 1; i <= n; i++)); do
    pid="$(component_pid "kafka-$i")"
    [[ -n "$pid" ]] || continue
    running+=("$pid")
    render_kafka_props "$i" "$n" | cmp -s - "$(kafka_props "$i")" || stale=1
  done
  ((stale)) || return 0
  log "kafka: the running nodes were started with an older configuration; restarting them"
  for pid in "${running[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${running[@]}"; do
    wait_for_exit "$pid" 120 || die "kafka: pid $pid did not stop after 120s (scripts/infra/down.sh kafka)"
  done
  for ((i = 1; i <= n; i++)); do rm -f "$(pidfile "kafka-$i")"; done
  rm -f "$(pidfile kafka)"
}

# start_kafka_node I N: renders node I's properties, formats its storage on first use and
# starts it in the background (the caller waits for its port).
start_kafka_node() {
  local i="$1" n="$2" props logdirs logfile
  props="$(kafka_props "$i")"
  logdirs="$(kafka_data_dir "$i" "$n")"
  logfile="$(component_log "kafka-$i")"
  if port_open "$(kafka_controller_port "$i")"; then
    die "kafka-$i: controller port $(kafka_controller_port "$i") is already in use" \
      "(stop that process or set KAFKA_CONTROLLER_PORT)"
  fi
  if port_open "$(kafka_sasl_port "$i")"; then
    die "kafka-$i: SASL port $(kafka_sasl_port "$i") is already in use" \
      "(stop that process or set KAFKA_SASL_PORT)"
  fi
  if port_open "$(kafka_sasl_ssl_port "$i")"; then
    die "kafka-$i: SASL_SSL port $(kafka_sasl_ssl_port "$i") is already in use" \
      "(stop that process or set KAFKA_SASL_SSL_PORT)"
  fi
  render_kafka_props "$i" "$n" >"$props"

  if [[ ! -f "$logdirs/meta.properties" ]]; then
    local cid
    cid="$(cluster_id "$n")"
    log "kafka-$i: formatting storage $logdirs (cluster id $cid)"
    mkdir -p "$logdirs"
    kafka_tool_java kafka.tools.StorageTool format -t "$cid" -c "$props" >>"$logfile" 2>&1 ||
      die "kafka-$i: storage format failed"
  fi

  # G1 with short pauses, as Kafka's own start script does; 512 MiB is plenty here.
  start_bg "kafka-$i" "$logfile" java -Xmx512m -Xms256m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$INFRA_SCRIPTS/kafka/log4j.properties" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$props"
}

# kafka_layout: the node count to bring up; dies if a cluster of another size is running
# (its nodes would not form one quorum with the new ones). Checked before anything starts.
KAFKA_N=""
kafka_layout() {
  local n running
  n="$(kafka_count)"
  running="$(kafka_running_count)"
  if [[ -n "$running" && "$running" != "$n" ]]; then
    die "kafka is running with $running node(s), not KAFKA_BROKERS=$n: stop it first" \
      "(scripts/infra/down.sh kafka; each layout keeps its own data)"
  fi
  echo "$n"
}

up_kafka() {
  local n="$KAFKA_N" i
  local -a missing=()
  ensure_local_tls "$(component_log kafka)"
  restart_stale_kafka "$n"
  for ((i = 1; i <= n; i++)); do
    CURRENT="kafka-$i"
    check_running "kafka-$i" 90 || missing+=("$i")
  done
  CURRENT=kafka
  if ((${#missing[@]} == 0)); then
    RESULT="already up"
    # Warm path: only re-run topic setup when topics.txt (or the layout) changed.
    if ! topics_current "$n"; then
      ensure_kafka_runtime "$(component_log kafka)"
      ensure_topics "$(component_log kafka)" "$n"
    fi
    return 0
  fi
  ensure_kafka_runtime "$(component_log kafka)"
  # All at once: a node of a cluster only opens its port once the quorum has a leader.
  local -A pids=()
  for i in "${missing[@]}"; do
    CURRENT="kafka-$i"
    start_kafka_node "$i" "$n"
    pids[$i]="$BG_PID"
  done
  echo "$n" >"$KAFKA_BROKERS_FILE"
  for i in "${missing[@]}"; do
    CURRENT="kafka-$i"
    wait_for_port "$(kafka_port "$i")" 90 "${pids[$i]}" "kafka-$i" || die "kafka-$i is not listening"
  done
  CURRENT=kafka
  # Port open is not enough: the cluster must also serve metadata, with every broker
  # registered. EnsureTopics waits for that, then creates what is missing.
  ensure_topics "$(component_log kafka)" "$n"
  RESULT="started ${#missing[@]} of $n node(s)"
}

# up_kafka_node I: one node of the running (or configured) layout, say after a crash. Topics
# are not touched: the rest of the cluster may still be down.
up_kafka_node() {
  local i="$1" n="$KAFKA_N"
  ((i <= n)) || die "kafka-$i: the cluster has $n node(s) (KAFKA_BROKERS)"
  check_running "kafka-$i" 90 && return 0
  ensure_kafka_runtime "$(component_log "kafka-$i")"
  ensure_local_tls "$(component_log "kafka-$i")"
  start_kafka_node "$i" "$n"
  echo "$n" >"$KAFKA_BROKERS_FILE"
  wait_for_port "$(kafka_port "$i")" 90 "$BG_PID" "kafka-$i" || die "kafka-$i is not listening"
  RESULT="started"
}

# ------------------------------------------------------------- stripe-mock --

up_stripe_mock() {
  check_running stripe-mock 20 && return 0
  local logfile="$LOG_DIR/stripe-mock.log" bin="$BIN_DIR/stripe-mock"
  local stamp="$BIN_DIR/.stripe-mock.version"
  if [[ ! -x "$bin" || "$(cat "$stamp" 2>/dev/null)" != "$STRIPE_MOCK_VERSION" ]]; then
    need_cmd go "Go >= 1.22 is needed to build stripe-mock (https://go.dev/doc/install)"
    log "stripe-mock: go install github.com/stripe/stripe-mock@$STRIPE_MOCK_VERSION"
    GOBIN="$BIN_DIR" go install "github.com/stripe/stripe-mock@$STRIPE_MOCK_VERSION" \
      >>"$logfile" 2>&1 || die "go install stripe-mock failed"
    echo "$STRIPE_MOCK_VERSION" >"$stamp"
  fi
  start_bg stripe-mock "$logfile" "$bin" \
    -http-addr "127.0.0.1:$STRIPE_MOCK_PORT" -https-addr "127.0.0.1:$STRIPE_MOCK_HTTPS_PORT"
  wait_for_port "$STRIPE_MOCK_PORT" 20 "$BG_PID" stripe-mock ||
    die "stripe-mock is not listening"
  RESULT="started"
}

# -------------------------------------------------------------------- smtp --

SMTP_PY=""

# The project venv normally has aiosmtpd (dev dependency); on a machine without
# it, a private venv under .infra keeps up.sh self-sufficient.
find_smtp_python() {
  local logfile="$1" p
  if [[ -n "${SMTP_PYTHON:-}" ]]; then
    SMTP_PY="$SMTP_PYTHON"
    return 0
  fi
  for p in "$ROOT/.venv/bin/python" "$INFRA_DIR/venv/bin/python"; do
    if [[ -x "$p" ]] && "$p" -c 'import aiosmtpd' 2>/dev/null; then
      SMTP_PY="$p"
      return 0
    fi
  done
  need_cmd python3 "needed to run the SMTP server"
  log "smtp: no aiosmtpd in .venv; creating $INFRA_DIR/venv with aiosmtpd==$AIOSMTPD_VERSION"
  if ! python3 -m venv "$INFRA_DIR/venv" >>"$logfile" 2>&1; then
    rm -rf "$INFRA_DIR/venv"
    apt_install "$logfile" python3-venv
    python3 -m venv "$INFRA_DIR/venv" >>"$logfile" 2>&1 || die "python3 -m venv failed"
  fi
  "$INFRA_DIR/venv/bin/pip" install -q "aiosmtpd==$AIOSMTPD_VERSION" >>"$logfile" 2>&1 ||
    die "pip install aiosmtpd failed"
  SMTP_PY="$INFRA_DIR/venv/bin/python"
}

up_smtp() {
  check_running smtp 15 && return 0
  local logfile="$LOG_DIR/smtp.log"
  find_smtp_python "$logfile"
  mkdir -p "$DATA_DIR/mail"
  start_bg smtp "$logfile" "$SMTP_PY" -u "$INFRA_SCRIPTS/smtp_server.py" \
    --host 127.0.0.1 --port "$SMTP_PORT" --mail-dir "$DATA_DIR/mail"
  wait_for_port "$SMTP_PORT" 15 "$BG_PID" smtp || die "smtp server is not listening"
  RESULT="started"
}

# -------------------------------------------------------------- prometheus --
# Optional (INFRA_PROMETHEUS=1, or named): Debian's Prometheus scraping the local services with
# deploy/prometheus/, its alert rules included. The config is copied with this environment's
# service ports, so a checkout on other ports scrapes its own services.

up_prometheus() {
  check_running prometheus 30 && return 0
  local logfile="$LOG_DIR/prometheus.log" conf_dir="$INFRA_DIR/prometheus"
  command -v prometheus >/dev/null 2>&1 || apt_install "$logfile" prometheus
  mkdir -p "$conf_dir" "$DATA_DIR/prometheus"
  cp "$ROOT/deploy/prometheus/alerts.yml" "$conf_dir/alerts.yml"
  sed -e "s/127.0.0.1:8000/127.0.0.1:${ORCHESTRATOR_HTTP_PORT:-8000}/" \
    -e "s/127.0.0.1:8001/127.0.0.1:${INVENTORY_HTTP_PORT:-8001}/" \
    -e "s/127.0.0.1:8002/127.0.0.1:${PAYMENT_HTTP_PORT:-8002}/" \
    -e "s/127.0.0.1:8003/127.0.0.1:${NOTIFICATION_HTTP_PORT:-8003}/" \
    "$ROOT/deploy/prometheus/prometheus.yml" >"$conf_dir/prometheus.yml"
  start_bg prometheus "$logfile" prometheus --config.file="$conf_dir/prometheus.yml" \
    --storage.tsdb.path="$DATA_DIR/prometheus" --storage.tsdb.retention.time=2d \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT"
  wait_for_port "$PROMETHEUS_PORT" 30 "$BG_PID" prometheus || die "prometheus is not listening"
  RESULT="started"
}

# ------------------------------------------------------------------ jaeger --
# Optional (INFRA_JAEGER=1, or named): the Jaeger v2 all-in-one (OTLP receiver, in-memory storage,
# query UI and HTTP API) with deploy/jaeger/config.yaml on this environment's ports. Built once
# with Go into .infra/bin: cmd/jaeger's go.mod has replace directives, so `go install ...@version`
# refuses it; a throwaway module pins it as a tool (`go get -tool`) and `go build`s it. The build
# takes minutes on a small machine; later runs reuse the binary (the stamp names the version).

up_jaeger() {
  check_running jaeger 30 && return 0
  local logfile="$LOG_DIR/jaeger.log" bin="$BIN_DIR/jaeger" stamp="$BIN_DIR/.jaeger.version"
  local port
  for port in "$JAEGER_OTLP_GRPC_PORT" "$JAEGER_OTLP_HTTP_PORT" "$JAEGER_QUERY_GRPC_PORT"; do
    port_open "$port" && die "jaeger: port $port is in use (JAEGER_OTLP_GRPC_PORT," \
      "JAEGER_OTLP_HTTP_PORT, JAEGER_QUERY_GRPC_PORT pick others)"
  done
  if [[ ! -x "$bin" || "$(cat "$stamp" 2>/dev/null)" != "$JAEGER_VERSION" ]]; then
    need_cmd go "Go >= 1.24 is needed to build Jaeger (https://go.dev/doc/install)"
    local mod="$INFRA_DIR/jaeger-build"
    log "jaeger: building github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION (minutes, once)"
    rm -rf "$mod" && mkdir -p "$mod"
    (
      cd "$mod" &&
        go mod init local/jaeger-build &&
        go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION" &&
        go build -o "$bin" github.com/jaegertracing/jaeger/cmd/jaeger
    ) >>"$logfile" 2>&1 || die "building jaeger failed"
    rm -rf "$mod"
    echo "$JAEGER_VERSION" >"$stamp"
  fi
  JAEGER_UI_PORT="$JAEGER_UI_PORT" JAEGER_QUERY_GRPC_PORT="$JAEGER_QUERY_GRPC_PORT" \
    JAEGER_OTLP_GRPC_PORT="$JAEGER_OTLP_GRPC_PORT" JAEGER_OTLP_HTTP_PORT="$JAEGER_OTLP_HTTP_PORT" \
    start_bg jaeger "$logfile" "$bin" --config "$ROOT/deploy/jaeger/config.yaml"
  wait_for_port "$JAEGER_UI_PORT" 30 "$BG_PID" jaeger || die "jaeger is not listening"
  wait_for_port "$JAEGER_OTLP_HTTP_PORT" 15 "$BG_PID" jaeger || die "jaeger's OTLP receiver is not listening"
  RESULT="started"
}

# -------------------------------------------------------------------- main --

main() {
  local -a comps=("$@")
  ((${#comps[@]})) || comps=("${ALL_COMPONENTS[@]}")
  local c
  for c in "${comps[@]}"; do
    is_component "$c" || die "unknown component '$c' (known: ${ALL_COMPONENTS[*]})"
  done
  ensure_dirs
  take_lock
  if [[ " ${comps[*]} " == *" kafka"* ]]; then
    KAFKA_N="$(kafka_layout)"
    check_kafka_ports "$KAFKA_N"
  fi

  local t_all t0 dt summary=""
  t_all="$(now_ms)"
  for c in "${comps[@]}"; do
    CURRENT="$c"
    RESULT=""
    t0="$(now_ms)"
    case "$c" in
      kafka-*) up_kafka_node "${c#kafka-}" ;;
      *) "up_${c//-/_}" ;;
    esac
    dt=$(($(now_ms) - t0))
    log "$c: $RESULT ($(component_desc "$c")) in $(fmt_ms "$dt")"
    summary+="$c=${RESULT// /-}($(fmt_ms "$dt")) "
  done
  CURRENT=""
  printf 'infra up: %stotal %s\n' "$summary" "$(fmt_ms $(($(now_ms) - t_all)))"
}

main "$@"
