#!/usr/bin/env bash
# `npm run bench`: runs the benchmark (test/bench/run.ts) inside a network namespace that has only
# loopback, as scripts/test.sh runs the integration tests, so nothing it starts can send a packet
# beyond 127.0.0.0/8. The bench starts and stops its own test bed in there.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/env.sh
ns=(unshare --net --fork)
[ "$(id -u)" = 0 ] || ns=(unshare --user --map-root-user --net --fork)
exec "${ns[@]}" -- bash -c 'ip link set lo up && exec "$@"' _ \
  node --import tsx test/bench/run.ts "$@"
