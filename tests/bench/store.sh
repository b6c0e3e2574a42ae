#!/usr/bin/env bash
# Store benchmark: builds the changelog-store bench (release) and runs it.
# Usage: tests/bench/store.sh [rows]   (default 10000000)
# Env: CARGO_TARGET_DIR (default <repo>/target), STORE_BENCH_DIR (table location,
#      default a temp dir), STORE_BENCH_BUCKETS (default 4), STORE_BENCH_LOOKUPS (default 2000).
# Prints the figures and ends with one line:
#   BENCH store upserts_per_s=… per_core=… write_amp=… scan_rows_per_s=… lookup_p99_us=…
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
echo "store bench: $rows rows, table under $dir, $(nproc) cores, $(uname -r)" >&2
out="$("$target/release/examples/store_bench" "$rows" "$dir")"
printf '%s\n' "$out" | grep -v '^BENCH '
printf '%s\n' "$out" | grep '^BENCH store '
