#!/usr/bin/env bash
# Run Kafka's own CLI tools against the local broker(s), without a Kafka install.
#   scripts/infra/kafka.sh bootstrap      prints KAFKA_BOOTSTRAP_SERVERS for the local cluster
#   scripts/infra/kafka.sh sasl-bootstrap the same for the SASL_PLAINTEXT (PLAIN login) listeners
#   scripts/infra/kafka.sh sasl-ssl-bootstrap  ... and the SASL_SSL ones (CA: .infra/tls/ca.pem)
#   scripts/infra/kafka.sh topics --list
#   scripts/infra/kafka.sh topics --describe --topic orders
#   scripts/infra/kafka.sh console-producer --topic orders
#   scripts/infra/kafka.sh console-consumer --topic orders --from-beginning --max-messages 1
#   scripts/infra/kafka.sh consumer-groups --list
#   scripts/infra/kafka.sh class <main.Class> [args...]
#   scripts/infra/kafka.sh topics --describe --under-replicated-partitions
# --bootstrap-server (every local node) is added unless given.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

usage() {
  sed -n '2,13s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
  exit 2
}

main() {
  (($#)) || usage
  local tool="$1" cls bootstrap
  shift
  bootstrap="$(kafka_bootstrap "$(kafka_count)")"
  if [[ "$tool" == bootstrap ]]; then
    echo "$bootstrap"
    return
  fi
  if [[ "$tool" == sasl-bootstrap ]]; then
    kafka_sasl_bootstrap "$(kafka_count)"
    return
  fi
  if [[ "$tool" == sasl-ssl-bootstrap ]]; then
    kafka_sasl_bootstrap "$(kafka_count)" ssl
    return
  fi
  [[ -f "$KAFKA_LIBS/.complete" ]] || die "Kafka jars missing in $KAFKA_LIBS: run scripts/infra/up.sh kafka"
  case "$tool" in
    topics) cls=org.apache.kafka.tools.TopicCommand ;;
    console-producer) cls=kafka.tools.ConsoleProducer ;; # still in core in 3.9
    console-consumer) cls=org.apache.kafka.tools.consumer.ConsoleConsumer ;;
    consumer-groups) cls=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
    get-offsets) cls=org.apache.kafka.tools.GetOffsetShell ;;
    class)
      (($#)) || usage
      cls="$1"
      shift
      kafka_tool_java "$cls" "$@"
      return
      ;;
    -h | --help) usage ;;
    *) die "unknown tool '$tool' (bootstrap, sasl-bootstrap, sasl-ssl-bootstrap, topics, console-producer, console-consumer, consumer-groups, get-offsets, class)" ;;
  esac
  local -a args=("$@")
  if [[ " ${args[*]} " != *" --bootstrap-server "* ]]; then
    args=(--bootstrap-server "$bootstrap" "${args[@]}")
  fi
  kafka_tool_java "$cls" "${args[@]}"
}

main "$@"
