#!/usr/bin/env bash
# tests/bench.sh tables [COMMITS]: Bronze commits one every 5 s of a simulated
# clock through the real commit layer (SQLite catalog, local warehouse, fsync'd),
# with the default table maintenance (manifest merging + snapshot expiry on
# commit), and a shorter run without it for comparison. Prints progress per
# window and one BENCH line.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../../deploy/local/common.sh"
cd "$LAKEHOUSE_ROOT"
COMMITS=${1:-20000}
BASELINE=${BASELINE_COMMITS:-$(( COMMITS < 5000 ? COMMITS : 5000 ))}
WORK="$RUN_DIR/bench-tables"
rm -rf "$WORK"; mkdir -p "$WORK"
log "building (release)"
# The suite's feature set (tests/run.sh): see tests/bench/gold.sh.
cargo build --release --locked --workspace --all-targets >&2
BIN="$CARGO_TARGET_DIR/release"
log "maintained: $COMMITS commits"
with=$(BENCH_DIR="$WORK" "$BIN/bench-tables" --commits "$COMMITS" --window 1000)
log "without maintenance: $BASELINE commits"
without=$(BENCH_DIR="$WORK" "$BIN/bench-tables" --commits "$BASELINE" --window 1000 --no-maintenance)
python3 - "$with" "$without" <<'PY'
import json, sys
w, o = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"maintained:   {w['commits']} commits ({w['simulated_days']:.2f} simulated days): median commit "
      f"{w['commit_ms_first']:.2f} ms in the first 1000, {w['commit_ms_last']:.2f} ms in the last 1000; "
      f"metadata file {w['metadata_bytes_last']} bytes, {w['snapshots_last']} snapshots, {w['manifests_last']} manifests, "
      f"{w['metadata_files']} metadata files ({w['wall_s']:.0f} s)")
print(f"unmaintained: {o['commits']} commits: median commit {o['commit_ms_first']:.2f} ms first, {o['commit_ms_last']:.2f} ms last; "
      f"metadata file {o['metadata_bytes_last']} bytes, {o['snapshots_last']} snapshots, {o['manifests_last']} manifests, "
      f"{o['metadata_files']} metadata files")
print(f"BENCH tables commits={w['commits']} simulated_days={w['simulated_days']:.2f} "
      f"commit_ms_first={w['commit_ms_first']:.2f} commit_ms_last={w['commit_ms_last']:.2f} "
      f"metadata_bytes_last={w['metadata_bytes_last']} snapshots_last={w['snapshots_last']} manifests_last={w['manifests_last']} "
      f"unmaintained_commits={o['commits']} unmaintained_commit_ms_last={o['commit_ms_last']:.2f} "
      f"unmaintained_metadata_bytes_last={o['metadata_bytes_last']}")
PY
