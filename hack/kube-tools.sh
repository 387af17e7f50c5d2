#!/usr/bin/env bash
# kube-tools.sh makes the real Kubernetes components the integration tests run
# available: etcd from Debian's etcd-server package, and kube-apiserver and
# kubectl built from the k8s.io/kubernetes module pinned in tools/kube/go.mod.
# Each is only installed or built when missing, so a warm run takes no time.
#
# Binaries go to ${SIEMSHIP_TOOLS_DIR:-<repo>/.cache/tools}/bin. The script
# prints that directory on its last line (the Go test helper reads it).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_dir="${SIEMSHIP_TOOLS_DIR:-${repo}/.cache/tools}"
bin="${tools_dir}/bin"
mkdir -p "${bin}"

log() { echo "kube-tools: $*" >&2; }

# Test binaries of several packages may call this at once: one builds, the
# others wait for it and then find the binaries in place.
exec 9>"${tools_dir}/.lock"
flock 9

install_etcd() {
	if [[ -x /usr/bin/etcd ]]; then
		return
	fi
	log "installing etcd-server"
	export DEBIAN_FRONTEND=noninteractive
	local sudo=()
	if [[ "$(id -u)" != 0 ]]; then
		sudo=(sudo)
	fi
	"${sudo[@]}" apt-get update -qq >&2
	"${sudo[@]}" apt-get install -y -qq etcd-server >&2
	# The package may start a system etcd on the default ports; the tests run
	# their own on a temporary dir and free ports, so stop it out of the way.
	if command -v systemctl >/dev/null 2>&1; then
		"${sudo[@]}" systemctl disable --now etcd >/dev/null 2>&1 || true
	fi
	if command -v service >/dev/null 2>&1; then
		"${sudo[@]}" service etcd stop >/dev/null 2>&1 || true
	fi
}

# build_tool builds one command of k8s.io/kubernetes unless it is already in
# the cache. It writes to a temporary name first so that an interrupted build
# never leaves a half-written binary behind that later runs would trust.
build_tool() {
	local name="$1"
	if [[ -x "${bin}/${name}" ]]; then
		return
	fi
	log "building ${name} (several minutes on a cold cache)"
	local start="${SECONDS}"
	(cd "${repo}/tools/kube" &&
		CGO_ENABLED=0 go build -trimpath -o "${bin}/${name}.tmp" "k8s.io/kubernetes/cmd/${name}")
	mv "${bin}/${name}.tmp" "${bin}/${name}"
	log "built ${name} in $((SECONDS - start))s"
}

install_etcd
build_tool kube-apiserver
build_tool kubectl
echo "${bin}"
