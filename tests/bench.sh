#!/usr/bin/env bash
# Benchmarks (figures, not tests). Starts what it needs, stops it, prints
# figures and one machine-readable BENCH line.
#
#   tests/bench.sh bronze [EVENTS]     # default 5000000 (the RSS backlog); 1M for the peers
#   tests/bench.sh store [ROWS]        # changelog-store upserts, default 10M rows
#   tests/bench.sh silver [EVENTS] [PEER_ROWS]  # Bronze → Silver, default 5M events (tests/bench/silver.sh)
#   tests/bench.sh gold [SECONDS] [RATES]  # the whole pipeline: freshness, rates kept up with, delta vs recompute
#   tests/bench.sh tables [COMMITS]    # commit latency over simulated days of Bronze commits, default 20000 (~28 h at one per 5 s; 120960 = a week)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../deploy/local/common.sh"
cd "$LAKEHOUSE_ROOT"

what=${1:-}
case "$what" in
  bronze) ;;
  store) shift; exec "$LAKEHOUSE_ROOT/tests/bench/store.sh" "$@" ;;
  silver) shift; exec "$LAKEHOUSE_ROOT/tests/bench/silver.sh" "$@" ;;
  gold) shift; exec "$LAKEHOUSE_ROOT/tests/bench/gold.sh" "$@" ;;
  tables) shift; exec "$LAKEHOUSE_ROOT/tests/bench/tables.sh" "$@" ;;
  *) echo "usage: $0 bronze [EVENTS] | store [ROWS] | silver [EVENTS] [PEER_ROWS] | gold [SECONDS] [RATES] | tables [COMMITS]" >&2; exit 2 ;;
esac
EVENTS=${2:-5000000}
PEER_EVENTS=$(( EVENTS < 1000000 ? EVENTS : 1000000 ))

source "$LAKEHOUSE_ROOT/tests/bench/lib.sh"
bench_setup bench 29092

VENV="${BENCH_VENV:-$LAKEHOUSE_ROOT/.venv-bench}"   # BENCH_VENV: reuse a venv with these pins
REQ="$LAKEHOUSE_ROOT/tests/bench/requirements.txt"
ensure_venv "$VENV" "$REQ"

log "building (release)"
# Same feature set as tests/run.sh: one set of release artifacts serves both.
ensure_build_deps
cargo build --release --locked --workspace --all-targets >&2
BIN="$CARGO_TARGET_DIR/release"

# Memory engine: fast, read once from the start (its seeks are inexact, which
# a from-the-beginning drain never needs).
LAKEHOUSE_RUN_DIR="$RUN_DIR" BROKER_PORT="$BROKER_PORT" "$BROKER_SH" start memory
PATTERN='^bench\..*'
log "producing $EVENTS events"
"$BIN/lakehouse" generate --brokers "$BROKER" --topic-prefix bench --events "$EVENTS" --seed 1 \
  --partitions 4 --truth "$WORK/truth.json" --quiet
MB=$(python3 -c "import json;t=json.load(open('$WORK/truth.json'));print(sum(x['bytes'] for x in t['topics'].values())/1e6)")
log "backlog: $EVENTS events, $MB MB"

log "(broker) bare rdkafka consumer drain"
drain=$("$BIN/bench-bronze" drain --brokers "$BROKER" --pattern "$PATTERN" --events "$EVENTS")

log "(a)+(d) bronze-ingestor, exactly-once, into committed Bronze"
cat >"$WORK/bronze.toml" <<TOML
[catalog]
url = "sqlite://$WORK/lake/catalog.db"
warehouse = "$WORK/lake/warehouse"
[kafka]
brokers = "$BROKER"
group_id = "bench-bronze"
topic_pattern = "^bench\\\\..*"
[bronze]
# The default is 5s; 1s keeps the last partial batch from dominating a short run.
commit_interval = "1s"
[telemetry]
listen = ""
TOML
/usr/bin/time -f '%e %U %S %M' -o "$WORK/ingestor.time" \
  "$BIN/bronze-ingestor" --config "$WORK/bronze.toml" run --exit-when-idle 2s --summary-json "$WORK/ingestor.json" \
  2>"$WORK/ingestor.log"

log "(b) in-process limit: decode + Arrow + Parquet, no Kafka, no commit ($PEER_EVENTS events)"
limit=$("$BIN/bench-bronze" limit --brokers "$BROKER" --pattern "$PATTERN" --events "$PEER_EVENTS" --out "$WORK/limit")

log "(c) Python peer: confluent-kafka + pyarrow + pyiceberg ($PEER_EVENTS events)"
mkdir -p "$WORK/peer"
peer=$("$VENV/bin/python" tests/bench/python_peer.py --brokers "$BROKER" --pattern "$PATTERN" --events "$PEER_EVENTS" --out "$WORK/peer")
log "(c') Python peer, minimal shape: 7 columns, no envelope decoding ($PEER_EVENTS events)"
mkdir -p "$WORK/peer-min"
peer_min=$("$VENV/bin/python" tests/bench/python_peer.py --minimal --brokers "$BROKER" --pattern "$PATTERN" --events "$PEER_EVENTS" --out "$WORK/peer-min")

python3 - "$EVENTS" "$MB" "$drain" "$limit" "$peer" "$peer_min" "$WORK/ingestor.json" "$WORK/ingestor.time" <<'PY'
import json, sys
events, mb = int(sys.argv[1]), float(sys.argv[2])
drain, limit, peer, peer_min = (json.loads(a) for a in sys.argv[3:7])
ing = json.load(open(sys.argv[7]))
wall, user, sys_, rss_kb = open(sys.argv[8]).read().split()
cpu = float(user) + float(sys_)
assert ing["records"] == events, f"ingestor committed {ing['records']} of {events}"
busy = ing["busy_seconds"]
eps = events / busy
per_core = events / cpu
broker = drain["events"] / drain["seconds"]
limit_per_core = limit["events"] / limit["cpu_seconds"]
peer_per_core = peer["events"] / peer["cpu_seconds"]
rss = int(rss_kb) / 1024
print()
print(f"backlog                  {events} events, {mb:.0f} MB ({mb*1e6/events:.0f} B/event)")
print(f"(broker) bare drain      {broker:,.0f} events/s ({drain['bytes']/drain['seconds']/1e6:.0f} MB/s)")
print(f"(a) bronze-ingestor      {eps:,.0f} events/s, {mb/busy:.0f} MB/s; {per_core:,.0f} events/s per core "
      f"({cpu:.1f} CPU s over {busy:.1f} s busy, {ing['commits']} commits)")
print(f"(b) in-process limit     {limit_per_core:,.0f} events/s per core (decode+Arrow+Parquet, {limit['files']} files)")
print(f"(c) Python peer, Bronze  {peer['events']/peer['seconds']:,.0f} events/s, {peer_per_core:,.0f} events/s per core, "
      f"{peer['max_rss_mib']:.0f} MiB RSS")
peer_min_per_core = peer_min["events"] / peer_min["cpu_seconds"]
print(f"(c') Python peer, minimal {peer_min_per_core:,.0f} events/s per core (7 columns, no envelope decoding: "
      f"less work than Bronze does; the ingestor is {per_core/peer_min_per_core:.2f}x that)")
print(f"(d) ingestor peak RSS    {rss:.0f} MiB over the {events}-event backlog")
print(f"BENCH bronze events_per_s={eps:.0f} per_core={per_core:.0f} broker_per_s={broker:.0f} "
      f"limit_ratio={per_core/limit_per_core:.2f} vs_python={per_core/peer_per_core:.2f} rss_mib={rss:.0f}")
PY
