#!/usr/bin/env bash
# Starts / stops Apache Kafka (the reference broker) on 127.0.0.1: one KRaft
# node that is broker and controller at once, jars from Maven Central.
#
#   deploy/local/kafka.sh start     # fresh data dir each start
#   deploy/local/kafka.sh stop
#   deploy/local/kafka.sh status
#   deploy/local/kafka.sh classpath # fetch the jars (once) and print the classpath
#   KAFKA_VERSION=3.9.2 deploy/local/kafka.sh start   # a Kafka 3.x broker beside it
#
# Environment: KAFKA_VERSION (default 4.1.1), KAFKA_PORT (29092), KAFKA_CONTROLLER_PORT
# (29093), KAFKA_SASL_SSL_PORT (29094), KAFKA_SSL_PORT (29095), KAFKA_SASL_MTLS_PORT
# (29096), LAKEHOUSE_RUN_DIR (where
# data, log and pid file live), LAKEHOUSE_CACHE (default ~/.cache/lakehouse; the jars are
# kept under kafka-<version>/ and reused).
#
# A 3.x version is another instance that runs beside the 4.x one: its data, log and pid
# file are named kafka3 instead of kafka (KAFKA_NAME), and its ports default to
# 29192 / 29193 (controller) / 29194 / 29195 / 29196. The KRaft setup (controller.quorum.voters,
# StorageTool format with a cluster id and SCRAM users) is the same for 3.9 and 4.x.
#
# Four client listeners: PLAINTEXT on KAFKA_PORT, SASL_SSL on KAFKA_SASL_SSL_PORT,
# SSL with mutual TLS (ssl.client.auth=required) on KAFKA_SSL_PORT, and SASL_SSL with
# mutual TLS (SCRAM-SHA-512 and a client certificate, both required; listener name
# SASL_MTLS) on KAFKA_SASL_MTLS_PORT. TLS uses a
# certificate for 127.0.0.1/localhost signed by a CA this script makes with openssl,
# kept in $LAKEHOUSE_RUN_DIR/kafka-tls/ and reused while valid; SASL mechanisms
# SCRAM-SHA-512 and PLAIN. Clients trust kafka-tls/ca.pem and log in as KAFKA_SASL_USER
# (default lakehouse) with the password in kafka-tls/password (made once, random),
# e.g. with librdkafka properties:
#   security.protocol=sasl_ssl sasl.mechanism=SCRAM-SHA-512 sasl.username=lakehouse
#   ssl.ca.location=$LAKEHOUSE_RUN_DIR/kafka-tls/ca.pem  (password: LAKEHOUSE_KAFKA_SASL_PASSWORD)
# On the SSL listener they present the client certificate the script signs with the
# same CA (kafka-tls/client.pem, unencrypted PEM key kafka-tls/client.key):
#   security.protocol=ssl ssl.ca.location=…/ca.pem
#   ssl.certificate.location=…/client.pem ssl.key.location=…/client.key
# Java 17 or newer runs it (JAVA_HOME, else `java` on PATH).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

KAFKA_VERSION="${KAFKA_VERSION:-4.1.1}"
# 3.x runs beside 4.x: its own name and ports (29192…) unless given.
if [ "${KAFKA_VERSION%%.*}" = 3 ]; then default_name=kafka3 base=291; else default_name=kafka base=290; fi
KAFKA_NAME="${KAFKA_NAME:-$default_name}"
KAFKA_PORT="${KAFKA_PORT:-${base}92}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-${base}93}"
KAFKA_SASL_SSL_PORT="${KAFKA_SASL_SSL_PORT:-${base}94}"
KAFKA_SSL_PORT="${KAFKA_SSL_PORT:-${base}95}"
KAFKA_SASL_MTLS_PORT="${KAFKA_SASL_MTLS_PORT:-${base}96}"
KAFKA_SASL_USER="${KAFKA_SASL_USER:-lakehouse}"
TLS_DIR="$RUN_DIR/kafka-tls"
KAFKA_DIR="$RUN_DIR/$KAFKA_NAME"
PIDFILE="$RUN_DIR/$KAFKA_NAME.pid"
KAFKA_LOG="$RUN_DIR/$KAFKA_NAME.log"

# The broker's side of TLS on listener $1 (its lower-case name); with $2 = required
# it also requires a client certificate signed by our CA. Uses start's $password.
tls_listener() {
  local p="listener.name.$1.ssl"
  printf '%s\n' "$p.keystore.type=PKCS12" "$p.keystore.location=$TLS_DIR/server.p12" \
    "$p.keystore.password=$password" "$p.key.password=$password"
  if [ "${2:-}" = required ]; then
    printf '%s\n' "$p.truststore.type=PEM" "$p.truststore.location=$TLS_DIR/ca.pem" "$p.client.auth=required"
  fi
}

