# siemship — see README.md. Every target works on a fresh machine: tools the
# tests need (etcd, kube-apiserver, helm, shellcheck) are installed or built
# by the tests' own setup into .cache/.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/siemship/siemship/internal/version.Version=$(VERSION)
BIN     := bin/siemship
FUZZTIME ?= 10s

.PHONY: all build demo test unit fuzz bench lint clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/siemship

## demo: the main job on an embedded default — writer with real rotations, agent, local LogScale-compatible receiver
demo: build
	./$(BIN) demo

## test: every test, with the race detector, plus vet, gofmt and brief fuzzing
test: lint unit fuzz

lint:
	@out=$$(gofmt -l cmd internal); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 -timeout 45m ./...

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./internal/processing/tetragonparse/
	$(GO) test -run '^$$' -fuzz '^FuzzLines$$' -fuzztime $(FUZZTIME) ./internal/sources/tetragon/
	$(GO) test -run '^$$' -fuzz '^FuzzStructuredBody$$' -fuzztime $(FUZZTIME) ./internal/emulators/logscale/
	$(GO) test -run '^$$' -fuzz '^FuzzHECBody$$' -fuzztime $(FUZZTIME) ./internal/emulators/logscale/

## bench: end-to-end throughput, CPU per event and peak RSS against a read+gzip reference
bench:
	$(GO) test -run '^TestBenchEndToEnd$$' -count=1 -v -timeout 30m ./test/bench/ -args -bench-e2e

clean:
	rm -rf bin .cache
