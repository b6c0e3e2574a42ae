#!/usr/bin/env bash
# Starts / stops the local Kafka-protocol broker (tansu) on 127.0.0.1.
#
#   deploy/local/broker.sh start [sqlite|memory]   # sqlite (durable, exact seeks) is the default
#   deploy/local/broker.sh stop
#   deploy/local/broker.sh status
#
# sqlite: --storage-engine sqlite://$RUN_DIR/broker.db; survives kill -9.
# memory: fast, but seeks inside a stored batch are inexact: throughput runs only.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PIDFILE="$RUN_DIR/broker.pid"

start() {
  local engine=${1:-sqlite}
  mkdir -p "$RUN_DIR"
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    log "broker already running (pid $(cat "$PIDFILE"))"; return 0
  fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$BROKER_PORT") 2>/dev/null; then
    die "port $BROKER_PORT is taken by a process this script did not start"
  fi
  ensure_tansu
  local storage
  case "$engine" in
    # tansu resolves the path against its working directory (an absolute path
    # gets the cwd prepended), so it runs in $RUN_DIR with a relative name.
    sqlite) storage="sqlite://broker.db" ;;
    memory) storage="memory://tansu/" ;;
    *) die "unknown engine $engine (sqlite|memory)" ;;
  esac
  log "starting tansu ($engine) on $BROKER"
  (cd "$RUN_DIR" && exec "$TANSU_BIN" broker \
    --listener-url "tcp://$BROKER" \
    --advertised-listener-url "tcp://$BROKER" \
    --storage-engine "$storage") >"$RUN_DIR/broker.log" 2>&1 &
  echo $! >"$PIDFILE"
  for _ in $(seq 300); do
    (exec 3<>"/dev/tcp/127.0.0.1/$BROKER_PORT") 2>/dev/null && break
    kill -0 "$(cat "$PIDFILE")" 2>/dev/null || { tail -20 "$RUN_DIR/broker.log" >&2; rm -f "$PIDFILE"; die "broker exited at start"; }
    sleep 0.1
  done
  (exec 3<>"/dev/tcp/127.0.0.1/$BROKER_PORT") 2>/dev/null || { tail -20 "$RUN_DIR/broker.log" >&2; die "broker did not listen on $BROKER"; }
  log "broker up (pid $(cat "$PIDFILE")), log $RUN_DIR/broker.log"
}

case "${1:-}" in
  start) start "${2:-sqlite}" ;;
  stop) stop_pidfile "$PIDFILE" broker; log "broker stopped" ;;
  status) if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then echo "running (pid $(cat "$PIDFILE"))"; else echo "stopped"; exit 1; fi ;;
  *) echo "usage: $0 start [sqlite|memory] | stop | status" >&2; exit 2 ;;
esac
