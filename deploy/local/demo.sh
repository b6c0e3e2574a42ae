#!/usr/bin/env bash
# The demo: broker → generated Debezium events → bronze-ingestor → Bronze tables.
#
#   deploy/local/demo.sh [EVENTS]      # default 300000
#
# Starts the broker (tansu, SQLite storage) on 127.0.0.1:9092, produces EVENTS
# change events for a commerce schema, runs bronze-ingestor until everything
# is committed, prints per-table row counts and snapshot ids, and stops what it
# started. The lake stays in .lakehouse/ (catalog .lakehouse/catalog.db, catalog
# name "lakehouse", warehouse .lakehouse/warehouse) for you to explore:
#   target/release/lakehouse tables
#   target/release/lakehouse scan bronze.orders --limit 5
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$LAKEHOUSE_ROOT"

EVENTS=${1:-300000}
BIN="$CARGO_TARGET_DIR/release"

cleanup() { "$LAKEHOUSE_ROOT/deploy/local/broker.sh" stop || true; }
trap cleanup EXIT

log "building (release)"
cargo build --release --locked -p lakehouse-admin -p bronze-ingestor >&2

log "fresh start: removing .lakehouse/ and the broker's data from earlier demo runs"
"$LAKEHOUSE_ROOT/deploy/local/broker.sh" stop
rm -rf .lakehouse "$RUN_DIR/broker.db" "$RUN_DIR"/broker.db-*
"$LAKEHOUSE_ROOT/deploy/local/broker.sh" start sqlite

log "producing $EVENTS Debezium events"
"$BIN/lakehouse" generate --brokers "$BROKER" --events "$EVENTS" --seed 42 --truth .lakehouse/generated-truth.json

mkdir -p "$RUN_DIR"
cat >"$RUN_DIR/demo.toml" <<TOML
[kafka]
brokers = "$BROKER"
group_id = "demo-bronze"
topic_pattern = "^commerce\\\\..*"

[bronze]
commit_interval = "2s"
TOML

log "running bronze-ingestor until all events are committed"
SECONDS=0
"$BIN/bronze-ingestor" --config "$RUN_DIR/demo.toml" run --exit-when-idle 3s
elapsed=$SECONDS

echo
echo "Bronze tables (catalog .lakehouse/catalog.db, warehouse .lakehouse/warehouse):"
total=0
for t in $("$BIN/lakehouse" tables bronze); do
  json=$("$BIN/lakehouse" describe "$t" --json)
  rows=$(printf '%s' "$json" | python3 -c 'import json,sys; d=json.load(sys.stdin); print((d.get("summary") or {}).get("total-records","0"))')
  snap=$(printf '%s' "$json" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["current_snapshot_id"])')
  nsnap=$(printf '%s' "$json" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["snapshot_count"])')
  printf '  %-24s rows %-9s snapshots %-4s current snapshot %s\n' "$t" "$rows" "$nsnap" "$snap"
  total=$((total + rows))
done
printf '  %-24s rows %s (produced %s), ingested in %ss\n' "total" "$total" "$EVENTS" "$elapsed"
[ "$total" -eq "$EVENTS" ] || die "Bronze holds $total rows but $EVENTS events were produced"
echo
echo "Explore: $BIN/lakehouse scan bronze.orders --limit 5"
