#!/usr/bin/env bash
# The README's test command (`npm test`): installs what is missing, then type-checks, runs every
# package's unit tests, and runs the integration tests against the real local test bed inside a
# loopback-only network namespace, so no test can send a packet beyond 127.0.0.0/8.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

# Minutes and seconds since npm test started, on each phase's heading: the CI log then says where
# a slow run spent its time.
elapsed() { printf '%dm%02ds' $((SECONDS / 60)) $((SECONDS % 60)); }

results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT
status=0

# The test bed's binaries and charts (Go builds: most of a fresh machine's setup) are needed only
# from the Go tests on, so they build in the background, beside npm ci, the type check, the
# packages and the unit tests; their output is printed when they are waited for.
echo "== test bed binaries and charts (in the background) ($(elapsed))"
bash scripts/setup-testbed.sh > "$results/testbed-setup.out" 2>&1 &
testbed_setup=$!
bash scripts/setup.sh --no-testbed

echo "== type check ($(elapsed))"
tsc --noEmit || status=1

echo "== packages: build, pack and check every plugin as a host receives it (no test bed, no Go) ($(elapsed))"
node scripts/pack-plugins.js || status=1

# pack-plugins emitted every declaration into dist-types; API Extractor reads them. A change to a
# package's public API that is not in its committed report.api.md (npm run build:api-reports),
# or an export without a release tag, fails here.
# The scaffolder module's report is regenerated, not compared: its action creators' types are
# inferred from zod schemas, and TypeScript prints that union's members and their properties in
# an order that changes from one compilation to the next (three clean compilations here gave
# three orders), so a textual comparison would fail at random. Its release tags and API
# Extractor warnings are still checked.
echo "== API reports (every plugin's exports, with release tags, as committed) ($(elapsed))"
api_report_flags=(-o ae-wrong-input-file-type,ae-undocumented --validate-release-tags)
backstage-repo-tools api-reports --ci "${api_report_flags[@]}" \
  plugins/mesh plugins/mesh-backend plugins/mesh-common plugins/mesh-node || status=1
backstage-repo-tools api-reports "${api_report_flags[@]}" \
  plugins/scaffolder-backend-module-mesh || status=1

# The adoption test's apps (create-app, yarn install, the README's steps, tsc, build) need the npm
# registry, so they are made here, outside the namespace, beside the unit tests; the browser
# tests start them. Their output: .adoption/*.log.
echo "== adoption: apps made by @backstage/create-app, wired by the README (in the background) ($(elapsed))"
node test/adoption/prepare.js > "$results/adoption.out" 2>&1 &
adoption=$!

echo "== unit tests (every package) ($(elapsed))"
CI=true backstage-cli repo test --ci --json --outputFile="$results/unit.json" || status=1

echo "== waiting for the test bed's binaries and charts ($(elapsed))"
if ! wait "$testbed_setup"; then
  cat "$results/testbed-setup.out"
  echo "the test bed's binaries or charts failed to build: no Go or integration tests can run" >&2
  wait "$adoption" || true
  exit 1
fi
cat "$results/testbed-setup.out"

echo "== Go unit tests (the test bed's Istio tools: xds-probe, mesh-dataplane) ($(elapsed))"
# With the settings its binaries were built with (test/testbed/scripts/build-binaries.sh:
# CGO_ENABLED=0, GOTOOLCHAIN=local, the committed go.sum), so the standard library and every Istio
# package come from Go's build cache; with `go test`'s default CGO_ENABLED=1 they all compiled
# again, which took more than ten minutes on 2 cores.
(cd test/testbed/go-istio && export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=readonly &&
  go vet ./... && go test ./...) || status=1

wait "$adoption" || status=1
cat "$results/adoption.out"

echo "== integration tests (real test bed, loopback-only network namespace) ($(elapsed))"
ns=(unshare --net --fork)
[ "$(id -u)" = 0 ] || ns=(unshare --user --map-root-user --net --fork)
# One file at a time (the files share one test bed), each in a fresh worker process: a worker
# whose memory after a file exceeds workerIdleMemoryLimit is replaced, and 1 kB means always (a
# bare 1 would mean 100 % of the machine's memory: jest-config's stringToBytes).
# Whatever a file leaves running (a backend's watches and timers, a step still running past its
# test's timeout) then ends with it instead of loading every file after it.
"${ns[@]}" -- bash -c 'ip link set lo up && exec "$@"' _ \
  jest -c test/jest.config.js --ci --maxWorkers=1 --workerIdleMemoryLimit=1kb --json --outputFile="$results/integration.json" "$@" || status=1

echo "== browser end-to-end tests (the local product on its own test bed, Debian's Chromium) ($(elapsed))"
"${ns[@]}" -- bash -c 'ip link set lo up && exec "$@"' _ \
  jest -c test/e2e/jest.config.js --ci --runInBand --json --outputFile="$results/e2e.json" || status=1

echo "== done ($(elapsed))"
node scripts/summarize-tests.js "$results"/*.json
exit $status
