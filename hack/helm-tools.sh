#!/usr/bin/env bash
# helm-tools.sh makes the tools the packaging tests run available: helm, built
# from the helm.sh/helm/v3 module at a pinned version, and shellcheck from
# Debian's package. Each is only built or installed when missing, so a warm
# run takes no time.
#
# helm goes to ${SIEMSHIP_TOOLS_DIR:-<repo>/.cache/tools}/bin. The script
# prints that directory on its last line (the Go tests read it).
set -euo pipefail

helm_version="v3.19.0"
# The Kubernetes version helm assumes without a cluster (helm template, lint),
# set at link time as helm's own Makefile does: the minor of the k8s.io
# modules helm_version is built with. Unset, helm assumes 1.20.
helm_kube_minor="34"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools_dir="${SIEMSHIP_TOOLS_DIR:-${repo}/.cache/tools}"
bin="${tools_dir}/bin"
mkdir -p "${bin}"

log() { echo "helm-tools: $*" >&2; }

# Several test binaries may call this at once: one builds, the others wait
# for it and then find the tools in place. A lock of its own, so that it
# does not wait for a cold kube-apiserver build.
exec 8>"${tools_dir}/.helm.lock"
flock 8

# The version is part of the cached name, so that a bump rebuilds.
build_helm() {
	local target="${bin}/helm-${helm_version}"
	if [[ ! -x "${target}" ]]; then
		log "building helm ${helm_version} (a few minutes on a cold cache)"
		local start="${SECONDS}" gobin
		gobin="$(mktemp -d "${tools_dir}/.helm-build.XXXXXX")"
		# go install pkg@version ignores the project's go.mod.
		local ldflags="-s -w -X helm.sh/helm/v3/internal/version.version=${helm_version}"
		local pkg
		for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
			ldflags+=" -X ${pkg}.k8sVersionMajor=1 -X ${pkg}.k8sVersionMinor=${helm_kube_minor}"
		done
		(cd "${gobin}" && CGO_ENABLED=0 GOBIN="${gobin}" \
			go install -trimpath -ldflags "${ldflags}" "helm.sh/helm/v3/cmd/helm@${helm_version}")
		mv "${gobin}/helm" "${target}"
		rm -rf "${gobin}"
		log "built helm in $((SECONDS - start))s"
	fi
	ln -sf "helm-${helm_version}" "${bin}/helm"
}

install_shellcheck() {
	if command -v shellcheck >/dev/null 2>&1; then
		return
	fi
	log "installing shellcheck"
	export DEBIAN_FRONTEND=noninteractive
	local sudo=()
	if [[ "$(id -u)" != 0 ]]; then
		sudo=(sudo)
	fi
	"${sudo[@]}" apt-get update -qq >&2
	"${sudo[@]}" apt-get install -y -qq shellcheck >&2
}

build_helm
install_shellcheck
echo "${bin}"
