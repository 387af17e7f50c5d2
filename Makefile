# siemship — see README.md. Every target works on a fresh machine: tools the
# tests need (etcd, kube-apiserver, helm, shellcheck) are installed or built
# by the tests' own setup into .cache/.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/siemship/siemship/internal/version.Version=$(VERSION)
BIN     := bin/siemship
FUZZTIME ?= 10s

.PHONY: all build demo test unit fuzz bench bench-k8s kube-tools lint clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/siemship

## demo: the main job on an embedded default — writer with real rotations, agent, local LogScale-compatible receiver
demo: build
	./$(BIN) demo

## test: every test, with the race detector, plus vet, gofmt and brief fuzzing
test: lint unit fuzz

lint:
	@out=$$(gofmt -l cmd internal test logscale tools/image); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd tools/image && $(GO) vet ./...

# etcd (Debian) and kube-apiserver/kubectl (built from k8s.io/kubernetes in
# tools/kube) for the integration tests; built once into .cache/tools.
kube-tools:
	bash hack/kube-tools.sh >/dev/null

unit: kube-tools
	$(GO) test -race -count=1 -timeout 45m ./...
	cd tools/image && $(GO) test -race -count=1 ./...

# Each fuzz target runs briefly; `make fuzz FUZZTIME=10m` for a longer hunt.
FUZZ_TARGETS := \
	FuzzParse:./internal/processing/tetragonparse/ \
	FuzzLines:./internal/sources/tetragon/ \
	FuzzStructuredBody:./internal/emulators/logscale/ \
	FuzzHECBody:./internal/emulators/logscale/ \
	FuzzJavaTime:./internal/emulators/logscale/ \
	FuzzJSONString:./internal/jsonstr/ \
	FuzzParseRetryAfter:./internal/sinks/delivery/ \
	FuzzScanEvent:./internal/processing/k8smeta/ \
	FuzzEnrich:./internal/processing/k8smeta/ \
	FuzzDecodeBody:./internal/sources/logpush/

fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		name=$${t%%:*}; pkg=$${t#*:}; \
		echo "fuzz $$name ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

## bench: end-to-end throughput, CPU per event and peak RSS against a read+gzip reference
bench:
	$(GO) test -run '^$$' -bench BenchmarkEndToEnd -benchtime 1x -timeout 30m ./test/bench/

## bench-k8s: enrichment cost per event and cache memory with 110 local and 5,000 remote pods in a real API server
bench-k8s: kube-tools
	$(GO) test -run '^$$' -bench 'Benchmark(Enrich|ScanEvent)' -benchtime 3s ./internal/processing/k8smeta/

clean:
	rm -rf bin .cache

# --- Packaging: image, manifests, kind demo, LogScale package -------------

.PHONY: image image-push docker-image manifests kind-demo logscale-package

IMAGE ?= siemship:dev
IMAGE_DIR := bin/image

## image: the multi-arch (linux/amd64, linux/arm64) OCI image without Docker: bin/image/oci (layout) and bin/image/siemship.tar
image:
	bash hack/image.sh $(IMAGE_DIR) $(VERSION) $(IMAGE)

## image-push: build the image and push it as IMAGE=registry/name:tag (credentials of docker login / the default keychain)
image-push: image
	cd tools/image && $(GO) run . push -layout $(CURDIR)/$(IMAGE_DIR)/oci $(IMAGE)

## docker-image: the same image with Docker and the Dockerfile (buildx for both platforms)
docker-image:
	docker build -t $(IMAGE) --build-arg VERSION=$(VERSION) \
		--build-arg REVISION=$$(git rev-parse HEAD 2>/dev/null || echo unknown) \
		--build-arg CREATED=$$(date -u +%Y-%m-%dT%H:%M:%SZ) .

## manifests: render manifests/ from chart/siemship (a test fails when they differ)
manifests:
	bash hack/manifests.sh

## kind-demo: kind cluster with Cilium, Tetragon, the tracing policies and siemship (needs Docker, kind, helm, internet)
kind-demo:
	bash hack/kind-demo.sh

## logscale-package: the LogScale package (parser and dashboard) as bin/siemship-tetragon-package.zip
logscale-package: build
	./$(BIN) logscale package -o bin/siemship-tetragon-package.zip
