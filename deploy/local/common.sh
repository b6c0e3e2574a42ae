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

# Installs Debian packages (root only; otherwise says what to install and stops).
apt_install() {
  log "installing $* (Debian packages)"
  [ "$(id -u)" = 0 ] || die "$* missing and this script is not root: apt-get install $*"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2 \
    || die "apt-get install $* failed"
}

# What the build links against: librdkafka is built with OpenSSL (rdkafka's `ssl`
# feature, for TLS and SASL/SCRAM listeners) from Debian's libssl-dev, found by pkg-config.
ensure_build_deps() {
  if ! pkg-config --exists openssl 2>/dev/null; then
    apt_install libssl-dev pkg-config
  fi
}

# The tz database (Debian's tzdata), for Gold windows in named time zones.
ensure_tzdata() {
  [ -f /usr/share/zoneinfo/Europe/Paris ] || apt_install tzdata
}

# Stops the PostgreSQL cluster if ensure_postgres started it (PG_STARTED=yes).
stop_postgres_if_started() {
  [ "${PG_STARTED:-}" = yes ] || return 0
  local version; version="$(ls /etc/postgresql | sort -V | tail -1)"
  log "stopping PostgreSQL $version (started by this script)"
  pg_ctlcluster --skip-systemctl-redirect "$version" main stop >&2 || log "could not stop PostgreSQL $version"
  PG_STARTED=
}

# PostgreSQL on 127.0.0.1:5432: Debian's packages installed if missing, the
# cluster started if down. Sets PG_STARTED=yes when this call started it.
PG_ROLE="lakehouse"
PG_PASSWORD="lakehouse"
ensure_postgres() {
  if ! command -v pg_ctlcluster >/dev/null 2>&1 || ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    apt_install postgresql
  fi
  local version; version="$(ls /etc/postgresql | sort -V | tail -1)"
  if ! pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then
    log "starting PostgreSQL $version"
    pg_ctlcluster --skip-systemctl-redirect "$version" main start >&2 || die "cannot start PostgreSQL $version"
    PG_STARTED=yes
    for _ in $(seq 50); do pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null && break; sleep 0.2; done
  fi
  pg_isready -h 127.0.0.1 -p 5432 -q || die "PostgreSQL does not answer on 127.0.0.1:5432"
  # The role the tests and the demo connect as over TCP, made over the local socket.
  pg_admin -c "DO \$\$ BEGIN
      IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$PG_ROLE') THEN
        CREATE ROLE $PG_ROLE LOGIN CREATEDB PASSWORD '$PG_PASSWORD';
      END IF; END \$\$;" >/dev/null || die "cannot create the PostgreSQL role $PG_ROLE"
}

# psql as the database superuser over the local socket.
pg_admin() {
  if [ "$(id -un)" = postgres ]; then psql -q "$@"; else runuser -u postgres -- psql -q "$@"; fi
}

# Creates an empty database owned by the test role; prints its URL.
pg_test_database() {
  local db=$1
  pg_admin -c "DROP DATABASE IF EXISTS $db" >/dev/null
  pg_admin -c "CREATE DATABASE $db OWNER $PG_ROLE" >/dev/null || die "cannot create database $db"
  echo "postgres://$PG_ROLE:$PG_PASSWORD@127.0.0.1:5432/$db"
}

pg_drop_database() {
  pg_admin -c "DROP DATABASE IF EXISTS $1" >/dev/null 2>&1 || true
}

