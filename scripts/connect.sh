#!/usr/bin/env bash
# Kafka Connect 3.9.1 (standalone worker) with the Debezium 2.7.4 PostgreSQL connector, without Docker.
#
#   scripts/connect.sh fetch            fetch Connect's jars and the Debezium plugin (first run only)
#   scripts/connect.sh start            fetch, then start a standalone worker; prints `started <url>` or `running <url>`
#   scripts/connect.sh stop             stop the worker started here
#   scripts/connect.sh status           exit 0 and print the REST url when running, exit 3 otherwise
#   scripts/connect.sh register FILE    POST a connector JSON ({"name":..,"config":{..}}) to the worker
#   scripts/connect.sh reset            stop, then delete the worker's stored source offsets
#
# The worker talks to KAFKA_BROKERS (default 127.0.0.1:9092) and serves its REST API on
# 127.0.0.1:${SLUICE_CONNECT_PORT:-8083}. Jars, the plugin path, config, offsets, pid and log live
# under ${SLUICE_CACHE:-$HOME/.cache/sluice} (connect-3.9.1/, debezium-postgres-2.7.4/), never in the
# repository. Environment: SLUICE_CACHE, KAFKA_BROKERS, SLUICE_CONNECT_PORT, SLUICE_CONNECT_HEAP
# (default -Xmx768m), SLUICE_CONNECT_START_TIMEOUT (seconds, default 90).
#
# connectors/employee-connector.json names the compose host `postgres`; for the local PostgreSQL
# register a copy with "database.hostname": "127.0.0.1".
set -euo pipefail

KAFKA_VERSION=3.9.1
DEBEZIUM_VERSION=2.7.4.Final
CACHE_ROOT="${SLUICE_CACHE:-$HOME/.cache/sluice}"
CONNECT_HOME="$CACHE_ROOT/connect-$KAFKA_VERSION"
LIBS="$CONNECT_HOME/libs"
RUN_DIR="$CONNECT_HOME/run"
PLUGIN_PATH="$CACHE_ROOT/debezium-postgres-${DEBEZIUM_VERSION%.Final}/plugins"
WORKER_CONFIG="$RUN_DIR/worker.properties"
LOG4J="$RUN_DIR/log4j.properties"
OFFSETS_FILE="$RUN_DIR/connect.offsets"
PID_FILE="$RUN_DIR/connect.pid"
LOG_FILE="$RUN_DIR/connect.log"
BROKERS="${KAFKA_BROKERS:-127.0.0.1:9092}"
PORT="${SLUICE_CONNECT_PORT:-8083}"
URL="http://127.0.0.1:$PORT"
HEAP="${SLUICE_CONNECT_HEAP:--Xmx768m -Xms128m}"
START_TIMEOUT="${SLUICE_CONNECT_START_TIMEOUT:-90}"

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib-maven-fetch.sh
. "$SCRIPT_DIR/lib-maven-fetch.sh"
# shellcheck source=lib-daemon.sh
. "$SCRIPT_DIR/lib-daemon.sh"

log() { echo "connect.sh: $*" >&2; }

rest_up() { curl -fsS -o /dev/null "$URL/connector-plugins" 2>/dev/null; }

fetch_plugin() {
  local stamp="$PLUGIN_PATH/.complete"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$DEBEZIUM_VERSION" ]; then return 0; fi
  command -v mvn >/dev/null 2>&1 || { log "mvn is not installed"; return 1; }
  local work
  work="$(mktemp -d)"
  log "fetching io.debezium:debezium-connector-postgres:$DEBEZIUM_VERSION (plugin tar.gz) from Maven Central"
  if ! mvn -q -B dependency:copy \
    -Dartifact="io.debezium:debezium-connector-postgres:$DEBEZIUM_VERSION:tar.gz:plugin" \
    -DoutputDirectory="$work" >"$work/mvn.log" 2>&1; then
    log "Maven failed; its log follows"
    cat "$work/mvn.log" >&2
    rm -rf "$work"
    return 1
  fi
  rm -rf "$PLUGIN_PATH"
  mkdir -p "$PLUGIN_PATH"
  # The archive holds one folder, debezium-connector-postgres/, with the connector and its jars:
  # exactly what a Connect plugin.path entry expects.
  tar -xzf "$work"/debezium-connector-postgres-*-plugin.tar.gz -C "$PLUGIN_PATH"
  rm -rf "$work"
  echo "$DEBEZIUM_VERSION" >"$stamp"
}

