#!/usr/bin/env bash
# The test bed's Go-built binaries (.testbed/bin) and its charts and kwok stages (.testbed/charts,
# .testbed/kwok-stages); each part skips what is already built from the same inputs.
set -euo pipefail
source "$(dirname "$0")/env.sh"
cd "$TAILMESH_ROOT"
bash test/testbed/scripts/build-binaries.sh
bash test/testbed/scripts/fetch-assets.sh
