#!/usr/bin/env bash
# Runs every test: installs what is missing (tansu broker, Python venv with
# pinned pyiceberg / pyarrow, the Java readers), starts the services (broker on 127.0.0.1,
# PostgreSQL if the machine has it), runs unit, integration and interop tests,
# stops what it started.
#
#   tests/run.sh              # everything
#   tests/run.sh -- <filter>  # pass a filter to cargo test
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../deploy/local/common.sh"
source "$(dirname "${BASH_SOURCE[0]}")/apache_kafka.sh"
cd "$LAKEHOUSE_ROOT"

export LAKEHOUSE_RUN_DIR="$RUN_DIR/tests"
RUN_DIR="$LAKEHOUSE_RUN_DIR"
mkdir -p "$RUN_DIR"
export BROKER_PORT="${TEST_BROKER_PORT:-19092}"
BROKER="127.0.0.1:$BROKER_PORT"
BROKER_SH="$LAKEHOUSE_ROOT/deploy/local/broker.sh"

cleanup() {
  LAKEHOUSE_RUN_DIR="$RUN_DIR" BROKER_PORT="$BROKER_PORT" "$BROKER_SH" stop || true
  stop_apache_kafka || true
  stop_postgres_if_started || true
}
trap cleanup EXIT

# 1. Tools.
command -v cargo >/dev/null || die "cargo is required (rustup)"
ensure_build_deps
ensure_tansu
ensure_tzdata
VENV="$LAKEHOUSE_ROOT/.venv"
REQ="$LAKEHOUSE_ROOT/tests/interop/requirements.txt"
ensure_venv "$VENV" "$REQ"
export LAKEHOUSE_TEST_PYTHON="$VENV/bin/python"
# Java Iceberg and Paimon readers (Maven, cached per content of tests/interop/java).
ensure_java_readers

# 2. PostgreSQL catalog: installed from Debian's packages if missing, started if
# down; a password role for TCP is made over the local socket as the postgres
# OS user (Debian's pg_hba asks TCP clients for a password).
ensure_postgres
PG_URL="$(pg_test_database "lakehouse_test_$$")"
export LAKEHOUSE_TEST_PG_URL="$PG_URL"

# 3. Broker: durable SQLite engine (exact seeks, survives crashes), fresh per run.
rm -f "$RUN_DIR"/broker.db*
LAKEHOUSE_RUN_DIR="$RUN_DIR" BROKER_PORT="$BROKER_PORT" "$BROKER_SH" start sqlite
export LAKEHOUSE_TEST_BROKER="$BROKER"
# 3b. The reference broker, Apache Kafka 4.x, and a 3.x one beside it (tests/apache_kafka.sh).
start_apache_kafka

# 4. Build once (release: the same artifacts serve tests, demo and benchmarks).
# --all-targets: the same feature set `cargo test` resolves (dev-dependencies
# included), so the test step below compiles nothing twice.
log "building"
cargo build --release --locked --workspace --all-targets >&2
export LAKEHOUSE_BIN_DIR="$CARGO_TARGET_DIR/release"
if [ -d "$LAKEHOUSE_ROOT/../shared/fixtures/debezium" ]; then
  export LAKEHOUSE_FIXTURES="$(cd "$LAKEHOUSE_ROOT/../shared/fixtures/debezium" && pwd)"
fi

# 5. Tests.
shift_args=()
if [ "${1:-}" = "--" ]; then shift; shift_args=("$@"); fi
log "running tests"
cargo test --release --locked --workspace --no-fail-fast -- --test-threads=2 "${shift_args[@]}"

pg_drop_database "${PG_URL##*/}"
log "all tests passed"
