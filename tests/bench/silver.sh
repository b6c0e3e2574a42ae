#!/usr/bin/env bash
# Silver benchmark (figures, not a test): Bronze → Silver through the changelog store.
#
#   tests/bench.sh silver [EVENTS] [PEER_ROWS]    # default 5000000, peer min(EVENTS, 200000)
#
# 1. Throughput: EVENTS generated Debezium events (commerce schema, 4 topics × 4
#    partitions) on tansu's memory engine, ingested into committed Bronze, then ONE
#    silver-refiner (the demo contracts) refines the whole backlog into committed Silver
#    under GNU time: rows per CPU-second (user + system) and peak RSS.
# 2. Python peer (tests/bench/silver_peer.py): the same refinement, the straightforward
#    way (pyarrow reads Bronze, json.loads, typing and rules, pyiceberg Table.upsert /
#    delete per batch) on PEER_ROWS of the same Bronze rows: rows per CPU-second.
# 3. Freshness: a fresh lake on tansu's SQLite engine; events produced at a steady
#    20,000/s for FRESH_SECONDS (default 60) while bronze-ingestor and silver-refiner run
#    side by side (Bronze commit_interval 1s; Silver commit_interval 1s, poll 250ms).
#    Bronze commit → visible in Silver per Silver commit (from the oldest Bronze snapshot
#    of its batch, the worst row of the commit): p50 / p99 / max over the run.
#
# Prints the figures, then
#   BENCH silver rows_per_s=… rows_per_cpu_s=… python_peer_ratio=… freshness_p99_ms=… rss_mib=…
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../deploy/local/common.sh"
cd "$LAKEHOUSE_ROOT"

EVENTS=${1:-5000000}
PEER_ROWS=${2:-$(( EVENTS < 200000 ? EVENTS : 200000 ))}
FRESH_SECONDS=${FRESH_SECONDS:-60}
RATE=20000

source "$LAKEHOUSE_ROOT/tests/bench/lib.sh"
bench_setup bench-silver 29094
VENV="${BENCH_VENV:-$LAKEHOUSE_ROOT/.venv-bench}"   # BENCH_VENV: reuse a venv with these pins
ensure_venv "$VENV" "$LAKEHOUSE_ROOT/tests/bench/requirements.txt"

log "building (release)"
# The suite's feature set (tests/run.sh): see tests/bench/gold.sh.
cargo build --release --locked --workspace --all-targets >&2
BIN="$CARGO_TARGET_DIR/release"
CONTRACTS="$LAKEHOUSE_ROOT/deploy/local/contracts/commerce.toml"

config() { # lake-dir silver-commit-interval silver-poll-interval
  cat <<TOML
[catalog]
url = "sqlite://$1/catalog.db"
warehouse = "$1/warehouse"
[kafka]
brokers = "$BROKER"
group_id = "bench-silver"
topic_pattern = "^bench\\\\..*"
[bronze]
commit_interval = "1s"
[silver]
contracts = "$CONTRACTS"
store = "$1/store"
commit_interval = "$2"
poll_interval = "$3"
[telemetry]
listen = ""
TOML
}

# 1. Throughput over a committed Bronze backlog.
LAKEHOUSE_RUN_DIR="$RUN_DIR" BROKER_PORT="$BROKER_PORT" "$BROKER_SH" start memory
log "producing $EVENTS events"
"$BIN/lakehouse" generate --brokers "$BROKER" --topic-prefix bench --events "$EVENTS" --seed 1 \
  --partitions 4 --truth "$WORK/truth.json" --quiet
config "$WORK/lake" 5s 1s >"$WORK/lake.toml"
log "bronze-ingestor: the backlog into Bronze"
"$BIN/bronze-ingestor" --config "$WORK/lake.toml" run --exit-when-idle 2s --summary-json "$WORK/ingestor.json" \
  2>"$WORK/ingestor.log"
log "silver-refiner: Bronze → Silver (one refiner, defaults: commit_interval 5s, max_batch_records 200k)"
/usr/bin/time -f '%e %U %S %M' -o "$WORK/refiner.time" \
  "$BIN/silver-refiner" --config "$WORK/lake.toml" run --exit-when-idle 2s --summary-json "$WORK/refiner.json" \
  2>"$WORK/refiner.log"
