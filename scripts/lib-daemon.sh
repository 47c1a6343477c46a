# shellcheck shell=bash
# Background Java services (the Kafka broker, the Kafka Connect worker) tracked by a pid file.
# Sourced by kafka.sh and connect.sh, which set PID_FILE and define `log` before calling these.

# True while the process in $PID_FILE runs.
pid_alive() {
  [ -f "$PID_FILE" ] || return 1
  local pid
  pid="$(cat "$PID_FILE")"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# Stops the process in $PID_FILE: TERM, then KILL after 30 s (a controlled shutdown takes a few
# seconds). $1 names it in the message. Prints `stopped`.
daemon_stop() {
  local what="$1"
  if ! pid_alive; then
    rm -f "$PID_FILE"
    echo "stopped"
    return 0
  fi
  local pid
  pid="$(cat "$PID_FILE")"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + 30))
  while kill -0 "$pid" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      log "$what did not stop within 30 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    sleep 0.2
  done
  rm -f "$PID_FILE"
  echo "stopped"
}
