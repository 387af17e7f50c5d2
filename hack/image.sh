#!/usr/bin/env bash
# image.sh [OUT] [VERSION] [NAME] (`make image`) builds siemship's OCI image
# for linux/amd64 and linux/arm64 without a Docker engine and without
# pulling a base image: the static binaries of hack/build-static.sh, put
# into an image by tools/image (go-containerregistry). It writes
#   OUT/oci/           the OCI layout (index -> one manifest per platform)
#   OUT/siemship.tar   the same layout as a tar file, for
#                      `kind load image-archive`, `ctr images import`,
#                      `skopeo copy oci-archive:…`
#   OUT/linux-<arch>/siemship  the binaries
# OUT defaults to <repo>/bin/image, NAME (recorded in the layout) to
# siemship:dev. The creation time is the commit's ($SOURCE_DATE_EPOCH
# overrides it), so the same commit builds the same image digest.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-${repo}/bin/image}"
version="${2:-dev}"
name="${3:-siemship:dev}"
mkdir -p "${out}"
out="$(cd "${out}" && pwd)"

revision="$(git -C "${repo}" rev-parse HEAD 2>/dev/null || echo unknown)"
SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-$(git -C "${repo}" log -1 --format=%ct 2>/dev/null || date +%s)}"
export SOURCE_DATE_EPOCH

binaries=()
for arch in amd64 arm64; do
	bash "${repo}/hack/build-static.sh" "${out}/linux-${arch}/siemship" "${arch}" "${version}"
	binaries+=(-binary "linux/${arch}=${out}/linux-${arch}/siemship")
done

cd "${repo}/tools/image"
go run . build -layout "${out}/oci" -tarball "${out}/siemship.tar" \
	-name "${name}" -version "${version}" -revision "${revision}" "${binaries[@]}"
