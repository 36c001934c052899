#!/usr/bin/env bash
# Builds the test bed's binaries (etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kubectl, kwok, helm) from pinned Go modules with the machine's Go, into .testbed/bin.
# A stamp of the inputs makes a second run a no-op; Go's module and build caches make a rebuild
# after an input change incremental.
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
root=$(cd "$here/../.." && pwd)
bin="$root/.testbed/bin"
mkdir -p "$bin"

K8S_VERSION=v1.34.12
KWOK_VERSION=v0.8.0
HELM_VERSION=v3.19.5

export GOTOOLCHAIN=local
export GOFLAGS=-mod=mod
export CGO_ENABLED=0

stamp="$bin/.stamp"
want="$(go version)|$K8S_VERSION|$KWOK_VERSION|$HELM_VERSION|$(sha256sum "$here/go/go.mod" "$here/go/go.sum" | sha256sum | cut -c1-16)"
all=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok helm)
missing=0
for b in "${all[@]}"; do [ -x "$bin/$b" ] || missing=1; done
if [ "$missing" = 0 ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "testbed binaries up to date in $bin"
  exit 0
fi

start=$(date +%s)
step() { echo "[testbed build $(( $(date +%s) - start ))s] $*"; }

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

echo "$want" > "$stamp"
step "done"
