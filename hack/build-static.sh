#!/usr/bin/env bash
# build-static.sh OUT [GOARCH] [VERSION] builds the binary that goes into the
# image: linux, static (no cgo), stripped, version stamped. The Dockerfile
# runs it, `make image` runs it when there is no Docker engine, and the
# packaging tests run it and check that the result is static.
set -euo pipefail

out="${1:?usage: build-static.sh OUT [GOARCH] [VERSION]}"
arch="${2:-$(go env GOARCH)}"
version="${3:-dev}"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${repo}"
CGO_ENABLED=0 GOOS=linux GOARCH="${arch}" go build -trimpath \
	-ldflags "-s -w -X github.com/siemship/siemship/internal/version.Version=${version}" \
	-o "${out}" ./cmd/siemship
