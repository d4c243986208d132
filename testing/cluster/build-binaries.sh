#!/usr/bin/env bash
# Builds one of the real binaries the local cluster runs (kubernetes control plane,
# etcd or kwok) from the Go module proxy into <dest>. Called by testing/cluster,
# which keys <dest> by component and version in a per-user cache. Tests and the
# demo cluster only: the product itself is TypeScript.
#
# Usage: build-binaries.sh kubernetes|etcd|kwok|istio-client|istio-oracle|pilot-discovery|prometheus <version> <dest-dir>
set -euo pipefail

component=${1:?usage: build-binaries.sh kubernetes|etcd|kwok|istio-client|istio-oracle|pilot-discovery|prometheus <version> <dest-dir>}
version=${2:?missing version}
dest=${3:?missing dest dir}

if ! command -v go >/dev/null 2>&1; then
  echo "build-binaries: 'go' is not on PATH. Install Go, or set KUBEBUILDER_ASSETS to a folder holding kube-apiserver, etcd, kube-controller-manager, kube-scheduler and kwok." >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/weft-build-$component.XXXXXX")
trap 'rm -rf "$work"' EXIT
export CGO_ENABLED=0 GOFLAGS=-mod=mod GOTOOLCHAIN=local
step() { echo "[build $component $version] $(date +%H:%M:%S) $*"; }
mkdir -p "$work/out" "$work/mod"
cd "$work/mod"

case "$component" in
kubernetes)
  minor=$(echo "$version" | cut -d. -f2)
  patch=$(echo "$version" | cut -d. -f3)
  step "reading the release's go.mod to derive its staging modules"
  gomod=$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')
  [ -f "$gomod" ] || { echo "build-binaries: could not download k8s.io/kubernetes@$version from the Go module proxy" >&2; exit 1; }
  {
    echo "module weft.dev/kubernetes-binaries"
    echo
    grep -m1 '^go ' "$gomod"
    # godebug applies only in the main module, so the release's line is copied here.
    grep -m1 '^godebug ' "$gomod" || true
    echo
    echo "require k8s.io/kubernetes $version"
    echo
    # The release pins each staging module at v0.0.0 with a local replace; map each
    # one to its published v0.<minor>.<patch> tag instead.
    go mod edit -json "$gomod" | python3 -c '
import json, sys
mod = json.load(sys.stdin)
for req in mod.get("Require") or []:
    if req["Path"].startswith("k8s.io/") and req["Version"] == "v0.0.0":
        print("replace %s => %s v0.%s.%s" % (req["Path"], req["Path"], sys.argv[1], sys.argv[2]))
' "$minor" "$patch"
  } > go.mod
  cmds="kube-apiserver kube-controller-manager kube-scheduler kubectl"
  { printf '//go:build tools\n\npackage tools\n\nimport (\n'; for c in $cmds; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$c"; done; printf ')\n'; } > tools.go
  step "wrapper go.mod has $(grep -c '^replace' go.mod) staging replaces; resolving modules"
  go mod tidy
  ldflags="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags="$ldflags -X $pkg.gitVersion=$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  done
  step "compiling $cmds (about 10 minutes the first time on 2 cores)"
  # shellcheck disable=SC2046
  go build -trimpath -ldflags "$ldflags" -o "$work/out/" $(for c in $cmds; do echo "k8s.io/kubernetes/cmd/$c"; done)
  ;;
etcd)
  step "resolving go.etcd.io/etcd/server/v3"
  go mod init weft.dev/etcd-binary >/dev/null 2>&1
  go get -tool "go.etcd.io/etcd/server/v3@$version"
  step "compiling etcd"
  go build -trimpath -ldflags "-s -w" -o "$work/out/etcd" go.etcd.io/etcd/server/v3
  ;;
kwok)
  step "compiling kwok"
  GOBIN="$work/out" go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@$version"
  # Standalone kwok needs its Stage objects; take the ones the same release ships.
  src=$(go mod download -json "sigs.k8s.io/kwok@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
  stages="$src/kustomize/stage"
  for f in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
    pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    [ -f "$stages/$f" ] || { echo "build-binaries: kwok $version lacks the stage $f" >&2; exit 1; }
    echo "---"
    cat "$stages/$f"
  done > "$work/out/kwok-stages.yaml"
  ;;
istio-client)
  # Istio publishes no semver tags to the module proxy; the version is a pseudo-version of istio.io/istio.
  step "resolving istio.io/istio@$version"
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  cp "$here/../istio-client/"*.go .
  printf 'module weft.dev/istio-client\n\ngo 1.26.0\n\nrequire istio.io/istio %s\n' "$version" > go.mod
  go mod tidy
  step "compiling Istio's CA and Delta xDS clients (a few minutes the first time)"
  go build -trimpath -ldflags "-s -w" -o "$work/out/istio-client" .
  ;;
istio-oracle)
  # Istio's config generator and simulator run as a Go test binary (they take a *testing.T).
  step "resolving istio.io/istio@$version"
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  cp "$here/../istio-oracle/"*.go .
  printf 'module weft.dev/istio-oracle\n\ngo 1.26.0\n\nrequire istio.io/istio %s\n' "$version" > go.mod
  go mod tidy
  step "compiling Istio's generator and simulator as the parity oracle (about 10 minutes the first time on 2 cores)"
  go test -c -trimpath -ldflags "-s -w" -o "$work/out/istio-oracle" .
  ;;
pilot-discovery)
  # istiod itself, for `make bench` only (side by side with weftd); never part of ensureClusterBinaries.
  step "resolving istio.io/istio@$version"
  printf 'module weft.dev/pilot-discovery\n\ngo 1.26.0\n\nrequire istio.io/istio %s\n' "$version" > go.mod
  printf '//go:build tools\n\npackage tools\n\nimport _ "istio.io/istio/pilot/cmd/pilot-discovery"\n' > tools.go
  go mod tidy
  step "compiling pilot-discovery (about 10 minutes the first time on 2 cores)"
  go build -trimpath -ldflags "-s -w -X istio.io/istio/pkg/version.buildVersion=$version" -o "$work/out/pilot-discovery" istio.io/istio/pilot/cmd/pilot-discovery
  ;;
prometheus)
  # Prometheus itself, for the dashboard's Prometheus source test only (opt-in; never part of ensureClusterBinaries).
  # Its v3 releases are published to the module proxy as v0.3xx.y (3.16.0 is v0.316.0). Without the
  # `builtinassets` tag the web UI is left out; the HTTP API the test queries is all there.
  step "resolving github.com/prometheus/prometheus@$version"
  go mod init weft.dev/prometheus-binary >/dev/null 2>&1
  go get -tool "github.com/prometheus/prometheus/cmd/prometheus@$version"
  step "compiling prometheus"
  go build -trimpath -ldflags "-s -w" -o "$work/out/prometheus" github.com/prometheus/prometheus/cmd/prometheus
  ;;
*)
  echo "build-binaries: unknown component '$component' (want kubernetes, etcd, kwok, istio-client, istio-oracle, pilot-discovery or prometheus)" >&2
  exit 2
  ;;
esac

# Publish atomically so an interrupted build never leaves a half-filled cache entry.
mkdir -p "$(dirname "$dest")"
rm -rf "$dest.partial"
mv "$work/out" "$dest.partial"
rm -rf "$dest"
mv "$dest.partial" "$dest"
step "ready in $dest"
