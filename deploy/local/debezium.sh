#!/usr/bin/env bash
# Debezium from a live PostgreSQL into Apache Kafka, on 127.0.0.1:
#
#   deploy/local/debezium.sh start    # private PostgreSQL (wal_level=logical) + Kafka Connect standalone
#   deploy/local/debezium.sh stop
#   deploy/local/debezium.sh psql ... # psql as the CDC role on the CDC database
#
# PostgreSQL: a cluster of its own (initdb into $RUN_DIR/pg-cdc, port $CDC_PG_PORT,
# default 25432) with wal_level=logical, so the shared test PostgreSQL on 5432 is never
# reconfigured or restarted. Kafka Connect (org.apache.kafka:connect-runtime, in the
# Apache Kafka jars of kafka.sh) runs in standalone mode with
# io.debezium:debezium-connector-postgres 3.6.1.Final (pgoutput), jars from Maven
# Central cached under ~/.cache/lakehouse. The broker is $CDC_KAFKA (default
# 127.0.0.1:29092, see kafka.sh). Topics: $CDC_TOPIC_PREFIX.<schema>.<table> for the
# tables in $CDC_TABLES (default public.customers).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DEBEZIUM_VERSION="${DEBEZIUM_VERSION:-3.6.1.Final}"
CDC_PG_PORT="${CDC_PG_PORT:-25432}"
CDC_KAFKA="${CDC_KAFKA:-127.0.0.1:29092}"
CDC_TOPIC_PREFIX="${CDC_TOPIC_PREFIX:-cdc}"
CDC_TABLES="${CDC_TABLES:-public.customers}"
CDC_CONNECT_PORT="${CDC_CONNECT_PORT:-28083}"
PG_DIR="$RUN_DIR/pg-cdc"
CONNECT_DIR="$RUN_DIR/connect"
CONNECT_PID="$RUN_DIR/connect.pid"

as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_bin() { echo "/usr/lib/postgresql/$(ls /usr/lib/postgresql | sort -V | tail -1)/bin/$1"; }
cdc_psql() { PGPASSWORD="$PG_PASSWORD" psql -h 127.0.0.1 -p "$CDC_PG_PORT" -U "$PG_ROLE" -d cdc -v ON_ERROR_STOP=1 "$@"; }

start_postgres() {
  [ -x "$(pg_bin initdb)" ] || die "PostgreSQL server binaries not found (apt-get install postgresql)"
  if [ ! -f "$PG_DIR/PG_VERSION" ]; then
    mkdir -p "$PG_DIR"; chown postgres: "$PG_DIR" 2>/dev/null || true
    as_postgres "$(pg_bin initdb)" -D "$PG_DIR" -A trust -U postgres >"$RUN_DIR/pg-cdc-initdb.log" 2>&1 \
      || { cat "$RUN_DIR/pg-cdc-initdb.log" >&2; die "initdb failed"; }
  fi
  if ! pg_isready -h 127.0.0.1 -p "$CDC_PG_PORT" -q 2>/dev/null; then
    log "starting PostgreSQL (wal_level=logical) on 127.0.0.1:$CDC_PG_PORT"
    as_postgres "$(pg_bin pg_ctl)" -D "$PG_DIR" -l "$PG_DIR/server.log" -w -t 60 start \
      -o "-p $CDC_PG_PORT -c listen_addresses=127.0.0.1 -k $PG_DIR -c wal_level=logical -c max_wal_senders=4 -c max_replication_slots=4" \
      >&2 || { tail -20 "$PG_DIR/server.log" >&2; die "PostgreSQL did not start"; }
  fi
  as_postgres psql -h "$PG_DIR" -p "$CDC_PG_PORT" -U postgres -q -v ON_ERROR_STOP=1 >/dev/null <<EOF
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_ROLE') THEN
    CREATE ROLE $PG_ROLE LOGIN REPLICATION CREATEDB PASSWORD '$PG_PASSWORD';
  END IF; END \$\$;
EOF
  if ! as_postgres psql -h "$PG_DIR" -p "$CDC_PG_PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='cdc'" | grep -q 1; then
    as_postgres psql -h "$PG_DIR" -p "$CDC_PG_PORT" -U postgres -q -c "CREATE DATABASE cdc OWNER $PG_ROLE" >/dev/null
  fi
}

