#!/usr/bin/env bash
# Copies the real Istio and Tailscale operator charts (and the operator's CRDs) out of pinned Go
# modules into .testbed/charts, where the test bed, the tests and the local product install them
# from with the real helm, and kwok's stage definitions into .testbed/kwok-stages. The Go module
# proxy is the one registry here that carries these sources.
set -euo pipefail

root=$(cd "$(dirname "$0")/../../.." && pwd)
out="$root/.testbed/charts"
stages="$root/.testbed/kwok-stages"

# ISTIO_MODULE, shared with build-binaries.sh (pilot-discovery comes from the same commit).
source "$root/test/testbed/scripts/versions.sh"
TAILSCALE_MODULE=tailscale.com@v1.102.5
KWOK_MODULE=sigs.k8s.io/kwok@v0.8.0

stamp="$out/.stamp"
# The last part names the stages' own edit below, so a changed edit copies them again.
want="$ISTIO_MODULE|$TAILSCALE_MODULE|$KWOK_MODULE|pod-complete-skips-traffic-check"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -d "$stages" ]; then
  echo "testbed charts and kwok stages up to date in .testbed"
  exit 0
fi

module_dir() {
  (cd "$root/test/testbed/go" && GOTOOLCHAIN=local go mod download -json "$1") |
    sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p'
}

istio=$(module_dir "$ISTIO_MODULE")
tailscale=$(module_dir "$TAILSCALE_MODULE")
kwok=$(module_dir "$KWOK_MODULE")
[ -d "$istio/manifests/charts" ] || { echo "istio charts not found in $istio" >&2; exit 1; }
[ -d "$tailscale/cmd/k8s-operator/deploy/chart" ] || { echo "tailscale chart not found in $tailscale" >&2; exit 1; }

rm -rf "$out" && mkdir -p "$out"
cp -r "$istio/manifests/charts/base" "$out/istio-base"
cp -r "$istio/manifests/charts/istio-control/istio-discovery" "$out/istiod"
cp -r "$istio/manifests/charts/gateway" "$out/gateway"
cp -r "$tailscale/cmd/k8s-operator/deploy/chart" "$out/tailscale-operator"
cp -r "$tailscale/cmd/k8s-operator/deploy/crds" "$out/tailscale-crds"

# Nodes become Ready and keep a heartbeat; pods become Ready, complete and go away like on kubelets.
rm -rf "$stages" && mkdir -p "$stages"
cp "$kwok/kustomize/stage/node/fast/node-initialize.yaml" \
  "$kwok/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
  "$kwok/kustomize/stage/pod/fast/pod-ready.yaml" \
  "$kwok/kustomize/stage/pod/fast/pod-complete.yaml" \
  "$kwok/kustomize/stage/pod/fast/pod-delete.yaml" "$stages/"
chmod -R u+w "$out" "$stages"
# Except the pods of mesh:check-traffic's Job: the test bed runs their client and completes them
# with its result (test/testbed/src/kubelet/checkJobRunner.ts), as a kubelet would.
sed -i "s|^    matchExpressions:\$|&\n    - key: '.metadata.labels[\"tailmesh.io/traffic-check\"]'\n      operator: 'DoesNotExist'|" \
  "$stages/pod-complete.yaml"
grep -q 'tailmesh.io/traffic-check' "$stages/pod-complete.yaml" || { echo "pod-complete stage not narrowed" >&2; exit 1; }
echo "$want" > "$stamp"
echo "testbed charts and kwok stages copied to .testbed"
