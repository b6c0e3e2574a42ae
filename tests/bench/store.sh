#!/usr/bin/env bash
# Store benchmark: builds the changelog-store bench (release) and runs it twice on the
# same workload (upserts of an int64 key + 20 short strings, 30% updates, 5% deletes,
# compaction included, Paimon's default options with 4 buckets):
#   1. batch: one commit at the end, the cadence of Paimon's TableWriterBenchmark (its
#      published 65-94k rows/s are measured that way);
#   2. lookup: streaming cadence with `changelog-producer=lookup` (what Silver writes for
#      Gold to consume); its changelog is read back and replayed onto the live keys;
#   3. streaming: a commit every 100k rows, the cadence of a pipeline stage like Silver.
#      This is the headline: the issue's target (>= 300k upserts per CPU-second) is
#      tracked against it.
#   4. write-only: the streaming cadence with `write-only=true` (no compaction: every commit
#      adds one sorted run per bucket), the work pypaimon does; its load only (scan and
#      lookups of a table with a sorted run per commit are left out: STORE_BENCH_READS=0);
#   5. pypaimon (tests/bench/store_peer.py) on the same workload at the streaming cadence,
#      STORE_BENCH_PEER_ROWS rows (default the smaller of rows and 1M; 0 skips it).
#      pypaimon 2.1.0 has no compaction (its writer writes level-0 files only and its commit
#      refuses compaction increments; store_peer.py counts the levels of its files), so the
#      equal-work ratio is write-only against pypaimon: vs_pypaimon (issue 14's target:
#      >= 12). vs_pypaimon_compacting is the streaming run (compaction included) against
#      the same pypaimon figure.
# Usage: tests/bench/store.sh [rows]   (default 10000000)
# Env: CARGO_TARGET_DIR (default <repo>/target), STORE_BENCH_DIR (parent of the two tables,
#      default a temp dir), STORE_BENCH_BUCKETS (default 4), STORE_BENCH_LOOKUPS (default 2000).
# Prints the figures of both runs, then
#   BENCH store_batch upserts_per_s=… per_core=… write_amp=… scan_rows_per_s=… lookup_p99_us=…
#   BENCH store_lookup upserts_per_s=… (same fields)
#   BENCH store_changelog changes=… changes_per_s=…
#   BENCH store_write_only upserts_per_s=… per_core=… write_amp=…
#   BENCH store_pypaimon rows=… upserts_per_s=… per_core=… files=… level0_files=…
# and ends with the streaming run's line (with the ratios when the peer ran):
#   BENCH store upserts_per_s=… per_core=… write_amp=… scan_rows_per_s=… lookup_p99_us=… vs_pypaimon=… vs_pypaimon_compacting=…
set -euo pipefail
here="$(cd "$(dirname "$0")/../.." && pwd)"
rows="${1:-10000000}"
target="${CARGO_TARGET_DIR:-$here/target}"
# --workspace: the feature set of tests/run.sh, so its release build is reused.
CARGO_TARGET_DIR="$target" cargo build --release --quiet --locked --workspace --example store_bench \
    --manifest-path "$here/Cargo.toml" >&2
dir="${STORE_BENCH_DIR:-$(mktemp -d)}"
cleanup() { [ -n "${STORE_BENCH_DIR:-}" ] || rm -rf "$dir"; }
trap cleanup EXIT
echo "store bench: $rows rows, tables under $dir, $(nproc) cores, $(uname -r)" >&2

run() { # name commit_rows [table options] (STORE_BENCH_READS from the caller)
  echo "== $1: STORE_BENCH_COMMIT_ROWS=$2 STORE_BENCH_OPTIONS=${3:-}"
  local out
  out="$(STORE_BENCH_COMMIT_ROWS=$2 STORE_BENCH_OPTIONS="${3:-}" "$target/release/examples/store_bench" "$rows" "$dir/$1")"
  printf '%s\n' "$out" | grep -v '^BENCH '
  bench_line="$(printf '%s\n' "$out" | grep '^BENCH store ')"
  changelog_line="$(printf '%s\n' "$out" | grep '^BENCH store_changelog ' || true)"
}
run batch 0
batch="${bench_line/BENCH store /BENCH store_batch }"
run lookup 100000 changelog-producer=lookup
lookup="${bench_line/BENCH store /BENCH store_lookup }"
changelog="$changelog_line"
rm -rf "${dir:?}/lookup"
run streaming 100000
streaming="$bench_line"
rm -rf "${dir:?}/streaming"
STORE_BENCH_READS=0 run write_only 100000 write-only=true
write_only="${bench_line/BENCH store /BENCH store_write_only }"
rm -rf "${dir:?}/write_only"
bench_line="$streaming"
peer_rows="${STORE_BENCH_PEER_ROWS:-$(( rows < 1000000 ? rows : 1000000 ))}"
peer=""
if [ "$peer_rows" -gt 0 ]; then
  source "$here/deploy/local/common.sh"
  ensure_venv "$here/.venv" "$here/tests/interop/requirements.txt"   # the suite's venv: pypaimon pinned
  echo "== pypaimon: $peer_rows rows, a commit every 100000"
  mkdir -p "$dir/pypaimon"
  peer="$("$here/.venv/bin/python" "$here/tests/bench/store_peer.py" "$dir/pypaimon" "$peer_rows" 100000)"
  per_core() { printf '%s\n' "$1" | sed -n 's/.* per_core=\([0-9.]*\).*/\1/p'; }
  theirs=$(per_core "$peer")
  ratio() { python3 -c "print(f'{$1 / $theirs:.1f}')"; }
  bench_line="$bench_line vs_pypaimon=$(ratio "$(per_core "$write_only")") vs_pypaimon_compacting=$(ratio "$(per_core "$streaming")")"
fi
printf '%s\n' "$batch" "$lookup" "$changelog" "$write_only" ${peer:+"$peer"} "$bench_line"
