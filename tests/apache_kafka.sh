#!/usr/bin/env bash
# The Apache Kafka step of tests/run.sh (sourced, not run): starts the reference
# broker (deploy/local/kafka.sh: Apache Kafka 4.x, KRaft, jars from Maven Central
# cached under ~/.cache/lakehouse) on 127.0.0.1:$KAFKA_PORT and exports its address
# as LAKEHOUSE_TEST_KAFKA for tests/tests/apache_kafka.rs (and its SASL_SSL listener as
# LAKEHOUSE_TEST_KAFKA_SASL_SSL, its mutual-TLS SSL listener as LAKEHOUSE_TEST_KAFKA_SSL,
# its SASL_SSL listener that also requires a client certificate as
# LAKEHOUSE_TEST_KAFKA_SASL_MTLS,
# with LAKEHOUSE_TEST_KAFKA_TLS_DIR, for kafka_security.rs). It also starts a Kafka 3.x
# broker beside it (KAFKA3_VERSION, ports 29192…; zstd on 3.x, apache_kafka.rs) as
# LAKEHOUSE_TEST_KAFKA3. stop_apache_kafka stops both (by their pid files).
# SKIP_APACHE_KAFKA=1 leaves both out: those tests then say they are skipped, and
# fail under CI=true.

KAFKA_SH="$LAKEHOUSE_ROOT/deploy/local/kafka.sh"
export KAFKA_PORT="${TEST_KAFKA_PORT:-29092}"
export KAFKA_CONTROLLER_PORT="${TEST_KAFKA_CONTROLLER_PORT:-29093}"
export KAFKA_SASL_SSL_PORT="${TEST_KAFKA_SASL_SSL_PORT:-29094}"
export KAFKA_SSL_PORT="${TEST_KAFKA_SSL_PORT:-29095}"
export KAFKA_SASL_MTLS_PORT="${TEST_KAFKA_SASL_MTLS_PORT:-29096}"
KAFKA3_VERSION="${KAFKA3_VERSION:-3.9.2}"
KAFKA3_PORT="${TEST_KAFKA3_PORT:-29192}"

# deploy/local/kafka.sh for the 3.x broker: its own version, name and ports.
kafka3_sh() {
  LAKEHOUSE_RUN_DIR="$RUN_DIR" KAFKA_VERSION="$KAFKA3_VERSION" KAFKA_NAME=kafka3 KAFKA_PORT="$KAFKA3_PORT" \
    KAFKA_CONTROLLER_PORT=$((KAFKA3_PORT + 1)) KAFKA_SASL_SSL_PORT=$((KAFKA3_PORT + 2)) \
    KAFKA_SSL_PORT=$((KAFKA3_PORT + 3)) KAFKA_SASL_MTLS_PORT=$((KAFKA3_PORT + 4)) "$KAFKA_SH" "$@"
}

start_apache_kafka() {
  if [ "${SKIP_APACHE_KAFKA:-}" = 1 ]; then
    log "SKIP_APACHE_KAFKA=1: not starting Apache Kafka (4.x, 3.x); its tests will be skipped"
    return 0
  fi
  LAKEHOUSE_RUN_DIR="$RUN_DIR" "$KAFKA_SH" start
  export LAKEHOUSE_TEST_KAFKA="127.0.0.1:$KAFKA_PORT"
  # The SASL_SSL listener (tests/tests/kafka_security.rs): its CA and password.
  export LAKEHOUSE_TEST_KAFKA_SASL_SSL="127.0.0.1:$KAFKA_SASL_SSL_PORT"
  # The SSL listener that requires a client certificate (kafka-tls/client.pem, client.key).
  export LAKEHOUSE_TEST_KAFKA_SSL="127.0.0.1:$KAFKA_SSL_PORT"
  # SASL_SSL that also requires the client certificate (SCRAM-SHA-512 and kafka-tls/client.pem).
  export LAKEHOUSE_TEST_KAFKA_SASL_MTLS="127.0.0.1:$KAFKA_SASL_MTLS_PORT"
  export LAKEHOUSE_TEST_KAFKA_TLS_DIR="$RUN_DIR/kafka-tls"
  # Kafka 3.x, after 4.x (which made the shared certificates in kafka-tls/).
  kafka3_sh start
  export LAKEHOUSE_TEST_KAFKA3="127.0.0.1:$KAFKA3_PORT"
}

stop_apache_kafka() {
  kafka3_sh stop || true
  LAKEHOUSE_RUN_DIR="$RUN_DIR" "$KAFKA_SH" stop
}
