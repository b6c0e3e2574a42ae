#!/usr/bin/env bash
# Gold benchmark (figures, not a test): the whole pipeline on this machine.
#
#   tests/bench.sh gold [SECONDS] [RATES]      # defaults: 60, "5000 10000 20000"
#   (RATES "" runs only the delta part)
#
# 1. Steady rates. For each rate R: a fresh lake, tansu (memory engine), and
#    bronze-ingestor, silver-refiner and gold-aggregator started side by side
#    as services (commit intervals GOLD_BENCH_INTERVAL, default 500 ms; Silver
#    and Gold poll every GOLD_BENCH_POLL, default 100 ms); the generator
#    produces R events/s for
#    SECONDS with wall-clock source times (`--wall-clock`). Figures per rate:
#    Gold freshness (source event time → visible in Gold, from the aggregator's
#    run summary) and its stages (Kafka timestamp → Bronze commit, Bronze
#    commit → Silver commit, Silver commit → Gold commit, from each worker's
#    run summary), each worker's CPU seconds and peak RSS, and the catch-up:
#    seconds from the producer's last event to Gold's last commit. A rate is
#    "kept up with" when the catch-up is at most 15 s (a few commit intervals:
#    the backlog did not grow over the run).
# 2. Delta vs recompute, on a lake of GOLD_BENCH_DELTA_BASE events (default
#    500000; 0 skips this part, e.g. while tuning the rates, brought through the pipeline at full speed first, with
#    gold-aggregator running as the service it is: commit and poll intervals
#    10 ms). Gold is then paused (SIGSTOP) while a 1% change of Silver (a
#    day's updates of existing keys: the same generator with another seed
#    reuses the key ranges) goes through Bronze and Silver; the delta time is
#    from resuming Gold (SIGCONT) to its last commit: a warm service catching
#    up on a day's change. DuckDB recomputes every Gold table in full from
#    Silver (tests/interop/gold_check.py --recompute-only; reading Silver with
#    pyiceberg included). Gold is then checked equal to that recomputation.
#
# Dates: GOLD_BENCH_DATES=live (default) generates a live shop's dates
# (`lakehouse generate --live-dates`: orders dated the day they are created,
# 2% up to 30 days late, updates keep an order's date and customer);
# GOLD_BENCH_DATES=spread spreads every order and update over 2026 (the
# stress case of the correctness tests). The delta base is spread either way
# (a year of history).
#
# Prints the figures and one line
#   BENCH gold delta_vs_recompute=… freshness_p99_ms=… pipeline_events_per_s=… rss_mib=…
# (freshness_p99_ms at the highest rate tried, rss_mib the aggregator's peak over all runs).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../deploy/local/common.sh"
cd "$LAKEHOUSE_ROOT"

SECS=${1:-60}
RATES=${2-"5000 10000 20000"}
DELTA_BASE=${GOLD_BENCH_DELTA_BASE:-500000}
# Every worker's commit interval, and Silver's and Gold's poll interval (the
# shipped defaults are 5 s and 250 ms: cheaper, staler).
INTERVAL=${GOLD_BENCH_INTERVAL:-500ms}
POLL=${GOLD_BENCH_POLL:-100ms}
case "${GOLD_BENCH_DATES:-live}" in
  live) DATES=(--live-dates) ;;
  spread) DATES=() ;;
  *) die "GOLD_BENCH_DATES is live or spread" ;;
esac
source "$LAKEHOUSE_ROOT/tests/bench/lib.sh"
bench_setup bench-gold 29192
PY="$LAKEHOUSE_ROOT/.venv/bin/python"
ensure_venv "$LAKEHOUSE_ROOT/.venv" "$LAKEHOUSE_ROOT/tests/interop/requirements.txt"

log "building (release)"
# The suite's feature set (tests/run.sh): building only these packages resolves
# dependencies' features differently and rebuilds them, both here and in the suite.
cargo build --release --locked --workspace --all-targets >&2
BIN="$CARGO_TARGET_DIR/release"
DEFS="$LAKEHOUSE_ROOT/deploy/local/gold/commerce.toml"
"$BROKER_SH" start memory