cmd_fetch() {
  if [ ! -f "$LIBS/.complete" ]; then log "fetching Kafka Connect $KAFKA_VERSION from Maven Central (first run only)"; fi
  maven_fetch_jars "$LIBS" \
    "org.apache.kafka:connect-runtime:$KAFKA_VERSION" \
    "org.apache.kafka:connect-json:$KAFKA_VERSION" \
    "org.slf4j:slf4j-reload4j:1.7.36"
  fetch_plugin
}

write_config() {
  mkdir -p "$RUN_DIR"
  cat >"$WORKER_CONFIG" <<CONF
# Written by scripts/connect.sh: a standalone Connect worker for development and tests.
bootstrap.servers=$BROKERS
listeners=http://127.0.0.1:$PORT
plugin.path=$PLUGIN_PATH
offset.storage.file.filename=$OFFSETS_FILE
offset.flush.interval.ms=1000
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=true
value.converter.schemas.enable=true
CONF
  cat >"$LOG4J" <<CONF
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.io.debezium=INFO
log4j.logger.org.apache.kafka.connect.runtime.rest=WARN
CONF
}

cmd_status() {
  if pid_alive && rest_up; then
    echo "running $URL"
    return 0
  fi
  echo "stopped"
  return 3
}

wait_ready() {
  local deadline=$((SECONDS + START_TIMEOUT))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if ! pid_alive; then
      log "the worker exited; last log lines:"
      tail -n 40 "$LOG_FILE" >&2 || true
      return 1
    fi
    if rest_up; then return 0; fi
    sleep 0.5
  done
  return 1
}

cmd_start() {
  if pid_alive; then
    if wait_ready; then echo "running $URL"; return 0; fi
    return 1
  fi
  if rest_up; then
    log "port $PORT already serves a Connect REST API this script did not start; stop it or set SLUICE_CONNECT_PORT"
    return 1
  fi
  cmd_fetch
  write_config
  : >"$LOG_FILE"
  # setsid: the worker outlives this script and ignores the caller's terminal signals.
  # shellcheck disable=SC2086
  setsid java $HEAP -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j.configuration="file:$LOG4J" \
    -cp "$LIBS/*" org.apache.kafka.connect.cli.ConnectStandalone "$WORKER_CONFIG" >>"$LOG_FILE" 2>&1 </dev/null &
  echo $! >"$PID_FILE"
  if wait_ready; then
    echo "started $URL"
  else
    log "the worker did not come up within ${START_TIMEOUT}s; last log lines:"
    tail -n 40 "$LOG_FILE" >&2 || true
    cmd_stop >/dev/null || true
    return 1
  fi
}

cmd_stop() {
  daemon_stop "the worker"
}

cmd_register() {
  local file="${1:?usage: connect.sh register FILE}"
  curl -fsS -X POST -H 'Content-Type: application/json' --data-binary "@$file" "$URL/connectors"
  echo
}

cmd_reset() {
  cmd_stop >/dev/null
  rm -f "$OFFSETS_FILE"
  echo "reset"
}

case "${1:-}" in
  fetch) cmd_fetch ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  register) shift; cmd_register "$@" ;;
  reset) cmd_reset ;;
  *)
    echo "usage: $0 fetch|start|stop|status|register FILE|reset" >&2
    exit 2
    ;;
esac
