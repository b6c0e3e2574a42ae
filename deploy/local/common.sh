#!/usr/bin/env bash
# Shared helpers of the local-stack scripts. Source it; do not run it.
# Everything here binds to 127.0.0.1 only.

LAKEHOUSE_ROOT="${LAKEHOUSE_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}"
RUN_DIR="${LAKEHOUSE_RUN_DIR:-$LAKEHOUSE_ROOT/.run}"
TANSU_VERSION="0.6.0"
BROKER_PORT="${BROKER_PORT:-9092}"
BROKER="127.0.0.1:${BROKER_PORT}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$LAKEHOUSE_ROOT/target}"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# tansu binary: $TANSU_BIN, else on PATH / in ~/.cargo/bin, else installed once
# (about 8 minutes) with the features that give it durable (libsql) and
# in-memory (dynostore) storage engines.
ensure_tansu() {
  if [ -n "${TANSU_BIN:-}" ] && [ -x "$TANSU_BIN" ]; then return 0; fi
  for c in "$(command -v tansu 2>/dev/null)" "$HOME/.cargo/bin/tansu"; do
    if [ -n "$c" ] && [ -x "$c" ] && "$c" --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
      TANSU_BIN="$c"; export TANSU_BIN; return 0
    fi
  done
  log "installing tansu $TANSU_VERSION (once, ~8 minutes)"
  cargo install tansu --version "$TANSU_VERSION" --locked --features libsql,dynostore >&2 \
    || die "cargo install tansu failed"
  TANSU_BIN="$HOME/.cargo/bin/tansu"; export TANSU_BIN
}

# Creates (or refreshes) a Python venv at $1 with the pinned requirements file $2;
# reuses it while the requirements are unchanged.
ensure_venv() {
  local venv=$1 req=$2
  if [ ! -x "$venv/bin/python" ] || ! cmp -s "$req" "$venv/.requirements"; then
    log "creating Python venv $venv from $req"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip >&2
    "$venv/bin/pip" install --quiet -r "$req" >&2
    cp "$req" "$venv/.requirements"
  fi
}

# Waits until a TCP port on 127.0.0.1 accepts connections.
wait_port() {
  local port=$1 secs=${2:-30}
  for _ in $(seq $((secs * 10))); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# Stops a process by the PID in a pid file (TERM, then KILL after a bound).
stop_pidfile() {
  local pidfile=$1 name=$2
  [ -f "$pidfile" ] || return 0
  local pid; pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { log "$name did not stop; killing"; kill -9 "$pid" 2>/dev/null || true; }
  fi
  rm -f "$pidfile"
}