config() { # dir prefix
  cat <<TOML
[catalog]
url = "sqlite://$1/catalog.db"
warehouse = "$1/warehouse"
[kafka]
brokers = "$BROKER"
group_id = "bench-$2"
topic_pattern = "^$2\\\\..*"
[bronze]
commit_interval = "$INTERVAL"
[silver]
contracts = "$LAKEHOUSE_ROOT/deploy/local/contracts/commerce.toml"
store = "$1/store"
commit_interval = "$INTERVAL"
poll_interval = "$POLL"
[gold]
tables = "$DEFS"
silver_store = "$1/store"
state = "$1/gold-state"
commit_interval = "$INTERVAL"
poll_interval = "$POLL"
[telemetry]
listen = ""
TOML
}

# Waits until FILE has not changed for SECONDS (a worker's log: it logs every commit).
wait_quiet() {
  local file=$1 quiet=$2 last now
  while :; do
    last=$(stat -c %Y "$file"); now=$(date +%s)
    ((now - last >= quiet)) && return 0
    sleep 1
  done
}

# Waits until every Gold state table has consumed its sources' newest
# snapshots (the positions its latest state snapshot records), then for the
# aggregator's log to go quiet (its Iceberg commits follow the state's).
gold_caught_up() { # dir log
  local dir=$1 deadline=$((SECONDS + 900)) tables
  tables=$(grep -c '^\[\[\(rollup\|wide\|features\)\]\]' "$DEFS")
  until python3 - "$dir" "$tables" <<'PY'
import json, os, re, sys
d, tables = sys.argv[1], int(sys.argv[2])
def newest(t):
    s = os.path.join(t, "snapshot")
    ids = [int(n[9:]) for n in os.listdir(s) if n.startswith("snapshot-")] if os.path.isdir(s) else []
    return max(ids, default=None)
state = os.path.join(d, "gold-state", "gold.db")
names = sorted(os.listdir(state)) if os.path.isdir(state) else []
if len(names) < tables:
    sys.exit(1)  # not every table has started
for t in names:
    n = newest(os.path.join(state, t))
    if n is None:
        sys.exit(1)
    props = json.load(open(os.path.join(state, t, "snapshot", f"snapshot-{n}"))).get("properties") or {}
    for k, v in props.items():
        m = re.fullmatch(r"lakehouse\.gold\.silver-snapshot\.(.+)", k)
        if not m:
            continue
        src = m.group(1)
        path = os.path.join(state, src) if os.path.isdir(os.path.join(state, src)) else os.path.join(d, "store", "silver.db", src)
        if newest(path) != int(v):
            sys.exit(1)
PY
  do
    ((SECONDS < deadline)) || die "Gold did not catch up with Silver in 900 s: $2"
    sleep 1
  done
  wait_quiet "$2" 3
}

