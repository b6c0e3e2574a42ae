#!/usr/bin/env bash
# The demo: broker → generated Debezium events → bronze-ingestor → Bronze tables
# → silver-refiner → Silver tables (through the changelog store) →
# gold-aggregator → Gold rollups, a wide table and a feature table. The three workers run side by side as
# services while the events are produced, each until it has caught up.
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

PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  "$LAKEHOUSE_ROOT/deploy/local/broker.sh" stop || true
}
trap cleanup EXIT

ensure_venv "$LAKEHOUSE_ROOT/.venv" "$LAKEHOUSE_ROOT/tests/interop/requirements.txt"

log "building (release)"
ensure_build_deps
cargo build --release --locked -p lakehouse-admin -p bronze-ingestor -p silver-refiner -p gold-aggregator >&2

log "fresh start: removing .lakehouse/ and the broker's data from earlier demo runs"
"$LAKEHOUSE_ROOT/deploy/local/broker.sh" stop
rm -rf .lakehouse "$RUN_DIR/broker.db" "$RUN_DIR"/broker.db-*
"$LAKEHOUSE_ROOT/deploy/local/broker.sh" start sqlite

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

[gold]
tables = "$LAKEHOUSE_ROOT/deploy/local/gold/commerce.toml"
silver_store = ".lakehouse/store"
state = ".lakehouse/gold-state"
commit_interval = "2s"

[telemetry]
listen = ""
TOML

# The three workers as services, side by side; each exits once it has caught
# up with its input and nothing new arrived for a while (--exit-when-idle).
log "producing $EVENTS Debezium events while the workers run (logs in $RUN_DIR/{bronze,silver,gold}.log)"
SECONDS=0
"$BIN/lakehouse" generate --brokers "$BROKER" --events "$EVENTS" --seed 42 --wall-clock --truth .lakehouse/generated-truth.json &
GEN_PID=$!; PIDS+=("$GEN_PID")
# The generator creates the four topics before its first message; the
# ingestor's pattern subscription finds them when it starts.
sleep 3
log "starting bronze-ingestor, silver-refiner and gold-aggregator side by side"
"$BIN/bronze-ingestor" --config "$RUN_DIR/demo.toml" run --exit-when-idle 5s 2>"$RUN_DIR/bronze.log" &
BRONZE_PID=$!; PIDS+=("$BRONZE_PID")
"$BIN/silver-refiner" --config "$RUN_DIR/demo.toml" run --exit-when-idle 10s \
  --summary-json "$RUN_DIR/silver-summary.json" 2>"$RUN_DIR/silver.log" &
SILVER_PID=$!; PIDS+=("$SILVER_PID")
"$BIN/gold-aggregator" --config "$RUN_DIR/demo.toml" run --exit-when-idle 10s \
  --summary-json "$RUN_DIR/gold-summary.json" 2>"$RUN_DIR/gold.log" &
GOLD_PID=$!; PIDS+=("$GOLD_PID")

wait "$GEN_PID" || die "the generator failed"
wait "$BRONZE_PID" || die "bronze-ingestor failed; see $RUN_DIR/bronze.log"
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

wait "$SILVER_PID" || die "silver-refiner failed; see $RUN_DIR/silver.log"
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
printf '  Bronze + Silver done after %ss; Silver run summary: %s\n' "$elapsed" "$(tr -d '\n ' < "$RUN_DIR/silver-summary.json")"

wait "$GOLD_PID" || die "gold-aggregator failed; see $RUN_DIR/gold.log"
echo
echo "Gold tables (read by pyiceberg; the same queries run over Silver by DuckDB must agree):"
"$LAKEHOUSE_ROOT/.venv/bin/python" - "$LAKEHOUSE_ROOT" <<'PY'
import json, sys
from pyiceberg.catalog.sql import SqlCatalog
import duckdb
root = sys.argv[1]
cat = SqlCatalog("lakehouse", uri=f"sqlite:///{root}/.lakehouse/catalog.db", warehouse=f"{root}/.lakehouse/warehouse")
con = duckdb.connect()
for t in ["order_status_daily", "daily_metrics", "order_lines_wide", "customer_features"]:
    con.register(t, cat.load_table(f"gold.{t}").scan().to_arrow())
