#!/usr/bin/env bash
# Installs everything the product and its tests need, and skips what is already in place:
# Node 22, the npm workspaces, the PostgreSQL server, and the test bed's Go-built binaries and
# charts.
# The test bed's binaries are Go builds (about 20 minutes on a cold Go build cache, CPU-bound, none
# of it needing Node), so they run beside npm ci. `--no-testbed` leaves them out: `npm test`
# (scripts/test.sh) runs scripts/setup-testbed.sh itself, beside its type check and unit tests.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$TAILMESH_ROOT"

testbed_pid=
if [ "${1:-}" != --no-testbed ]; then
  bash scripts/setup-testbed.sh &
  testbed_pid=$!
fi

stamp=node_modules/.tailmesh-install-stamp
want="$(node --version)|$(sha256sum package-lock.json | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "[setup] npm ci with Node $(node --version)"
  npm ci --no-audit --no-fund
  echo "$want" > "$stamp"
fi

# The integration tests run the backend's database code on a throwaway PostgreSQL server too.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then
  echo "[setup] installing the PostgreSQL server (Debian package postgresql)"
  sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo -n)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi

# The browser tests drive Debian's own Chromium through playwright-core: never a browser download.
if [ ! -x /usr/bin/chromium ]; then
  echo "[setup] installing Debian's chromium for the browser tests"
  sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo)
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
fi

if [ -n "$testbed_pid" ]; then
  wait "$testbed_pid" || { echo "[setup] the test bed's binaries or charts failed (above)" >&2; exit 1; }
fi
