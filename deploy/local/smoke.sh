#!/usr/bin/env bash
# End-to-end check of servers started by infra.sh: PostgreSQL and Redis answer,
# a Kafka topic takes and returns a message, and (unless --no-restart) that
# topic and message survive `infra.sh stop kafka` + `infra.sh start kafka`.
# Usage: deploy/local/infra.sh up && deploy/local/smoke.sh [--no-restart]
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
readonly SCRIPT_DIR INFRA=$SCRIPT_DIR/infra.sh

restart=1
[[ ${1:-} == --no-restart ]] && restart=0

# Same values the tests get: the env file written by `infra.sh up`.
eval "$("$INFRA" env)"

step() { printf '[smoke] %s\n' "$*" >&2; }
fail() { printf '[smoke] FAIL: %s\n' "$*" >&2; exit 1; }
kafka() { "$INFRA" kafka-run-class "$@"; }

timed() {
  local t0=$EPOCHREALTIME rc=0
  "$@" || rc=$?
  step "  ... $(awk -v a="${t0/,/.}" -v b="${EPOCHREALTIME/,/.}" 'BEGIN { printf "%.1fs", b - a }')"
  return "$rc"
}

consume_one() {
  kafka org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$KAFKA_BROKERS" \
    --topic "$topic" --from-beginning --max-messages 1 --timeout-ms 30000 2>/dev/null
}

step "postgres: psql $DATABASE_URL -c 'select 1'"
[[ $(psql "$DATABASE_URL" -X -tA -c 'select 1') == 1 ]] || fail "postgres did not answer select 1"

step "redis: redis-cli -u $REDIS_URL ping"
[[ $(redis-cli -u "$REDIS_URL" ping) == PONG ]] || fail "redis did not answer PONG"

topic=smoke-$(date +%s)-$RANDOM
msg="hello from smoke.sh $(date +%s%N)"

step "kafka: create topic $topic on $KAFKA_BROKERS"
timed kafka org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BROKERS" \
  --create --topic "$topic" --partitions 1 --replication-factor 1 >/dev/null

step "kafka: produce one message (kafka.tools.ConsoleProducer, acks=all)"
printf '%s\n' "$msg" | timed kafka kafka.tools.ConsoleProducer --bootstrap-server "$KAFKA_BROKERS" \
  --topic "$topic" --producer-property acks=all

step "kafka: consume it (org.apache.kafka.tools.consumer.ConsoleConsumer)"
got=$(timed consume_one) || true
[[ $got == "$msg" ]] || fail "consumed '$got', expected '$msg'"

if (( restart )); then
  step "kafka: infra.sh stop kafka / start kafka"
  timed "$INFRA" stop kafka
  timed "$INFRA" start kafka
  step "kafka: topic and message still there after the restart"
  timed kafka org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BROKERS" \
    --describe --topic "$topic" >/dev/null || fail "topic $topic is gone after the restart"
  got=$(timed consume_one) || true
  [[ $got == "$msg" ]] || fail "after restart consumed '$got', expected '$msg'"
fi

step "OK"