print("  gold.daily_metrics, daily revenue by product (the latest day):")
for row in con.execute("""SELECT date, product, revenue, orders, round(avg_order_value, 2) FROM daily_metrics
                          WHERE date = (SELECT max(date) FROM daily_metrics WHERE product IS NOT NULL) AND product IS NOT NULL
                          ORDER BY revenue DESC""").fetchall():
    print("   ", row)
print("  gold.order_status_daily, the latest 3 days of paid orders:")
for row in con.execute("""SELECT window_start, status, revenue, orders, round(avg_order_value, 2), smallest_order,
                                 largest_order, customers FROM order_status_daily
                          WHERE "window" = 'day' AND status = 'paid' ORDER BY window_start DESC LIMIT 3""").fetchall():
    print("   ", row)
print("  gold.order_lines_wide, a wide row (an order line with its order, product and customer):")
cur = con.execute("""SELECT * FROM order_lines_wide WHERE first_name IS NOT NULL AND product IS NOT NULL
                     ORDER BY id DESC LIMIT 1""")
names = [d[0] for d in cur.description]
for row in cur.fetchall():
    print("    " + ", ".join(f"{n}={v}" for n, v in zip(names, row)))
print("  gold.customer_features, a customer's feature rows (as of each Monday; churn = no order in the 60 days after):")
cur = con.execute("""SELECT * FROM customer_features WHERE customer_id = (SELECT customer_id FROM customer_features
                     WHERE orders_90d > 1 AND churn IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1)
                     AND orders_90d > 0 AND churn IS NOT NULL ORDER BY feature_date DESC LIMIT 3""")
names = [d[0] for d in cur.description]
for row in cur.fetchall():
    print("    " + ", ".join(f"{n}={round(v, 2) if isinstance(v, float) else v}" for n, v in zip(names, row)))
PY
"$LAKEHOUSE_ROOT/.venv/bin/python" "$LAKEHOUSE_ROOT/tests/interop/gold_check.py" "sqlite:///$LAKEHOUSE_ROOT/.lakehouse/catalog.db" \
  lakehouse "$LAKEHOUSE_ROOT/.lakehouse/warehouse" "$LAKEHOUSE_ROOT/deploy/local/gold/commerce.toml" \
  >"$RUN_DIR/gold-check.json"
python3 - "$RUN_DIR/gold-check.json" <<'PY' || die "Gold differs from DuckDB over Silver"
import json, sys
report = json.load(open(sys.argv[1]))
bad = 0
for table, v in report.items():
    print(f"  gold.{table:<22} rows {v['gold_rows']:<7} DuckDB over Silver: {v['expected_rows']:<7} differing {v['differing']}")
    bad += v["differing"] + abs(v["gold_rows"] - v["expected_rows"])
sys.exit(1 if bad else 0)
PY
printf '  all three workers done after %ss; Gold run summary: %s\n' "$SECONDS" "$(tr -d '\n ' < "$RUN_DIR/gold-summary.json")"
python3 - "$RUN_DIR/gold-summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"  freshness, source event time → visible in Gold (lakehouse_gold_freshness_seconds): "
      f"p50 {s.get('freshness_p50_ms')} ms, p99 {s.get('freshness_p99_ms')} ms, max {s.get('freshness_max_ms')} ms "
      f"(commit intervals 2 s per layer)")
PY
echo
echo "Rejected records (silver._rejects; 'lakehouse rejects list <entity>' shows them):"
for t in customers products orders order_items; do
  n=$("$BIN/lakehouse" --config "$RUN_DIR/demo.toml" rejects list "$t" --json --limit 0 | wc -l)
  printf '  %-18s %s\n' "$t" "$n"
done
echo
echo "Explore: $BIN/lakehouse scan bronze.orders --limit 5"
echo "         $BIN/lakehouse scan silver.orders --limit 5"
echo "         $BIN/lakehouse scan gold.order_status_daily --limit 5"
