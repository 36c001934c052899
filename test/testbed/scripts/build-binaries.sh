#!/usr/bin/env bash
# Builds the test bed's binaries from pinned Go modules with the machine's Go, into .testbed/bin:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, kwok, helm, Istio's
# pilot-discovery (istiod), and from test/testbed/go-istio xds-probe, which asks istiod over ADS what
# a proxy gets, and mesh-dataplane, which stands in for Istio's data plane (sidecar, east-west
# gateway, client) acting on istiod's xDS and CA.
# Each group has a stamp of its inputs: a second run is a no-op, and a changed input rebuilds only
# its group. Go's module and build caches make a rebuild after an input change incremental.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$here/../.." && pwd)
bin="$root/.testbed/bin"
mkdir -p "$bin"

# ISTIO_MODULE_VERSION / ISTIO_MODULE, shared with fetch-assets.sh (the charts come from the same commit).
source "$here/scripts/versions.sh"
K8S_VERSION=v1.34.12
KWOK_VERSION=v0.8.0
HELM_VERSION=v3.19.5

export GOTOOLCHAIN=local
export GOFLAGS=-mod=mod
export CGO_ENABLED=0

# fresh STAMP WANT BINARY...: the binaries exist and STAMP records that they were built from WANT.
fresh() {
  local stamp=$1 want=$2 b
  shift 2
  for b in "$@"; do [ -x "$bin/$b" ] || return 1; done
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]
}

gover=$(go version)
k8s_stamp="$bin/.stamp"
k8s_want="$gover|$K8S_VERSION|$KWOK_VERSION|$HELM_VERSION|$(sha256sum "$here/go/go.mod" "$here/go/go.sum" | sha256sum | cut -c1-16)"
k8s_bins=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok helm)
pd_stamp="$bin/.stamp-pilot-discovery"
pd_want="$gover|$ISTIO_MODULE"
# xds-probe's and mesh-dataplane's inputs: the pin, go.mod, go.sum and the module's (non-test) sources.
xp_hash=$(cd "$here/go-istio" &&
  find . -type f \( -name go.mod -o -name go.sum -o \( -name '*.go' ! -name '*_test.go' \) \) |
  LC_ALL=C sort | xargs sha256sum | sha256sum | cut -c1-16)
xp_stamp="$bin/.stamp-xds-probe"
xp_want="$gover|$ISTIO_MODULE|$xp_hash"

if fresh "$k8s_stamp" "$k8s_want" "${k8s_bins[@]}" &&
  fresh "$pd_stamp" "$pd_want" pilot-discovery &&
  fresh "$xp_stamp" "$xp_want" xds-probe mesh-dataplane; then
  echo "testbed binaries up to date in $bin"
  exit 0
fi

start=$(date +%s)
step() { echo "[testbed build $(( $(date +%s) - start ))s] $*"; }

if fresh "$k8s_stamp" "$k8s_want" "${k8s_bins[@]}"; then
  step "kubernetes $K8S_VERSION, etcd, kwok $KWOK_VERSION, helm $HELM_VERSION up to date"
else
  vpkg=k8s.io/component-base/version
  cpkg=k8s.io/client-go/pkg/version
  minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  ldflags="-s -w"
  for p in $vpkg $cpkg; do
    ldflags+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done

  cd "$here/go"
  for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    step "building $cmd $K8S_VERSION"
    go build -ldflags "$ldflags" -o "$bin/$cmd" "k8s.io/kubernetes/cmd/$cmd"
  done
  step "building etcd"
  go build -ldflags "-s -w" -o "$bin/etcd" go.etcd.io/etcd/server/v3

  cd "$root"
  step "building kwok $KWOK_VERSION"
  GOBIN="$bin" GOFLAGS= go install -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  step "building helm $HELM_VERSION"
  GOBIN="$bin" GOFLAGS= go install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  echo "$k8s_want" > "$k8s_stamp"
fi

if ! fresh "$pd_stamp" "$pd_want" pilot-discovery || ! fresh "$xp_stamp" "$xp_want" xds-probe mesh-dataplane; then
  # xds-probe and mesh-dataplane must speak to the istiod they are built next to.
  grep -Eq "^[[:space:]]*(require[[:space:]]+)?istio\.io/istio $ISTIO_MODULE_VERSION([[:space:]]|$)" "$here/go-istio/go.mod" || {
    echo "test/testbed/go-istio/go.mod must require istio.io/istio $ISTIO_MODULE_VERSION (test/testbed/scripts/versions.sh)" >&2
    exit 1
  }
  # Version stamps as Istio's own build sets them (common/scripts/report_build_info.sh, consumed by
  # common/scripts/gobuild.sh): the version is the module's VERSION file plus "-dev", as
  # Makefile.core.mk derives it for an untagged commit, and the revision is the commit the
  # pseudo-version names (it carries only 12 hex digits). `pilot-discovery version` reports
  # these, and xds-probe and mesh-dataplane send the same version as their proxies' ISTIO_VERSION.
  istio_dir=$(cd "$here/go-istio" && go mod download -json "$ISTIO_MODULE" | sed -n 's/^\s*"Dir": "\(.*\)",$/\1/p')
  istio_version="$(cat "$istio_dir/VERSION")-dev"
  ipkg=istio.io/istio/pkg/version
  istio_ldflags="-s -w -X $ipkg.buildVersion=$istio_version -X $ipkg.buildGitRevision=${ISTIO_MODULE_VERSION##*-}"
  istio_ldflags+=" -X $ipkg.buildStatus=Clean -X $ipkg.buildTag=$ISTIO_MODULE_VERSION -X $ipkg.buildHub=registry.istio.io/release"
  istio_ldflags+=" -X $ipkg.buildOS=$(go env GOOS) -X $ipkg.buildArch=$(go env GOARCH)"

  if fresh "$pd_stamp" "$pd_want" pilot-discovery; then
    step "pilot-discovery $istio_version up to date"
  else
    cd "$root"
    step "building pilot-discovery $istio_version ($ISTIO_MODULE)"
    GOBIN="$bin" GOFLAGS= go install -ldflags "$istio_ldflags" "istio.io/istio/pilot/cmd/pilot-discovery@$ISTIO_MODULE_VERSION"
    echo "$pd_want" > "$pd_stamp"
  fi

  if fresh "$xp_stamp" "$xp_want" xds-probe mesh-dataplane; then
    step "xds-probe and mesh-dataplane up to date"
  else
    # -mod=readonly: the committed go.mod and go.sum must be complete.
    cd "$here/go-istio"
    step "building xds-probe"
    GOFLAGS=-mod=readonly go build -ldflags "$istio_ldflags" -o "$bin/xds-probe" ./cmd/xds-probe
    step "building mesh-dataplane"
    GOFLAGS=-mod=readonly go build -ldflags "$istio_ldflags" -o "$bin/mesh-dataplane" ./cmd/mesh-dataplane
    echo "$xp_want" > "$xp_stamp"
  fi
fi

step "done"
