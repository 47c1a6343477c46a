#!/usr/bin/env bash
# A real Apache Kafka broker without Docker: one KRaft node (broker + controller) on 127.0.0.1.
#
#   scripts/kafka.sh start    fetch Kafka's jars (first run only), format storage, start, wait until it answers
#   scripts/kafka.sh stop     stop the broker started here and wait for it to exit
#   scripts/kafka.sh status   exit 0 and print the bootstrap address when running, exit 3 otherwise
#   scripts/kafka.sh reset    stop, then delete the broker's data (topics, offsets)
#   scripts/kafka.sh info     key=value lines: the listeners, and the test credentials and certificates
#
# Besides PLAINTEXT on 127.0.0.1:9092 the broker has two listeners for testing secured clients:
#   SASL_PLAINTEXT on port+2 (9094): PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512, user `sluice`, password `sluice-secret`
#   SSL on port+3 (9095): a certificate from a CA generated here (openssl), client certificates required
# Test credentials for a local broker only; certificates live under run/tls.
#
# `start` prints `started <brokers>` or `running <brokers>` (already up) on stdout, so callers know
# whether they own the process. Everything lives under ${SLUICE_CACHE:-$HOME/.cache/sluice}/kafka-3.9.1
# (jars in libs/, config, data, pid and log in run/), never in the repository.
#
# Environment: SLUICE_CACHE (cache root), SLUICE_KAFKA_PORT (default 9092; the controller uses
# port+1), SLUICE_KAFKA_HEAP (default -Xmx1g), SLUICE_KAFKA_START_TIMEOUT (seconds, default 60).
set -euo pipefail

KAFKA_VERSION=3.9.1
SCALA_VERSION=2.13
SLF4J_VERSION=1.7.36
CACHE_ROOT="${SLUICE_CACHE:-$HOME/.cache/sluice}"
KAFKA_HOME="$CACHE_ROOT/kafka-$KAFKA_VERSION"
LIBS="$KAFKA_HOME/libs"
RUN_DIR="$KAFKA_HOME/run"
DATA_DIR="$RUN_DIR/data"
CONFIG="$RUN_DIR/server.properties"
LOG4J="$RUN_DIR/log4j.properties"
PID_FILE="$RUN_DIR/kafka.pid"
LOG_FILE="$RUN_DIR/kafka.log"
PORT="${SLUICE_KAFKA_PORT:-9092}"
CONTROLLER_PORT=$((PORT + 1))
SASL_PORT=$((PORT + 2))
TLS_PORT=$((PORT + 3))
TLS_DIR="$RUN_DIR/tls"
SASL_USER=sluice
SASL_PASSWORD=sluice-secret
BROKERS="127.0.0.1:$PORT"
HEAP="${SLUICE_KAFKA_HEAP:--Xmx1g -Xms256m}"
START_TIMEOUT="${SLUICE_KAFKA_START_TIMEOUT:-60}"
# Stable so that re-formatting (after `reset`) is repeatable; any base64 UUID works for one node.
CLUSTER_ID="c2x1aWNlLWxvY2FsLWthZg"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib-maven-fetch.sh
. "$SCRIPT_DIR/lib-maven-fetch.sh"
# shellcheck source=lib-daemon.sh
. "$SCRIPT_DIR/lib-daemon.sh"

log() { echo "kafka.sh: $*" >&2; }

