#!/usr/bin/env bash
# Local PostgreSQL for tests and multi-instance runs: Debian's `postgresql` package, its
# default cluster, and a `moderation` login role that may create databases.
#
#   deploy/postgres/pg.sh start    install (apt, as root) if missing, start, create the role
#   deploy/postgres/pg.sh stop
#   deploy/postgres/pg.sh url      print the URL tests use (MODERATION_TEST_DATABASE_URL)
#
# Port: PGPORT (default 5432). Password auth on 127.0.0.1 only.
set -euo pipefail
port="${PGPORT:-5432}"
role=moderation
password=moderation
url="postgresql://$role:$password@127.0.0.1:$port/postgres"
log() { printf 'pg.sh: %s\n' "$*" >&2; }

as_postgres() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}

root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

cluster() {
    pg_lsclusters --no-header 2>/dev/null | awk -v p="$port" '$3 == p {print $1, $2; exit}'
}

answering() {
    pg_isready -q -h 127.0.0.1 -p "$port" 2>/dev/null
}

start() {
    if ! command -v pg_lsclusters >/dev/null; then
        log "installing postgresql (Debian package)"
        root apt-get update -qq
        DEBIAN_FRONTEND=noninteractive root apt-get install -y -qq postgresql >/dev/null
    fi
    local found version name
    found="$(cluster)"
    if [ -z "$found" ]; then
        version="$(ls /usr/lib/postgresql | sort -n | tail -n 1)"
        log "creating cluster $version/main on port $port"
        root pg_createcluster "$version" main --port "$port" >/dev/null
        found="$(cluster)"
    fi
    read -r version name <<<"$found"
    if ! answering; then
        log "starting cluster $version/$name"
        root pg_ctlcluster "$version" "$name" start
    fi
    for _ in $(seq 1 100); do answering && break; sleep 0.1; done
    answering || { log "PostgreSQL did not come up on port $port"; exit 1; }
    as_postgres psql -q -p "$port" -v ON_ERROR_STOP=1 <<SQL >/dev/null
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$role') THEN
    CREATE ROLE $role LOGIN CREATEDB PASSWORD '$password';
  END IF;
END \$\$;
SQL
    log "ready: $url"
}

stop() {
    local found version name
    found="$(cluster)"
    [ -n "$found" ] || { log "no cluster on port $port"; return 0; }
    read -r version name <<<"$found"
    root pg_ctlcluster "$version" "$name" stop || true
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    url) echo "$url" ;;
    *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