# Jars of Maven artifacts with their runtime dependencies, fetched once from Maven
# Central into $LAKEHOUSE_CACHE/<name>/libs (default ~/.cache/lakehouse) and reused
# while the artifact list is unchanged; prints the classpath.
#   ensure_maven_jars kafka-4.1.1 org.apache.kafka:kafka_2.13:4.1.1 ...
ensure_maven_jars() {
  local name=$1; shift
  local dir="${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}/$name"
  local want; want="$(printf '%s\n' "$@")"
  if [ ! -f "$dir/.complete" ] || [ "$(cat "$dir/.complete")" != "$want" ]; then
    command -v mvn >/dev/null || die "mvn (Maven) is required to fetch $name from Maven Central"
    log "fetching $name from Maven Central into $dir (once)"
    rm -rf "$dir/libs" "$dir/.complete"; mkdir -p "$dir"
    {
      echo '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
      echo "<groupId>lakehouse.local</groupId><artifactId>$name</artifactId><version>1</version><packaging>pom</packaging><dependencies>"
      local c g a v
      for c in "$@"; do
        IFS=: read -r g a v <<<"$c"
        echo "<dependency><groupId>$g</groupId><artifactId>$a</artifactId><version>$v</version></dependency>"
      done
      echo '</dependencies></project>'
    } >"$dir/pom.xml"
    (cd "$dir" && mvn -q -B dependency:copy-dependencies -DoutputDirectory=libs -DincludeScope=runtime >mvn.log 2>&1) \
      || { tail -20 "$dir/mvn.log" >&2; die "Maven could not fetch $name"; }
    echo "$want" >"$dir/.complete"
  fi
  ls "$dir"/libs/*.jar | tr '\n' ':' | sed 's/:$//'
}

# Apache Kafka's broker jars (KRaft), version $KAFKA_VERSION; prints the classpath.
ensure_kafka_jars() {
  local v="${KAFKA_VERSION:-4.1.1}"
  ensure_maven_jars "kafka-$v" "org.apache.kafka:kafka_2.13:$v" "org.apache.kafka:kafka-server:$v" \
    "org.apache.kafka:kafka-storage:$v" "org.apache.kafka:kafka-tools:$v" "org.apache.kafka:kafka-clients:$v" \
    org.slf4j:slf4j-api:2.0.17 org.slf4j:slf4j-simple:2.0.17
}

# The independent Java readers of tests/interop/java (Iceberg's JdbcCatalog and
# IcebergGenerics, Paimon's Java API; versions pinned in its pom.xml). Built with
# Maven once per content of that folder into
# $LAKEHOUSE_CACHE/java-readers/<hash>/ (jar, runtime classpath into ~/.m2 and a
# launcher); offline when ~/.m2 already holds everything. Exports
# LAKEHOUSE_TEST_JAVA_READER, the launcher's path.
ensure_java_readers() {
  local src="$LAKEHOUSE_ROOT/tests/interop/java"
  command -v java >/dev/null && command -v mvn >/dev/null \
    || die "java (17+) and mvn are required for the Java readers: apt-get install openjdk-17-jdk-headless maven"
  local hash
  hash="$(cd "$src" && find pom.xml src -type f | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)"
  local cache="${LAKEHOUSE_CACHE:-$HOME/.cache/lakehouse}/java-readers/$hash"
  if [ ! -x "$cache/java-readers" ] || ! ls $(tr ':' ' ' <"$cache/classpath.txt") >/dev/null 2>&1; then
    log "building the Java readers (Maven; once per change of tests/interop/java)"
    local build; build="$(mktemp -d)"
    cp -r "$src/pom.xml" "$src/src" "$build/"
    ( cd "$build" && { mvn -q -B -o package -DskipTests 2>/dev/null || mvn -q -B package -DskipTests; } ) >&2 \
      || { rm -rf "$build"; die "building tests/interop/java failed"; }
    mkdir -p "$cache"
    cp "$build/target/java-readers-1.jar" "$build/target/classpath.txt" "$cache/"
    rm -rf "$build"
    cat >"$cache/java-readers" <<'LAUNCHER'
#!/bin/sh
# Launcher of the Java readers (tests/interop/java); see its Main.java for usage.
d="$(dirname "$0")"
exec java ${LAKEHOUSE_JAVA_OPTS:--XX:+UseSerialGC -XX:TieredStopAtLevel=1} \
  -cp "$d/java-readers-1.jar:$(cat "$d/classpath.txt")" lakehouse.interop.Main "$@"
LAUNCHER
    chmod +x "$cache/java-readers"
  fi
  LAKEHOUSE_TEST_JAVA_READER="$cache/java-readers"; export LAKEHOUSE_TEST_JAVA_READER
}
