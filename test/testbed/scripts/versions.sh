# Pins shared by build-binaries.sh and fetch-assets.sh, which source this file.
# shellcheck shell=bash

# Istio tags have no "v" prefix, so the module proxy knows Istio only by pseudo-version.
# test/testbed/go-istio/go.mod requires the same version (build-binaries.sh checks it).
ISTIO_MODULE_VERSION=v0.0.0-20260827124520-eed52ebb66ad
ISTIO_MODULE=istio.io/istio@$ISTIO_MODULE_VERSION
