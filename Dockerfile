# syntax=docker/dockerfile:1
# siemship's image with Docker, an alternative to `make image` (which builds
# the same image without Docker or a base image, see hack/image.sh): a
# static Go binary on distroless/static (CA certificates, tzdata, no shell).
# Built for amd64 and arm64 from any build platform:
#   docker buildx build --platform linux/amd64,linux/arm64 -t siemship:dev .
# or `make docker-image` (the local platform only).
#
# The image's user is distroless' unprivileged 65532, as in `make image`; the
# DaemonSet asks for uid 0 (runAsUser: 0) with every capability dropped:
# Tetragon's export file is root-owned 0600, and uid 0 reads it with the
# owner bit alone.

ARG GO_VERSION=1.26

# The builder runs on the build machine's platform and cross-compiles, which
# is fast (no emulation) because the binary needs no cgo.
FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Build caches live outside any home directory, mounted per build.
ENV GOCACHE=/cache/go-build
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Set by BuildKit from --platform (linux/amd64, linux/arm64).
ARG TARGETARCH=amd64
ARG VERSION=dev
# hack/build-static.sh is the one build command for the image's binary
# (CGO_ENABLED=0, linux, -trimpath, stripped, version stamped); the tests run
# it too and check that its output is static.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/cache/go-build \
    bash hack/build-static.sh /out/siemship "${TARGETARCH}" "${VERSION}"

FROM gcr.io/distroless/static-debian12:latest
ARG VERSION=dev
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="siemship" \
      org.opencontainers.image.description="Ships Tetragon security events to Falcon LogScale without losing any" \
      org.opencontainers.image.source="https://github.com/siemship/siemship" \
      org.opencontainers.image.url="https://github.com/siemship/siemship" \
      org.opencontainers.image.documentation="https://github.com/siemship/siemship#readme" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.vendor="siemship"
COPY --from=build /out/siemship /usr/local/bin/siemship
# Not root unless the pod asks (the chart's DaemonSet does, to read
# Tetragon's 0600 export file; it drops every capability and mounts the root
# filesystem read-only).
USER 65532:65532
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/siemship"]
CMD ["run"]
