# Shared set-up of the pipeline benchmarks (sourced after deploy/local/common.sh).
#
#   bench_setup RUN_SUBDIR DEFAULT_BROKER_PORT
#
# Gives the benchmark its own run directory ($RUN_DIR/RUN_SUBDIR) and broker
# port (BENCH_BROKER_PORT overrides), an emptied work directory ($WORK), and
# on exit kills every worker PID the benchmark put in PIDS and stops its
# broker. Installs GNU time and tansu if missing.
bench_setup() {
  export LAKEHOUSE_RUN_DIR="$RUN_DIR/$1"
  RUN_DIR="$LAKEHOUSE_RUN_DIR"
  export BROKER_PORT="${BENCH_BROKER_PORT:-$2}"
  BROKER="127.0.0.1:$BROKER_PORT"
  BROKER_SH="$LAKEHOUSE_ROOT/deploy/local/broker.sh"
  WORK="$RUN_DIR/work"
  rm -rf "$WORK"; mkdir -p "$WORK"
  PIDS=()
  trap bench_cleanup EXIT
  command -v /usr/bin/time >/dev/null || apt_install time
  ensure_tansu
}

bench_cleanup() {
  local p
  # A worker runs under /usr/bin/time (and nice): its children first, or they outlive it.
  for p in "${PIDS[@]}"; do pkill -P "$p" 2>/dev/null || true; kill "$p" 2>/dev/null || true; done
  "$BROKER_SH" stop || true
}
