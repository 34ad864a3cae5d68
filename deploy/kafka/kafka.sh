#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft, broker+controller in one JVM).
#
#   deploy/kafka/kafka.sh fetch     gather the broker jars from Maven Central (once)
#   deploy/kafka/kafka.sh start     format storage if needed, start, wait until ready
#   deploy/kafka/kafka.sh wait      wait until the broker answers (KAFKA_WAIT_SECONDS, default 60)
#   deploy/kafka/kafka.sh stop      stop it (SIGTERM, then SIGKILL after KAFKA_STOP_SECONDS)
#   deploy/kafka/kafka.sh status    exit 0 when running and answering
#
# Everything lives under $MODERATION_STATE_DIR/kafka (default .state/kafka): jars, data, logs,
# pid. Port: KAFKA_PORT (default 9092), controller KAFKA_CONTROLLER_PORT (default 9093).
# start and stop are idempotent.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
state_root="${MODERATION_STATE_DIR:-$root/.state}"
mkdir -p "$state_root"
state_root="$(cd "$state_root" && pwd)"
state="$state_root/kafka"
libs="$state/libs"
port="${KAFKA_PORT:-9092}"
controller_port="${KAFKA_CONTROLLER_PORT:-9093}"
pidfile="$state/kafka.pid"
props="$state/server.properties"

log() { printf 'kafka.sh: %s\n' "$*" >&2; }

fetch() {
    if [ -f "$libs/.complete" ]; then return 0; fi
    command -v mvn >/dev/null || { log "mvn not found (apt-get install maven)"; exit 1; }
    command -v java >/dev/null || { log "java not found (Java 17 is required)"; exit 1; }
    log "fetching Kafka jars from Maven Central into $libs"
    rm -rf "$libs"
    mvn -q -B -Dstyle.color=never -f "$here/pom.xml" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$libs"
    touch "$libs/.complete"
}

running() {
    [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

answering() {
    # A TCP connect to the listener; the broker opens it only once it has started.
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null
}

wait_ready() {
    local limit="${KAFKA_WAIT_SECONDS:-60}" waited=0
    while :; do
        if running && grep -q 'Kafka Server started' "$state/logs/server.log" 2>/dev/null \
            && answering; then
            return 0
        fi
        if ! running; then
            log "broker is not running; last log lines:"
            tail -n 20 "$state/logs/server.log" >&2 2>/dev/null || true
            tail -n 20 "$state/logs/stdout.log" >&2 2>/dev/null || true
            return 1
        fi
        if [ "$waited" -ge $((limit * 5)) ]; then
            log "broker did not become ready within ${limit}s (see $state/logs/server.log)"
            return 1
        fi
        sleep 0.2
        waited=$((waited + 1))
    done
}

classpath() {
    printf '%s' "$libs/*"
}

start() {
    fetch
    if running; then
        log "already running (pid $(cat "$pidfile"))"
        wait_ready
        return 0
    fi
    if answering; then
        log "port $port is taken by another process; set KAFKA_PORT or stop it"
        exit 1
    fi
    mkdir -p "$state/data" "$state/logs"
    sed -e "s#@STATE@#$state#g" -e "s#@PORT@#$port#g" \
        -e "s#@CONTROLLER_PORT@#$controller_port#g" "$here/server.properties.in" >"$props"
    if [ ! -f "$state/data/meta.properties" ]; then
        local cluster_id
        cluster_id="$(java -cp "$(classpath)" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)"
        java -cp "$(classpath)" -Dlog4j.configuration="file:$here/log4j.properties" \
            -Dkafka.logs.dir="$state/logs" \
            kafka.tools.StorageTool format -t "$cluster_id" -c "$props" --ignore-formatted \
            >"$state/logs/format.log" 2>&1
    fi
    log "starting broker on 127.0.0.1:$port (state in $state)"
    # setsid: the broker must not get the terminal's Ctrl-C meant for the caller.
    setsid java -Xms512m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -Djava.awt.headless=true \
        -Dlog4j.configuration="file:$here/log4j.properties" \
        -Dkafka.logs.dir="$state/logs" \
        -cp "$(classpath)" kafka.Kafka "$props" \
        >"$state/logs/stdout.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    wait_ready
    log "ready"
}

stop() {
    if ! running; then
        rm -f "$pidfile"
        log "not running"
        return 0
    fi
    local pid limit waited=0
    pid="$(cat "$pidfile")"
    limit="${KAFKA_STOP_SECONDS:-20}"
    kill -TERM "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null; do
        if [ "$waited" -ge $((limit * 10)) ]; then
            log "broker did not stop within ${limit}s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    rm -f "$pidfile"
    log "stopped"
}

status() {
    if running && answering; then
        log "running (pid $(cat "$pidfile")) on 127.0.0.1:$port"
        return 0
    fi
    log "not running"
    return 1
}

case "${1:-}" in
    fetch) fetch ;;
    start) start ;;
    stop) stop ;;
    wait) wait_ready ;;
    status) status ;;
    *) echo "usage: $0 fetch|start|stop|wait|status" >&2; exit 2 ;;
esac
