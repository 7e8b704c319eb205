#!/usr/bin/env bash
# Puts a pinned helm into .infra/bin (for `make chart-check` and the chart tests), built from the
# Go module proxy with `go install`: no download site is needed, only Go. Idempotent: when the
# right version is already there it only prints its path (a few ms); the first build takes a few
# minutes on two cores, later ones reuse Go's module and build caches.
#   scripts/deploy/install-helm.sh        -> prints the path of the helm binary
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.21.4}"
# The Kubernetes version `helm template` and `helm lint` assume without a cluster: helm's own
# Makefile derives it from its k8s.io/client-go (v0.36 for v3.21 -> 1.36); a plain go install
# would leave helm's fallback, 1.20, older than the chart's kubeVersion.
HELM_K8S_MAJOR=1
HELM_K8S_MINOR=36
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BIN="$ROOT/.infra/bin"
HELM="$BIN/helm"

current() { [[ -x "$HELM" ]] && "$HELM" version --template '{{.Version}}' 2>/dev/null; }

if [[ "$(current)" != "$HELM_VERSION" ]]; then
  command -v go >/dev/null || { echo "ERROR: helm is built with Go; install Go 1.24+ first" >&2; exit 1; }
  mkdir -p "$BIN"
  # One build at a time: the tests and a make target may ask together.
  exec 9>"$BIN/.helm.lock"
  flock 9
  if [[ "$(current)" != "$HELM_VERSION" ]]; then
    echo "building helm $HELM_VERSION with go install (first time only, a few minutes)" >&2
    # The -X flags are those of helm's Makefile: the version `helm version` reports (a plain go
    # install leaves it empty and this script would rebuild every time) and the default
    # Kubernetes version. CGO off gives a static binary.
    ldflags=(
      "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
      "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=$HELM_K8S_MAJOR"
      "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$HELM_K8S_MINOR"
      "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=$HELM_K8S_MAJOR"
      "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$HELM_K8S_MINOR"
    )
    CGO_ENABLED=0 GOBIN="$BIN" go install -ldflags "-s -w ${ldflags[*]}" \
      "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
  fi
fi
echo "$HELM"