# GOLD_BENCH_PERF=<worker>: that worker runs under `perf record` in the rate runs
# (GOLD_BENCH_PERF_ARGS, default `-F 499`; e.g. "-F 97 --call-graph dwarf,32768");
# read the profile with `perf report -i $WORK/r<rate>/<worker>.perf`.
# GOLD_BENCH_PERF_DELTA=1: perf attaches to the aggregator for the delta
# part instead ($WORK/rdelta/delta.perf).
# GOLD_BENCH_NICE=N: Silver and Gold run at nice N (Bronze and the broker at
# 0), as on a host where the ingest path has CPU priority.
NICE="${GOLD_BENCH_NICE:-0}"
worker() { # name dir idle [file tag]; sets LAST_PID
  local f="$2/${4:-}$1" nice=0
  [ "$1" = bronze-ingestor ] || nice=$NICE
  local perf=()
  # Not in the delta phase: it stops and resumes the worker's PID, which would be perf's.
  [ "${GOLD_BENCH_PERF:-}" = "$1" ] && [ -z "${4:-}" ] && perf=(perf record ${GOLD_BENCH_PERF_ARGS:--F 499} -o "$f.perf" --)
  /usr/bin/time -f '%e %U %S %M' -o "$f.time" \
    nice -n "$nice" "${perf[@]}" "$BIN/$1" --config "$2/lake.toml" run --exit-when-idle "$3" --summary-json "$f.json" 2>"$f.log" &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

for rate in $RATES; do
  dir="$WORK/r$rate"; mkdir -p "$dir"
  config "$dir" "b$rate" >"$dir/lake.toml"
  events=$((rate * SECS))
  log "rate $rate/s: $events events over ${SECS}s, three workers side by side"
  # Topics first, so that the ingestor's pattern finds them at once.
  "$BIN/lakehouse" generate --brokers "$BROKER" --topic-prefix "b$rate" --events 0 --partitions 4 \
    --truth "$dir/none.json" --quiet
  worker bronze-ingestor "$dir" 8s; b=$LAST_PID
  worker silver-refiner "$dir" 10s; s=$LAST_PID
  worker gold-aggregator "$dir" 12s; g=$LAST_PID
  "$BIN/lakehouse" generate --brokers "$BROKER" --topic-prefix "b$rate" --events "$events" --rate "$rate" \
    --seed 7 --wall-clock "${DATES[@]}" --partitions 4 --truth "$dir/truth.json" --quiet
  date +%s.%N >"$dir/produced-at"
  wait "$b" || die "bronze-ingestor failed: $dir/bronze-ingestor.log"
  wait "$s" || die "silver-refiner failed: $dir/silver-refiner.log"
  wait "$g" || die "gold-aggregator failed: $dir/gold-aggregator.log"
done

# Delta vs recompute on a lake of DELTA_BASE events (the pipeline catches up on
# them first, at full speed).
first=delta
if [ "$DELTA_BASE" -gt 0 ]; then
  dir="$WORK/rdelta"; mkdir -p "$dir"
  config "$dir" bd >"$dir/lake.toml"
  log "delta base: $DELTA_BASE events through the pipeline"
  "$BIN/lakehouse" generate --brokers "$BROKER" --topic-prefix bd --events "$DELTA_BASE" --seed 7 --partitions 4 \
    --truth "$dir/truth.json" --quiet
  worker bronze-ingestor "$dir" 3s base-; b=$LAST_PID
  worker silver-refiner "$dir" 5s base-; s=$LAST_PID
  wait "$b" || die "bronze-ingestor failed (delta base)"; wait "$s" || die "silver-refiner failed (delta base)"
  # Gold as a service: it stays up (warm state, caches, writers) for the delta.
  LAKEHOUSE_GOLD__COMMIT_INTERVAL=10ms LAKEHOUSE_GOLD__POLL_INTERVAL=10ms worker gold-aggregator "$dir" 3600s
  # /usr/bin/time forks the aggregator: wait for the child to exist.
  g=""
  for _ in $(seq 50); do g=$(pgrep -P "$LAST_PID") && break; sleep 0.1; done
  [ -n "$g" ] || die "no gold-aggregator under $LAST_PID"; timed=$LAST_PID
  gold_caught_up "$dir" "$dir/gold-aggregator.log"
  live=$(python3 -c "import json;t=json.load(open('$dir/truth.json'));print(sum(v['live_rows'] for v in t['topics'].values()))")
  delta=$((live / 100))
  log "delta: $delta changes (1% of $live Silver rows) through Bronze and Silver while Gold is paused"
  kill -STOP "$g"
  "$BIN/lakehouse" generate --brokers "$BROKER" --topic-prefix bd --events "$delta" --seed 8 --wall-clock \
    "${DATES[@]}" --partitions 4 --truth "$dir/delta-truth.json" --quiet
  worker bronze-ingestor "$dir" 3s delta-; b=$LAST_PID
  worker silver-refiner "$dir" 4s delta-; s=$LAST_PID
  wait "$b" || die "bronze-ingestor failed (delta)"; wait "$s" || die "silver-refiner failed (delta)"
  perf=""
  if [ -n "${GOLD_BENCH_PERF_DELTA:-}" ]; then # profile the delta: perf attached to the stopped aggregator
    perf record ${GOLD_BENCH_PERF_ARGS:--F 499} -p "$g" -o "$dir/delta.perf" 2>"$dir/delta.perf.log" &
    perf=$!; sleep 1
  fi
  date -u +%Y-%m-%dT%H:%M:%S.%NZ >"$dir/resumed-at"
  kill -CONT "$g"
  gold_caught_up "$dir" "$dir/gold-aggregator.log"
  [ -z "$perf" ] || { kill -INT "$perf"; wait "$perf" || true; }
  kill -TERM "$g"; wait "$timed" || die "gold-aggregator failed: $dir/gold-aggregator.log"
  log "DuckDB recomputing every Gold table from Silver"
  "$PY" tests/interop/gold_check.py "sqlite:///$dir/catalog.db" lakehouse "$dir/warehouse" "$DEFS" --recompute-only \
    >"$dir/recompute.json"
  log "checking Gold against DuckDB over Silver"
  "$PY" tests/interop/gold_check.py "sqlite:///$dir/catalog.db" lakehouse "$dir/warehouse" "$DEFS" >"$dir/check.json"
fi

python3 - "$WORK" "$RATES" "$SECS" "$first" <<'PY'
import json, os, re, sys, datetime
work, rates, secs, first = sys.argv[1], [int(r) for r in sys.argv[2].split()], int(sys.argv[3]), sys.argv[4]

def ts(line):
    return datetime.datetime.fromisoformat(line.split()[0].replace("Z", "+00:00")).timestamp()

def gold_commits(log):
    return [ts(l) for l in open(log) if "committed layer=gold" in l]

def timing(d, name):
    wall, user, sys_, rss = open(f"{d}/{name}.time").read().split()
    return float(user) + float(sys_), int(rss) / 1024

rows, kept, rss_max, fresh_top = [], 0, 0.0, None
for r in rates:
    d = f"{work}/r{r}"
    produced = float(open(f"{d}/produced-at").read())
    last = max(gold_commits(f"{d}/gold-aggregator.log"), default=float("nan"))
    catch_up = last - produced
    g = json.load(open(f"{d}/gold-aggregator.json"))
    cpu = {n: timing(d, n) for n in ["bronze-ingestor", "silver-refiner", "gold-aggregator"]}
    rss_max = max(rss_max, cpu["gold-aggregator"][1])
    ok = catch_up <= 15
    if ok:
        kept = max(kept, r)
    fresh_top = g.get("freshness_p99_ms")
    print(f"rate {r:>6}/s for {secs}s: catch-up {catch_up:5.1f}s ({'kept up' if ok else 'fell behind'}); Gold freshness "
          f"p50 {g.get('freshness_p50_ms')} ms, p99 {g.get('freshness_p99_ms')} ms, max {g.get('freshness_max_ms')} ms; "
          f"{g['commits']} Gold commits")
    b = json.load(open(f"{d}/bronze-ingestor.json"))
    s = json.load(open(f"{d}/silver-refiner.json"))
    stage = lambda j, k: f"{j.get(k + '_p50_ms')} / {j.get(k + '_p99_ms')} ms"
    print(f"    stages (p50 / p99): Kafka → Bronze {stage(b, 'kafka_to_bronze')}, Bronze → Silver "
          f"{stage(s, 'bronze_to_silver')}, Silver → Gold {stage(g, 'silver_to_gold')}")
    for n, (c, m) in cpu.items():
        print(f"    {n:<16} {c:7.1f} CPU s ({c / secs:4.2f} cores over the run), peak RSS {m:6.0f} MiB")

d = f"{work}/r{first}"
if not os.path.exists(f"{d}/resumed-at"):
    print(f"BENCH gold delta_vs_recompute=nan freshness_p99_ms={fresh_top} pipeline_events_per_s={kept} "
          f"rss_mib={rss_max:.0f}")
    sys.exit(0)
resumed = ts(open(f"{d}/resumed-at").read())
commits = [t for t in gold_commits(f"{d}/gold-aggregator.log") if t >= resumed]
delta_s = max(commits) - resumed if commits else float("nan")
rec = json.load(open(f"{d}/recompute.json"))
check = json.load(open(f"{d}/check.json"))
bad = {t: v["differing"] for t, v in check.items() if v["differing"] or v["gold_rows"] != v["expected_rows"]}
assert not bad, f"Gold differs from DuckDB over Silver after the runs: {bad}"
ratio = rec["recompute_seconds"] / delta_s
print(f"delta: Gold up to date {delta_s:.2f}s after resuming on a 1% change of Silver ({len(commits)} commits); DuckDB recomputes every "
      f"Gold table in {rec['recompute_seconds']:.2f}s ({rec['silver_scan_seconds']:.2f}s reading Silver, "
      f"{rec['sql_seconds']:.2f}s SQL): {ratio:.1f}x; Gold equals the recomputation "
      f"({sum(v['gold_rows'] for v in check.values())} rows in {len(check)} tables)")
print(f"BENCH gold delta_vs_recompute={ratio:.1f} freshness_p99_ms={fresh_top} pipeline_events_per_s={kept} "
      f"rss_mib={rss_max:.0f}")
PY
