#!/usr/bin/env bash
# The demo: broker → generated Debezium events → bronze-ingestor → Bronze tables
# → silver-refiner → Silver tables (through the changelog store).
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
cargo build --release --locked -p lakehouse-admin -p bronze-ingestor -p silver-refiner >&2

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

[silver]
contracts = "$LAKEHOUSE_ROOT/deploy/local/contracts/commerce.toml"
store = ".lakehouse/store"
commit_interval = "2s"

[telemetry]
listen = ""
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

log "running silver-refiner until Silver has every Bronze snapshot"
SECONDS=0
"$BIN/silver-refiner" --config "$RUN_DIR/demo.toml" run --exit-when-idle 3s --summary-json "$RUN_DIR/silver-summary.json"
elapsed=$SECONDS
echo
echo "Silver tables (live rows per key; the generator's truth in brackets):"
python3 - "$BIN" <<'PY'
import json, subprocess, sys
bin_ = sys.argv[1]
truth = json.load(open(".lakehouse/generated-truth.json"))
live = {t.rsplit(".", 1)[-1]: v["live_rows"] for t, v in truth["topics"].items()}
bad = 0
for t in ["customers", "products", "orders", "order_items"]:
    d = json.loads(subprocess.check_output([f"{bin_}/lakehouse", "describe", f"silver.{t}", "--json"]))
    rows = int((d.get("summary") or {}).get("total-records", "0")) - int((d.get("summary") or {}).get("total-position-deletes", "0"))
    print(f"  silver.{t:<18} rows {rows:<9} [{live[t]}]")
    bad += rows != live[t]

sys.exit(1 if bad else 0)
PY
printf '  refined in %ss; run summary: %s\n' "$elapsed" "$(tr -d '\n ' < "$RUN_DIR/silver-summary.json")"
echo
echo "Rejected records (silver._rejects; 'lakehouse rejects list <entity>' shows them):"
for t in customers products orders order_items; do
  n=$("$BIN/lakehouse" --config "$RUN_DIR/demo.toml" rejects list "$t" --json --limit 0 | wc -l)
  printf '  %-18s %s\n' "$t" "$n"
done
echo
echo "Explore: $BIN/lakehouse scan bronze.orders --limit 5"
echo "         $BIN/lakehouse scan silver.orders --limit 5"
