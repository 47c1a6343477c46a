#!/usr/bin/env bash
# Prepares the local PostgreSQL for change capture and loads the employee schema. Idempotent.
#
# Usage: scripts/postgres-setup.sh [--check] [--no-init]
#   (no flag)  make sure wal_level=logical and TimeZone=UTC (restarting PostgreSQL only when
#              wal_level had to change), then apply init-scripts/*.sql (safe to re-run)
#   --check    change nothing: print the settings and exit 1 if wal_level is not logical
#   --no-init  configure the server but do not apply init-scripts/
#
# Environment: PGHOST (127.0.0.1), PGPORT (5432), PGUSER (postgres), PG_CLUSTER_VERSION (15),
# PG_CLUSTER_NAME (main). The restart uses pg_ctlcluster, so run as root or as the postgres user.
set -euo pipefail

export PGHOST="${PGHOST:-127.0.0.1}" PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
CLUSTER_VERSION="${PG_CLUSTER_VERSION:-15}"
CLUSTER_NAME="${PG_CLUSTER_NAME:-main}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

check=0 init=1
for arg in "$@"; do
  case "$arg" in
    --check) check=1 ;;
    --no-init) init=0 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "postgres-setup: unknown argument $arg" >&2; exit 2 ;;
  esac
done

log() { echo "postgres-setup: $*" >&2; }
setting() { psql -X -At -d postgres -c "SHOW $1"; }

wait_ready() {
  for _ in $(seq 1 60); do
    if psql -X -At -d postgres -c 'SELECT 1' >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  log "PostgreSQL at $PGHOST:$PGPORT did not accept connections within 30s"
  return 1
}

wait_ready
wal_level="$(setting wal_level)"
timezone="$(setting TimeZone)"
log "wal_level=$wal_level TimeZone=$timezone max_replication_slots=$(setting max_replication_slots) max_wal_senders=$(setting max_wal_senders)"

if [[ $check == 1 ]]; then
  [[ $wal_level == logical ]] || { log "wal_level is $wal_level; run scripts/postgres-setup.sh to set it to logical"; exit 1; }
  exit 0
fi

# Debezium and the native source read TIMESTAMP wall clocks as UTC; keep the server in UTC so that
# CURRENT_TIMESTAMP defaults are UTC wall clocks too. A reload is enough for TimeZone.
case "$timezone" in
  UTC|Etc/UTC) ;;
  *) log "setting TimeZone = 'UTC' (was $timezone)"
     psql -X -q -d postgres -c "ALTER SYSTEM SET timezone = 'UTC'" -c 'SELECT pg_reload_conf()' >/dev/null ;;
esac

if [[ $wal_level != logical ]]; then
  log "setting wal_level = logical (was $wal_level) and restarting PostgreSQL $CLUSTER_VERSION/$CLUSTER_NAME"
  psql -X -q -d postgres -c "ALTER SYSTEM SET wal_level = logical" >/dev/null
  pg_ctlcluster --skip-systemctl-redirect "$CLUSTER_VERSION" "$CLUSTER_NAME" restart
  wait_ready
  wal_level="$(setting wal_level)"
  [[ $wal_level == logical ]] || { log "wal_level is still $wal_level after the restart"; exit 1; }
  log "wal_level is now logical"
fi

if [[ $init == 1 ]]; then
  for f in "$ROOT"/init-scripts/*.sql; do
    log "applying ${f#"$ROOT"/}"
    PGOPTIONS='-c client_min_messages=warning' psql -X -q -v ON_ERROR_STOP=1 -d postgres -f "$f" >/dev/null
  done
fi
log "ready: wal_level=$wal_level TimeZone=$(setting TimeZone)"
