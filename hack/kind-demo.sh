#!/usr/bin/env bash
# kind-demo.sh (`make kind-demo`): siemship end to end on a local kind cluster.
#
# Needs Docker (for kind's nodes), kind, kubectl, helm, go and internet
# access. It creates a kind cluster with three workers and no default CNI,
# installs Cilium and Tetragon (with the JSON export siemship reads),
# applies tracingpolicies/, builds the siemship image without a Docker build
# (hack/image.sh, as `make image`: an OCI archive for both platforms) and
# loads the archive into kind, installs the chart, starts a workload that
# triggers the policies, and shows the events arriving.
#
# Where the events go:
#   LOGSCALE_INGEST_TOKEN set: to LogScale (LOGSCALE_URL, default LogScale
#     Community); see the README's walk-through for the token.
#   otherwise: to an in-cluster LogScale-compatible receiver
#     (`siemship receiver` from the same image), whose counters this script
#     prints.
#
# Settings (environment): CLUSTER_NAME, CILIUM_VERSION, TETRAGON_VERSION,
# LOGSCALE_URL, LOGSCALE_INGEST_TOKEN, KEEP_CLUSTER=1 to reuse a cluster.
# Remove the cluster with: kind delete cluster --name siemship-demo
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
kind_dir="${repo}/hack/kind"
cluster="${CLUSTER_NAME:-siemship-demo}"
cilium_version="${CILIUM_VERSION:-1.18.0}"
# Tetragon 1.8 moves the export to /var/log/tetragon: keep chart and
# Tetragon in step (tetragon.newExportDirectory) when raising this.
tetragon_version="${TETRAGON_VERSION:-1.7.0}"
logscale_url="${LOGSCALE_URL:-https://cloud.community.humio.com}"
image="siemship:dev"
image_dir="${repo}/bin/image"
ns="kube-system"
receiver_ns="logscale-demo"

step() { printf '\n==> %s\n' "$*"; }
die() {
	echo "kind-demo: $*" >&2
	exit 1
}

check_tools() {
	local tool
	for tool in docker kind kubectl helm go; do
		command -v "${tool}" >/dev/null 2>&1 || die "${tool} is required (see the README, 'Try it on kind')"
	done
	docker info >/dev/null 2>&1 || die "the Docker engine is not running"
}

create_cluster() {
	if kind get clusters 2>/dev/null | grep -qx "${cluster}"; then
		[[ "${KEEP_CLUSTER:-0}" == 1 ]] || die "cluster ${cluster} exists: delete it (kind delete cluster --name ${cluster}) or set KEEP_CLUSTER=1"
		step "reusing kind cluster ${cluster}"
	else
		step "creating kind cluster ${cluster} (1 control plane, 3 workers, no default CNI)"
		kind create cluster --name "${cluster}" --config "${kind_dir}/cluster.yaml" --wait 0s
	fi
	kubectl config use-context "kind-${cluster}" >/dev/null
}

install_cilium_tetragon() {
	step "installing Cilium ${cilium_version} and Tetragon ${tetragon_version}"
	helm repo add cilium https://helm.cilium.io >/dev/null 2>&1 || true
	helm repo update cilium >/dev/null
	helm upgrade --install cilium cilium/cilium --version "${cilium_version}" -n "${ns}" \
		-f "${kind_dir}/cilium-values.yaml" --wait --timeout 10m
	kubectl wait --for=condition=Ready nodes --all --timeout 5m
	helm upgrade --install tetragon cilium/tetragon --version "${tetragon_version}" -n "${ns}" \
		-f "${kind_dir}/tetragon-values.yaml" --wait --timeout 10m
	kubectl -n "${ns}" rollout status daemonset/tetragon --timeout 5m
}

apply_policies() {
	step "applying the tracing policies (tracingpolicies/)"
	# The CRDs are created by Tetragon's operator shortly after it starts.
	local i
	for i in $(seq 1 60); do
		kubectl get crd tracingpolicies.cilium.io >/dev/null 2>&1 && break
		[[ "${i}" == 60 ]] && die "Tetragon's TracingPolicy CRD did not appear"
		sleep 2
	done
	kubectl wait --for=condition=Established crd/tracingpolicies.cilium.io --timeout 2m
	kubectl apply -f "${repo}/tracingpolicies/"
}