port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# A CA, a broker certificate for 127.0.0.1/localhost and a client certificate, once. PEM throughout,
# which both Kafka (ssl.keystore.type=PEM) and Node's tls module read.
make_tls() {
  if [ -f "$TLS_DIR/server-keystore.pem" ] && [ -f "$TLS_DIR/client.key" ]; then return 0; fi
  command -v openssl >/dev/null 2>&1 || { log "openssl not found: the SSL listener gets no certificate"; return 1; }
  mkdir -p "$TLS_DIR"
  (
    cd "$TLS_DIR"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 3650 -subj "/CN=sluice-test-ca" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >server.ext
    for who in server client; do
      openssl req -newkey rsa:2048 -nodes -keyout "$who.key" -out "$who.csr" -subj "/CN=sluice-$who" 2>/dev/null
      openssl x509 -req -in "$who.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -out "$who.pem" -days 3650 \
        $([ "$who" = server ] && echo "-extfile server.ext") 2>/dev/null
    done
    cat server.key server.pem >server-keystore.pem
    rm -f ./*.csr server.ext
  )
}

write_config() {
  mkdir -p "$RUN_DIR"
  local listeners="PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT,SASL_PLAINTEXT://127.0.0.1:$SASL_PORT"
  local advertised="PLAINTEXT://127.0.0.1:$PORT,SASL_PLAINTEXT://127.0.0.1:$SASL_PORT"
  local tls_config=""
  if make_tls; then
    listeners="$listeners,SSL://127.0.0.1:$TLS_PORT"
    advertised="$advertised,SSL://127.0.0.1:$TLS_PORT"
    tls_config="listener.name.ssl.ssl.keystore.type=PEM
listener.name.ssl.ssl.keystore.location=$TLS_DIR/server-keystore.pem
listener.name.ssl.ssl.truststore.type=PEM
listener.name.ssl.ssl.truststore.location=$TLS_DIR/ca.pem
listener.name.ssl.ssl.client.auth=required"
  fi
  cat >"$CONFIG" <<CONF
# Written by scripts/kafka.sh: a single-node KRaft cluster for development and tests.
node.id=1
process.roles=broker,controller
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=$listeners
advertised.listeners=$advertised
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$DATA_DIR
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
auto.create.topics.enable=true
# Consumer groups form at once instead of waiting 3 s for more members (tests restart consumers often).
group.initial.rebalance.delay.ms=0
# Keep records regardless of their timestamp: replayed events carry old event times, which the
# default 7-day retention would delete on arrival. Space is bounded per partition instead.
log.retention.ms=-1
log.retention.bytes=2147483648
log.segment.bytes=268435456
# Secured listeners for client tests (no authorizer: authenticated users may do anything).
listener.name.sasl_plaintext.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER="$SASL_PASSWORD";
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
$tls_config
CONF
  cat >"$LOG4J" <<CONF
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
# The line "Kafka Server started" tells start() the broker is up.
log4j.logger.kafka.server.KafkaRaftServer=INFO
CONF
}

format_storage() {
  if [ -f "$DATA_DIR/meta.properties" ]; then return 0; fi
  log "formatting storage in $DATA_DIR"
  java -cp "$LIBS/*" -Dlog4j.configuration="file:$LOG4J" kafka.tools.StorageTool format \
    -t "$CLUSTER_ID" -c "$CONFIG" --ignore-formatted >"$RUN_DIR/format.log" 2>&1 || {
    cat "$RUN_DIR/format.log" >&2
    return 1
  }
}

cmd_status() {
  if pid_alive && port_open "$PORT"; then
    echo "running $BROKERS"
    return 0
  fi
  echo "stopped"
  return 3
}

cmd_start() {
  if pid_alive; then
    if wait_ready; then echo "running $BROKERS"; return 0; fi
    return 1
  fi
  if port_open "$PORT"; then
    log "port $PORT is in use by a process this script did not start; set KAFKA_BROKERS to use it, or free the port"
    return 1
  fi
  if [ ! -f "$LIBS/.complete" ]; then log "fetching Apache Kafka $KAFKA_VERSION from Maven Central (first run only)"; fi
  # Kafka's distribution ships a log binding that its pom leaves out; without it the broker is silent.
  maven_fetch_jars "$LIBS" "org.apache.kafka:kafka_$SCALA_VERSION:$KAFKA_VERSION" "org.slf4j:slf4j-reload4j:$SLF4J_VERSION"
  write_config
  format_storage
  : >"$LOG_FILE"
  # setsid: the broker outlives this script and ignores the caller's terminal signals.
  # shellcheck disable=SC2086
  setsid java $HEAP -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$LOG4J" -Dkafka.logs.dir="$RUN_DIR" \
    -cp "$LIBS/*" kafka.Kafka "$CONFIG" >>"$LOG_FILE" 2>&1 </dev/null &
  echo $! >"$PID_FILE"
  if ! wait_ready; then
    log "the broker did not come up within ${START_TIMEOUT}s; last log lines:"
    tail -n 30 "$LOG_FILE" >&2 || true
    cmd_stop >/dev/null || true
    return 1
  fi
  # Without the SCRAM user only the SCRAM tests fail; the broker stays up for everything else.
  add_scram_user || true
  echo "started $BROKERS"
}

wait_ready() {
  local deadline=$((SECONDS + START_TIMEOUT))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if ! pid_alive; then
      log "the broker exited; last log lines:"
      tail -n 30 "$LOG_FILE" >&2 || true
      return 1
    fi
    if port_open "$PORT" && grep -q "Kafka Server started" "$LOG_FILE" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  return 1
}

# SCRAM credentials live in the cluster metadata: create them once per data directory.
add_scram_user() {
  local marker="$DATA_DIR/.sluice-scram-user"
  if [ -f "$marker" ]; then return 0; fi
  local mechanism
  : >"$RUN_DIR/scram.log"
  # One mechanism per request: the broker refuses two credentials of one user in a single alter.
  for mechanism in SCRAM-SHA-256 SCRAM-SHA-512; do
    java -cp "$LIBS/*" -Dlog4j.configuration="file:$LOG4J" kafka.admin.ConfigCommand --bootstrap-server "$BROKERS" --alter \
      --add-config "$mechanism=[password=$SASL_PASSWORD]" \
      --entity-type users --entity-name "$SASL_USER" >>"$RUN_DIR/scram.log" 2>&1 || {
      log "could not create the SCRAM user; see $RUN_DIR/scram.log"
      return 1
    }
  done
  touch "$marker"
}

cmd_info() {
  echo "brokers=$BROKERS"
  echo "sasl_brokers=127.0.0.1:$SASL_PORT"
  echo "sasl_user=$SASL_USER"
  echo "sasl_password=$SASL_PASSWORD"
  if [ -f "$TLS_DIR/ca.pem" ]; then
    echo "tls_brokers=127.0.0.1:$TLS_PORT"
    echo "tls_ca=$TLS_DIR/ca.pem"
    echo "tls_client_cert=$TLS_DIR/client.pem"
    echo "tls_client_key=$TLS_DIR/client.key"
  fi
}

cmd_stop() {
  daemon_stop "the broker"
}

cmd_reset() {
  cmd_stop >/dev/null
  rm -rf "$DATA_DIR"
  echo "reset"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  reset) cmd_reset ;;
  info) cmd_info ;;
  *)
    echo "usage: $0 start|stop|status|reset|info" >&2
    exit 2
    ;;
esac
