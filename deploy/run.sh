#!/usr/bin/env bash
# `make run`: local Kafka, a trained model, the service, sample traffic. Ctrl-C stops it all.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
state="${MODERATION_STATE_DIR:-$PWD/.state}"
export MODERATION_STATE_DIR="$state"
mkdir -p "$state"
model="${MODERATION_MODEL_PATH:-$state/model}"
export MODERATION_TOKENS_FILE="${MODERATION_TOKENS_FILE:-$state/tokens.json}"
port="${MODERATION_HTTP_PORT:-8080}"
bootstrap="${MODERATION_KAFKA_BOOTSTRAP:-127.0.0.1:9092}"
started_kafka=0
service_pid=""

cleanup() {
    trap - INT TERM EXIT
    if [ -n "$service_pid" ] && kill -0 "$service_pid" 2>/dev/null; then
        echo "run: stopping the service"
        kill -TERM "$service_pid" 2>/dev/null || true
        wait "$service_pid" 2>/dev/null || true
    fi
    if [ "$started_kafka" = 1 ]; then
        echo "run: stopping Kafka"
        deploy/kafka/kafka.sh stop || true
    fi
}
trap cleanup EXIT
trap 'cleanup; exit 0' INT TERM  # Ctrl-C is the normal way to stop: not an error

if ! deploy/kafka/kafka.sh status 2>/dev/null; then
    deploy/kafka/kafka.sh start
    started_kafka=1
fi
$bin/moderation create-topics

if [ ! -f "$model/model.json" ]; then
    echo "run: no model at $model; training one (about a minute)"
    $bin/moderation train --out "$model"
fi

# A moderator token for the local page, made once; only its hash is in the tokens file.
dev_token_file="$state/dev-moderator.token"
if [ ! -s "$dev_token_file" ]; then
    (umask 077; $bin/moderation tokens add --id dev --role admin --sites '*' >"$dev_token_file")
fi

echo "run: starting the service (logs: $state/service.log)"
: >"$state/service.log"
$bin/moderation serve >>"$state/service.log" 2>&1 &
service_pid=$!
for _ in $(seq 1 300); do
    if ! kill -0 "$service_pid" 2>/dev/null; then
        echo "run: the service exited; its last log lines:" >&2
        tail -n 5 "$state/service.log" >&2
        exit 1
    fi
    grep -q '"http listening"' "$state/service.log" 2>/dev/null && break
    sleep 0.1
done

$bin/moderation feed --malformed

cat <<MSG

  The service is running. Decisions, as a site reads them:
      kcat -C -b $bootstrap -t comment-decisions -X isolation.level=read_committed -o beginning
  Dead letters (malformed events, with the reason in headers and body):
      kcat -C -b $bootstrap -t comments-dlq -o beginning -f '%h\n%s\n\n'
  Send your own comment:
      echo '{"id":"my-1","site_id":"demo","text":"Hello!"}' | kcat -P -b $bootstrap -t comments
  Service logs: tail -f $state/service.log

  The moderator page: http://127.0.0.1:$port/
  Sign in with this token (admin, all sites; kept in $dev_token_file):
      $(cat "$dev_token_file")

  Ctrl-C stops the service$( [ "$started_kafka" = 1 ] && echo " and Kafka" ).
MSG
wait "$service_pid"