start_connect() {
  if [ -f "$CONNECT_PID" ] && kill -0 "$(cat "$CONNECT_PID")" 2>/dev/null; then
    log "Kafka Connect already running (pid $(cat "$CONNECT_PID"))"; return 0
  fi
  local kafka_cp dbz_cp cp java
  kafka_cp="$(ensure_kafka_jars)"
  dbz_cp="$(ensure_maven_jars "debezium-$DEBEZIUM_VERSION" "io.debezium:debezium-connector-postgres:$DEBEZIUM_VERSION")"
  # Debezium's own jars first (its Jackson is newer); the Kafka and Connect APIs from the broker's jars.
  dbz_cp="$(echo "$dbz_cp" | tr ':' '\n' | grep -Ev '/(kafka-clients|connect-api|slf4j-api|lz4-java|snappy-java|zstd-jni)-' | paste -sd:)"
  cp="$dbz_cp:$kafka_cp"
  java="${JAVA_HOME:+$JAVA_HOME/bin/}java"
  mkdir -p "$CONNECT_DIR"
  cat >"$CONNECT_DIR/worker.properties" <<EOF
bootstrap.servers=$CDC_KAFKA
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=true
value.converter.schemas.enable=true
offset.storage.file.filename=$CONNECT_DIR/offsets
offset.flush.interval.ms=1000
listeners=http://127.0.0.1:$CDC_CONNECT_PORT
plugin.discovery=only_scan
EOF
  cat >"$CONNECT_DIR/postgres.properties" <<EOF
name=lakehouse-postgres
connector.class=io.debezium.connector.postgresql.PostgresConnector
tasks.max=1
plugin.name=pgoutput
database.hostname=127.0.0.1
database.port=$CDC_PG_PORT
database.user=$PG_ROLE
database.password=$PG_PASSWORD
database.dbname=cdc
topic.prefix=$CDC_TOPIC_PREFIX
table.include.list=$CDC_TABLES
slot.name=lakehouse_cdc
publication.name=lakehouse_cdc
publication.autocreate.mode=filtered
snapshot.mode=initial
tombstones.on.delete=true
skipped.operations=none
topic.creation.default.replication.factor=1
topic.creation.default.partitions=1
EOF
  log "starting Kafka Connect (standalone) with Debezium $DEBEZIUM_VERSION → $CDC_KAFKA"
  (cd "$CONNECT_DIR" && exec "$java" -Xmx512m -cp "$cp" org.apache.kafka.connect.cli.ConnectStandalone \
    "$CONNECT_DIR/worker.properties" "$CONNECT_DIR/postgres.properties") >"$RUN_DIR/connect.log" 2>&1 &
  echo $! >"$CONNECT_PID"
  local pid; pid="$(cat "$CONNECT_PID")"
  for _ in $(seq 900); do
    grep -q "Starting streaming\|Searching for WAL resume position\|streaming from" "$RUN_DIR/connect.log" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { tail -40 "$RUN_DIR/connect.log" >&2; rm -f "$CONNECT_PID"; die "Kafka Connect exited at start"; }
    sleep 0.2
  done
  grep -q "Starting streaming\|Searching for WAL resume position\|streaming from" "$RUN_DIR/connect.log" \
    || { tail -40 "$RUN_DIR/connect.log" >&2; die "Debezium did not start streaming in 180 s"; }
  log "Kafka Connect up (pid $pid), log $RUN_DIR/connect.log"
}

stop() {
  stop_pidfile "$CONNECT_PID" "Kafka Connect"
  if [ -f "$PG_DIR/postmaster.pid" ]; then
    as_postgres "$(pg_bin pg_ctl)" -D "$PG_DIR" -m fast -w stop >&2 || true
  fi
  log "Debezium stack stopped"
}

case "${1:-}" in
  start) mkdir -p "$RUN_DIR"; start_postgres; start_connect ;;
  start-postgres) mkdir -p "$RUN_DIR"; start_postgres ;;
  start-connect) start_connect ;;
  stop) stop ;;
  psql) shift; cdc_psql "$@" ;;
  *) echo "usage: $0 start | start-postgres | start-connect | stop | psql ..." >&2; exit 2 ;;
esac
