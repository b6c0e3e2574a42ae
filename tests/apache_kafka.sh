#!/usr/bin/env bash
# The Apache Kafka step of tests/run.sh (sourced, not run): starts the reference
# broker (deploy/local/kafka.sh: Apache Kafka 4.x, KRaft, jars from Maven Central
# cached under ~/.cache/lakehouse) on 127.0.0.1:$KAFKA_PORT and exports its address
# as LAKEHOUSE_TEST_KAFKA for tests/tests/apache_kafka.rs (and its SASL_SSL listener as
# LAKEHOUSE_TEST_KAFKA_SASL_SSL with LAKEHOUSE_TEST_KAFKA_TLS_DIR for kafka_security.rs); stop_apache_kafka stops
# it (by its pid file). SKIP_APACHE_KAFKA=1 leaves it out: those tests then say
# they are skipped, and fail under CI=true.

KAFKA_SH="$LAKEHOUSE_ROOT/deploy/local/kafka.sh"
export KAFKA_PORT="${TEST_KAFKA_PORT:-29092}"
export KAFKA_CONTROLLER_PORT="${TEST_KAFKA_CONTROLLER_PORT:-29093}"
export KAFKA_SASL_SSL_PORT="${TEST_KAFKA_SASL_SSL_PORT:-29094}"

start_apache_kafka() {
  if [ "${SKIP_APACHE_KAFKA:-}" = 1 ]; then
    log "SKIP_APACHE_KAFKA=1: not starting Apache Kafka; its tests will be skipped"
    return 0
  fi
  LAKEHOUSE_RUN_DIR="$RUN_DIR" "$KAFKA_SH" start
  export LAKEHOUSE_TEST_KAFKA="127.0.0.1:$KAFKA_PORT"
  # The SASL_SSL listener (tests/tests/kafka_security.rs): its CA and password.
  export LAKEHOUSE_TEST_KAFKA_SASL_SSL="127.0.0.1:$KAFKA_SASL_SSL_PORT"
  export LAKEHOUSE_TEST_KAFKA_TLS_DIR="$RUN_DIR/kafka-tls"
}

stop_apache_kafka() {
  LAKEHOUSE_RUN_DIR="$RUN_DIR" "$KAFKA_SH" stop
}
