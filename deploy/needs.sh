#!/usr/bin/env bash
# What `make test` (and so `.ci/run`) needs from Debian, checked in its first second.
# Missing packages are installed with apt-get when run as root; otherwise one line names them
# with the command that installs them, and the exit status is 1.
set -euo pipefail

need=()
command -v make >/dev/null || need+=(make)
command -v java >/dev/null || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need+=(maven)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
command -v kcat >/dev/null || need+=(kcat)
[ -x /usr/bin/chromium ] || need+=(chromium)
# PostgreSQL: unless the tests are pointed at a server of your own
if [ -z "${MODERATION_TEST_DATABASE_URL:-}" ]; then
    command -v pg_lsclusters >/dev/null || need+=(postgresql)
fi
{ command -v prometheus >/dev/null && command -v promtool >/dev/null; } || need+=(prometheus)
# the Perspective client and axe-core tests install npm packages (npm ci)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)

if [ "${#need[@]}" -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "needs: installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
    exit 0
fi
echo "make test needs Debian packages that are missing: ${need[*]}; install them with: sudo apt-get install -y ${need[*]}" >&2
exit 1
