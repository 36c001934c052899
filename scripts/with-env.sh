#!/usr/bin/env bash
# Runs a command with the project's Node 22 and tools on PATH (see env.sh).
set -euo pipefail
source "$(dirname "$0")/env.sh"
exec "$@"
