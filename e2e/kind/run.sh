#!/usr/bin/env bash
# `make e2e-kind`: the journey (e2e/journey.e2e.ts) on kind, with real Envoy sidecars.
#   usage: WEFT_IMAGE=... ECHO_IMAGE=... e2e/kind/run.sh <jest command...>
# Uses the kind cluster WEFT_E2E_KIND_CLUSTER (default weft-e2e) if it exists, else
# creates it from e2e/kind/kind-config.yaml and deletes it afterwards (set
# WEFT_E2E_KEEP_CLUSTER=1 to keep it). Never touches ~/.kube/config: the cluster's
# kubeconfig lives in a temporary file. Needs docker, kind, kubectl and the internet
# (the nodes pull docker.io/istio/proxyv2).
set -euo pipefail
cd "$(dirname "$0")/../.."

cluster=${WEFT_E2E_KIND_CLUSTER:-weft-e2e}
: "${WEFT_IMAGE:?set WEFT_IMAGE (make e2e-kind does)}"
: "${ECHO_IMAGE:?set ECHO_IMAGE (make e2e-kind does)}"
for tool in docker kind kubectl; do
  command -v "$tool" >/dev/null || { echo "e2e-kind needs $tool on PATH" >&2; exit 1; }
done

kubeconfig=$(mktemp -t weft-e2e-kubeconfig.XXXXXX)
created=false
cleanup() {
  if $created && [ "${WEFT_E2E_KEEP_CLUSTER:-}" != 1 ]; then
    echo "[e2e-kind] deleting the kind cluster $cluster it created" >&2
    kind delete cluster --name "$cluster" --kubeconfig "$kubeconfig" || true
  fi
  rm -f "$kubeconfig"
}
trap cleanup EXIT

if kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  echo "[e2e-kind] using the existing kind cluster $cluster" >&2
  kind get kubeconfig --name "$cluster" >"$kubeconfig"
else
  echo "[e2e-kind] creating the kind cluster $cluster" >&2
  created=true
  kind create cluster --name "$cluster" --config e2e/kind/kind-config.yaml --kubeconfig "$kubeconfig" --wait 180s
fi

echo "[e2e-kind] loading $WEFT_IMAGE and $ECHO_IMAGE into the nodes" >&2
kind load docker-image --name "$cluster" "$WEFT_IMAGE" "$ECHO_IMAGE"

# The journey installs dist/install.yaml and the sample MeshInstallation itself, and
# uninstalls them; on a cluster it created, it leaves the cleanup to the deletion above.
export KUBECONFIG=$kubeconfig WEFT_E2E_TARGET=kind WEFT_E2E_ECHO_IMAGE=$ECHO_IMAGE
if $created; then export WEFT_E2E_DISPOSABLE_CLUSTER=1; fi
"$@"