start() {
  mkdir -p "$RUN_DIR"
  if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
    log "Apache Kafka ($KAFKA_NAME) already running (pid $(cat "$PIDFILE"))"; return 0
  fi
  for port in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$KAFKA_SASL_SSL_PORT" "$KAFKA_SSL_PORT" "$KAFKA_SASL_MTLS_PORT"; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      die "port $port is taken by a process this script did not start"
    fi
  done
  local cp java; cp="$(ensure_kafka_jars)"; java="$(java_bin)"
  ensure_tls
  local password; password="$(cat "$TLS_DIR/password")"
  rm -rf "$KAFKA_DIR"; mkdir -p "$KAFKA_DIR/data"
  cat >"$KAFKA_DIR/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT,SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT,SSL://127.0.0.1:$KAFKA_SSL_PORT,SASL_MTLS://127.0.0.1:$KAFKA_SASL_MTLS_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT,SSL://127.0.0.1:$KAFKA_SSL_PORT,SASL_MTLS://127.0.0.1:$KAFKA_SASL_MTLS_PORT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL,SSL:SSL,SASL_MTLS:SASL_SSL
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$KAFKA_SASL_USER="$password";
$(tls_listener sasl_ssl)
$(tls_listener ssl required)
listener.name.sasl_mtls.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_mtls.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
$(tls_listener sasl_mtls required)
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$KAFKA_DIR/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
delete.topic.enable=true
log.flush.interval.messages=1
EOF
  local jvm=(-Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true
    -Dorg.slf4j.simpleLogger.defaultLogLevel=info -Dorg.slf4j.simpleLogger.showDateTime=true)
  "$java" "${jvm[@]}" -cp "$cp" kafka.tools.StorageTool format \
    --config "$KAFKA_DIR/server.properties" --cluster-id "bGFrZWhvdXNlLWthZmthMQ" --ignore-formatted \
    --add-scram "SCRAM-SHA-512=[name=$KAFKA_SASL_USER,password=$password]" \
    >"$KAFKA_DIR/format.log" 2>&1 || { cat "$KAFKA_DIR/format.log" >&2; die "kafka storage format failed"; }
  log "starting Apache Kafka $KAFKA_VERSION (KRaft, $KAFKA_NAME) on 127.0.0.1:$KAFKA_PORT"
  (cd "$KAFKA_DIR" && exec "$java" "${jvm[@]}" -cp "$cp" kafka.Kafka "$KAFKA_DIR/server.properties") \
    >"$KAFKA_LOG" 2>&1 &
  echo $! >"$PIDFILE"
  local pid; pid="$(cat "$PIDFILE")"
  for _ in $(seq 600); do
    grep -q "Kafka Server started" "$KAFKA_LOG" 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { tail -30 "$KAFKA_LOG" >&2; rm -f "$PIDFILE"; die "Apache Kafka exited at start"; }
    sleep 0.1
  done
  grep -q "Kafka Server started" "$KAFKA_LOG" || { tail -30 "$KAFKA_LOG" >&2; die "Apache Kafka did not start in 60 s"; }
  wait_port "$KAFKA_PORT" 10 || die "Apache Kafka does not listen on 127.0.0.1:$KAFKA_PORT"
  wait_port "$KAFKA_SASL_SSL_PORT" 10 || die "Apache Kafka does not listen on 127.0.0.1:$KAFKA_SASL_SSL_PORT (SASL_SSL)"
  wait_port "$KAFKA_SSL_PORT" 10 || die "Apache Kafka does not listen on 127.0.0.1:$KAFKA_SSL_PORT (SSL)"
  wait_port "$KAFKA_SASL_MTLS_PORT" 10 || die "Apache Kafka does not listen on 127.0.0.1:$KAFKA_SASL_MTLS_PORT (SASL_SSL, mutual TLS)"
  log "Apache Kafka $KAFKA_VERSION up (pid $pid), log $KAFKA_LOG"
}

# The CA, the broker's certificate (SAN 127.0.0.1 and localhost, PKCS#12 for the
# broker), a client certificate for mutual TLS (PEM, unencrypted PKCS#8 key) and
# the SASL password, made once with openssl and reused while the certificates
# stay valid for another day.
ensure_tls() {
  if [ -f "$TLS_DIR/server.p12" ] && [ -f "$TLS_DIR/password" ] && [ -f "$TLS_DIR/client.key" ] \
    && openssl x509 -checkend 86400 -noout -in "$TLS_DIR/server.pem" >/dev/null 2>&1 \
    && openssl x509 -checkend 86400 -noout -in "$TLS_DIR/client.pem" >/dev/null 2>&1; then
    return 0
  fi
  command -v openssl >/dev/null || apt_install openssl
  log "making a CA, a broker and a client certificate in $TLS_DIR"
  rm -rf "$TLS_DIR"; mkdir -p "$TLS_DIR"; chmod 700 "$TLS_DIR"
  (
    cd "$TLS_DIR"
    openssl rand -hex 16 >password
    openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=lakehouse test CA" \
      -keyout ca.key -out ca.pem
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server.key -out server.csr
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 365 \
      -extfile server.ext -out server.pem
    openssl pkcs12 -export -in server.pem -inkey server.key -certfile ca.pem -name broker \
      -passout "file:password" -out server.p12
    openssl req -newkey rsa:2048 -nodes -subj "/CN=lakehouse-client" -keyout client.key -out client.csr
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 365 \
      -extfile client.ext -out client.pem
  ) >"$RUN_DIR/kafka-tls.log" 2>&1 || { cat "$RUN_DIR/kafka-tls.log" >&2; die "making the TLS certificates failed"; }
}

# Java 17+: JAVA_HOME, else `java` on PATH.
java_bin() {
  local j="${JAVA_HOME:+$JAVA_HOME/bin/}java"
  command -v "$j" >/dev/null 2>&1 || die "java not found (Apache Kafka $KAFKA_VERSION needs Java 17+)"
  local major; major="$("$j" -XshowSettings:properties -version 2>&1 | sed -n 's/ *java.specification.version = //p')"
  [ "${major%%.*}" -ge 17 ] 2>/dev/null || die "$j is Java $major; Apache Kafka $KAFKA_VERSION needs Java 17+"
  echo "$j"
}

case "${1:-}" in
  start) start ;;
  stop) stop_pidfile "$PIDFILE" "Apache Kafka ($KAFKA_NAME)"; log "Apache Kafka ($KAFKA_NAME) stopped" ;;
  status) if [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then echo "running (pid $(cat "$PIDFILE"))"; else echo "stopped"; exit 1; fi ;;
  classpath) ensure_kafka_jars ;;
  *) echo "usage: $0 start | stop | status | classpath" >&2; exit 2 ;;
esac
