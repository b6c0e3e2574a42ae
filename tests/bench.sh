#!/usr/bin/env bash
# Benchmarks (figures, not tests). Starts what it needs, stops it, prints
# figures and one machine-readable BENCH line.
#
#   tests/bench.sh bronze [EVENTS]     # default 5000000 (the RSS backlog); 1M for the peers; then
#                                      # Apache Kafka: 2M, fetcher vs librdkafka (BENCH_KAFKA=0: skip);
#                                      # then a simulated week of Bronze commits (BENCH_WEEK=0: skip; 1-2 h)
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

# Bronze on Apache Kafka (the reference broker): the same pipeline on a fresh
# backlog, and the native fetcher against librdkafka's own fetching of it, per
# CPU-second (the fetcher stays only while it is >= 1.2x ahead). Its own ports
# (29292...) so it runs beside tansu and beside a test suite's brokers.
# BENCH_KAFKA=0 leaves it out; BENCH_KAFKA_EVENTS sets its backlog.
if [ "${BENCH_KAFKA:-1}" != 0 ]; then
  KEVENTS=${BENCH_KAFKA_EVENTS:-$(( EVENTS < 2000000 ? EVENTS : 2000000 ))}
  export KAFKA_NAME=kafka-bench KAFKA_PORT=29292 KAFKA_CONTROLLER_PORT=29293 KAFKA_SASL_SSL_PORT=29294 KAFKA_SSL_PORT=29295 KAFKA_SASL_MTLS_PORT=29296
  KBROKER="127.0.0.1:$KAFKA_PORT"
  KAFKA_SH="$LAKEHOUSE_ROOT/deploy/local/kafka.sh"
  rm -rf "$RUN_DIR/$KAFKA_NAME"
  "$KAFKA_SH" start >&2
  trap 'bench_cleanup; "$KAFKA_SH" stop || true' EXIT
  log "(kafka) producing $KEVENTS events to Apache Kafka"
  "$BIN/lakehouse" generate --brokers "$KBROKER" --topic-prefix benchk --events "$KEVENTS" --seed 1 \
    --partitions 4 --truth "$WORK/truth-kafka.json" --quiet
  KTOPICS=$(python3 -c "import json;print(','.join(sorted(json.load(open('$WORK/truth-kafka.json'))['topics'])))")

  log "(kafka) bronze-ingestor, exactly-once, into committed Bronze"
  sed -e "s#$WORK/lake/#$WORK/lake-kafka/#g" -e "s#$BROKER#$KBROKER#" -e 's#bench-bronze#bench-bronze-kafka#' \
    -e 's#\^bench#^benchk#' "$WORK/bronze.toml" >"$WORK/bronze-kafka.toml"
  /usr/bin/time -f '%e %U %S %M' -o "$WORK/ingestor-kafka.time" \
    "$BIN/bronze-ingestor" --config "$WORK/bronze-kafka.toml" run --exit-when-idle 2s \
    --summary-json "$WORK/ingestor-kafka.json" 2>"$WORK/ingestor-kafka.log"

  # Three alternating rounds of each client on the same backlog; the best
  # per-CPU-second figure of each (a loaded machine only ever slows a round).
  rounds=()
  for round in 1 2 3; do
    log "(kafka) round $round: native fetcher drain, then librdkafka drain"
    rounds+=("$("$BIN/bench-bronze" fetch --brokers "$KBROKER" --pattern unused --topics "$KTOPICS" --events "$KEVENTS")")
    rounds+=("$("$BIN/bench-bronze" drain --brokers "$KBROKER" --pattern '^benchk\..*' --events "$KEVENTS")")
  done
  python3 - "$KEVENTS" "$WORK/ingestor-kafka.json" "$WORK/ingestor-kafka.time" "${rounds[@]}" <<'PY'
import json, sys
events = int(sys.argv[1])
ing = json.load(open(sys.argv[2]))
wall, user, sys_, rss_kb = open(sys.argv[3]).read().split()
cpu = float(user) + float(sys_)
assert ing["records"] == events, f"ingestor committed {ing['records']} of {events} from Apache Kafka"
rounds = [json.loads(a) for a in sys.argv[4:]]
for r in rounds:
    assert r["events"] == events, f"a drain read {r['events']} of {events}"
fetch, rd = rounds[0::2], rounds[1::2]
per_cpu = lambda r: r["events"] / r["cpu_seconds"]
best_fetch, best_rd = max(map(per_cpu, fetch)), max(map(per_cpu, rd))
eps = events / ing["busy_seconds"]
per_core = events / cpu
print()
print(f"Apache Kafka backlog     {events} events")
print(f"(kafka) bronze-ingestor  {eps:,.0f} events/s; {per_core:,.0f} events/s per core "
      f"({cpu:.1f} CPU s over {ing['busy_seconds']:.1f} s busy, {ing['commits']} commits, {int(rss_kb)/1024:.0f} MiB RSS)")
for name, rs in (("native fetcher", fetch), ("librdkafka    ", rd)):
    print(f"(kafka) {name} " + "; ".join(
        f"{per_cpu(r):,.0f}/CPU-s ({r['events']/r['seconds']:,.0f}/s)" for r in rs))
print(f"BENCH bronze_kafka events_per_s={eps:.0f} per_core={per_core:.0f} vs_rdkafka={best_fetch/best_rd:.2f} "
      f"fetcher_per_cpu_s={best_fetch:.0f} rdkafka_per_cpu_s={best_rd:.0f}")
PY
fi

# A Bronze table's commit latency over a simulated week (issue 14): one commit
# per 5 s of a simulated clock, 120,960 commits, through the real commit layer with
# the maintenance every worker does on commit (manifest merging, snapshot
# expiry) — tests/bench/tables.rs, as `tests/bench.sh tables 120960` runs it. It
# takes one to two hours of wall-clock time: BENCH_WEEK=0 leaves it out,
# BENCH_WEEK_COMMITS shortens it (17280 = a simulated day).
if [ "${BENCH_WEEK:-1}" != 0 ]; then
  WEEK_COMMITS=${BENCH_WEEK_COMMITS:-120960}
  log "(week) $WEEK_COMMITS Bronze commits, one per 5 s of a simulated clock, maintained"
  rm -rf "$WORK/week"; mkdir -p "$WORK/week"
  week=$(BENCH_DIR="$WORK/week" "$BIN/bench-tables" --commits "$WEEK_COMMITS" --window 1000)
  python3 - "$week" <<'PY'
import json, sys
w = json.loads(sys.argv[1])
print()
print(f"(week) {w['commits']} commits, {w['simulated_days']:.2f} simulated days: median commit "
      f"{w['commit_ms_first']:.2f} ms in the first 1000, {w['commit_ms_last']:.2f} ms in the last 1000; "
      f"metadata file {w['metadata_bytes_last']} bytes, {w['snapshots_last']} snapshots kept, "
      f"{w['manifests_last']} manifests ({w['wall_s']:.0f} s)")
print(f"BENCH bronze_week commits={w['commits']} simulated_days={w['simulated_days']:.2f} "
      f"commit_ms_first={w['commit_ms_first']:.2f} commit_ms_last={w['commit_ms_last']:.2f} "
      f"metadata_bytes_last={w['metadata_bytes_last']} snapshots_last={w['snapshots_last']}")
PY
fi