LAKEHOUSE_RUN_DIR="$RUN_DIR" BROKER_PORT="$BROKER_PORT" "$BROKER_SH" stop

# 2. The Python peer on the same Bronze rows.
log "Python peer: pyarrow + json.loads + pyiceberg upsert ($PEER_ROWS Bronze rows)"
peer=$("$VENV/bin/python" tests/bench/silver_peer.py --uri "sqlite:///$WORK/lake/catalog.db" \
  --warehouse "file://$WORK/lake/warehouse" --rows "$PEER_ROWS")

# 3. Freshness with both workers live, events at a steady rate.
rm -f "$RUN_DIR"/broker.db*
LAKEHOUSE_RUN_DIR="$RUN_DIR" BROKER_PORT="$BROKER_PORT" "$BROKER_SH" start sqlite
FRESH_EVENTS=$(( RATE * FRESH_SECONDS ))
config "$WORK/live" 1s 250ms >"$WORK/live.toml"
log "freshness: $FRESH_EVENTS events at $RATE/s, bronze-ingestor and silver-refiner running"
"$BIN/lakehouse" generate --brokers "$BROKER" --topic-prefix bench --events "$FRESH_EVENTS" --seed 2 \
  --partitions 4 --rate "$RATE" --truth "$WORK/live-truth.json" --quiet &
GEN=$!; PIDS+=("$GEN")
sleep 2
"$BIN/bronze-ingestor" --config "$WORK/live.toml" run --exit-when-idle 10s --summary-json "$WORK/live-ingestor.json" \
  2>"$WORK/live-ingestor.log" &
ING=$!; PIDS+=("$ING")
sleep 3
"$BIN/silver-refiner" --config "$WORK/live.toml" run --exit-when-idle 10s --summary-json "$WORK/live-refiner.json" \
  2>"$WORK/live-refiner.log" &
REF=$!; PIDS+=("$REF")
wait "$GEN"; wait "$ING"; wait "$REF"
PIDS=()

python3 - "$EVENTS" "$WORK/refiner.json" "$WORK/refiner.time" "$peer" "$WORK/live-refiner.json" "$WORK/truth.json" <<'PY'
import json, sys
events = int(sys.argv[1])
ref = json.load(open(sys.argv[2]))
wall, user, sys_, rss_kb = open(sys.argv[3]).read().split()
peer = json.loads(sys.argv[4])
live = json.load(open(sys.argv[5]))
truth = json.load(open(sys.argv[6]))
cpu = float(user) + float(sys_)
rows = ref["bronze_rows"]
busy = max(float(wall) - 2.0, 1e-9)  # --exit-when-idle 2s
per_cpu = rows / cpu
peer_per_cpu = peer["rows"] / peer["cpu_seconds"]
rss = int(rss_kb) / 1024
p99 = live.get("bronze_to_silver_p99_ms")
print()
print(f"backlog                 {events} events into Bronze; the refiner read {rows} Bronze rows "
      f"({ref['upserted']} upserted, {ref['deleted']} deleted, {ref['rejected']} rejected, {ref['commits']} Silver commits)")
print(f"silver-refiner          {rows/busy:,.0f} rows/s; {per_cpu:,.0f} rows per CPU-second "
      f"({cpu:.1f} CPU s, {float(wall):.1f} s wall incl. 2 s idle exit); peak RSS {rss:.0f} MiB")
print(f"Python peer             {peer_per_cpu:,.0f} rows per CPU-second on {peer['rows']} rows "
      f"({peer['cpu_seconds']:.1f} CPU s, {peer['seconds']:.1f} s, {peer['max_rss_mib']:.0f} MiB RSS); "
      f"the refiner is {per_cpu/peer_per_cpu:.1f}x")
print(f"freshness (live, 20k/s) Bronze commit -> visible in Silver: p50 {live.get('bronze_to_silver_p50_ms')} ms, "
      f"p99 {p99} ms, max {live.get('bronze_to_silver_max_ms')} ms over {live['commits']} Silver commits")
print(f"BENCH silver rows_per_s={rows/busy:.0f} rows_per_cpu_s={per_cpu:.0f} python_peer_ratio={per_cpu/peer_per_cpu:.1f} "
      f"freshness_p99_ms={p99} rss_mib={rss:.0f}")
PY