# build_image builds the image as `make image` does and loads its OCI
# archive into the kind nodes (containerd imports the platform it runs; the
# name recorded in the archive is ${image}).
build_image() {
	step "building ${image} (hack/image.sh, no Docker build) and loading it into kind"
	local version
	version="$(git -C "${repo}" describe --tags --always --dirty 2>/dev/null || echo dev)"
	bash "${repo}/hack/image.sh" "${image_dir}" "${version}" "${image}"
	kind load image-archive "${image_dir}/siemship.tar" --name "${cluster}"
}

# random_token prints 32 hex characters.
random_token() { od -An -N16 -tx1 /dev/urandom | tr -d ' \n'; }

# start_receiver deploys the in-cluster receiver and prints its ingest URL.
start_receiver() {
	step "no LOGSCALE_INGEST_TOKEN: starting an in-cluster LogScale-compatible receiver" >&2
	local token
	token="$(random_token)"
	kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Namespace
metadata:
  name: ${receiver_ns}
EOF
	# Tokens go through standard input, not the command line (ps shows that).
	printf '%s=tetragon' "${token}" | kubectl -n "${receiver_ns}" create secret generic logscale-receiver-tokens \
		--from-file=tokens=/dev/stdin --dry-run=client -o yaml | kubectl apply -f - >/dev/null
	kubectl apply -f "${kind_dir}/receiver.yaml" >&2
	kubectl -n "${receiver_ns}" rollout status deployment/logscale-receiver --timeout 3m >&2
	printf '%s\n' "${token}"
}

install_siemship() {
	local token url
	if [[ -n "${LOGSCALE_INGEST_TOKEN:-}" ]]; then
		token="${LOGSCALE_INGEST_TOKEN}"
		url="${logscale_url}"
	else
		token="$(start_receiver)"
		url="http://logscale-receiver.${receiver_ns}.svc:8080"
	fi
	step "installing siemship, shipping to ${url}"
	printf '%s' "${token}" | kubectl -n "${ns}" create secret generic siemship-logscale \
		--from-file=token=/dev/stdin --dry-run=client -o yaml | kubectl apply -f - >/dev/null
	helm upgrade --install siemship "${repo}/chart/siemship" -n "${ns}" \
		-f "${kind_dir}/siemship-values.yaml" --set config.sinks.logscale.url="${url}"
	kubectl -n "${ns}" rollout status daemonset/siemship --timeout 5m
}

start_workload() {
	step "starting a workload that triggers the policies (namespace demo)"
	kubectl apply -f "${kind_dir}/workload.yaml"
	kubectl -n demo rollout status deployment/suspicious --timeout 3m
}

show_events() {
	step "the agent's first-contact summary and status lines"
	sleep 30
	kubectl -n "${ns}" logs daemonset/siemship --tail 200 | grep -E '"msg":"(siemship started|status)"' | tail -n 4 || true
	if [[ -n "${LOGSCALE_INGEST_TOKEN:-}" ]]; then
		step "events are in LogScale: search the token's repository for"
		echo '  #source=tetragon #event_type=process_kprobe | groupBy(process_kprobe.policy_name)'
		echo "  (siemship logscale setup installs the 'Tetragon security overview' dashboard)"
		return
	fi
	local proxy="/api/v1/namespaces/${receiver_ns}/services/http:logscale-receiver:8080/proxy"
	step "events received, by tag (the receiver's /_emulator/stats)"
	kubectl get --raw "${proxy}/_emulator/stats"
	echo
	step "policy events received, by tracing policy"
	kubectl get --raw "${proxy}/_emulator/events?limit=10000" | policy_counts
	echo
	echo "Watch them arrive: kubectl get --raw '${proxy}/_emulator/stats'"
}

# policy_counts reads the receiver's /_emulator/events answer and prints how
# many events each of siemship's tracing policies produced. It counts the
# flattened fields ("process_kprobe.policy_name":"siemship-…"), which appear
# once per event (the raw event text appears twice, escaped).
policy_counts() {
	grep -oE '"process_[a-z]+\.policy_name":"siemship-[a-z-]+"' |
		sed -E 's/.*:"(siemship-[a-z-]+)"$/\1/' | sort | uniq -c || true
}

main() {
	check_tools
	create_cluster
	install_cilium_tetragon
	apply_policies
	build_image
	install_siemship
	start_workload
	show_events
	step "done. Remove the cluster with: kind delete cluster --name ${cluster}"
}

# Sourcing the script (the tests do) defines the functions without running.
if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
	main "$@"
fi
