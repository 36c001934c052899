#!/usr/bin/env bash
# The README's first command (`npm start`): installs what is missing, then runs the local product
# (test/product/start.ts): the test bed with 3 clusters (TAILMESH_CLUSTERS to change; a running
# one is reused), the demo services, Backstage on http://localhost:7007 with cluster1 and cluster2
# joined into the mesh. With an app-config.local.yaml that names clusters, Backstage against those
# instead. Ctrl-C stops what it started (TAILMESH_KEEP_TESTBED=1 keeps the test bed up).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/env.sh
exec node --import tsx test/product/start.ts "$@"
