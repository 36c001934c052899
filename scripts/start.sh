#!/usr/bin/env bash
# The README's first command (`npm start`): installs what is missing, starts the local test bed
# (3 clusters by default; TAILMESH_CLUSTERS to change) and keeps it up until Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh

clusters=${TAILMESH_CLUSTERS:-3}
tsx test/testbed/src/cli.ts up --clusters "$clusters"
trap 'tsx test/testbed/src/cli.ts down' EXIT
echo "Test bed running; Ctrl-C stops it."
while tsx test/testbed/src/cli.ts status >/dev/null 2>&1; do sleep 5; done
