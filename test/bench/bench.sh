#!/usr/bin/env bash
# `npm run bench` (test/bench/run.ts) and `npm run bench:user-path` (test/bench/userPath.ts, given
# as BENCH_SCRIPT): runs the benchmark inside a network namespace that has only
# loopback, as scripts/test.sh runs the integration tests, so nothing it starts can send a packet
# beyond 127.0.0.0/8. The bench starts and stops its own test bed in there.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/env.sh
ns=(unshare --net --fork)
[ "$(id -u)" = 0 ] || ns=(unshare --user --map-root-user --net --fork)
exec "${ns[@]}" -- bash -c 'ip link set lo up && exec "$@"' _ \
  node --import tsx "${BENCH_SCRIPT:-test/bench/run.ts}" "$@"
