# pbxd — build, run, test, lint and benchmark the appliance.

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.0.0-dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X main.version=$(VERSION) -X main.commit=$(COMMIT)
GOBUILD := CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)"
GOBIN   := $(shell go env GOPATH)/bin
STATICCHECK_VERSION := v0.8.2

.PHONY: all build build-all run test test-deps lint bench fuzz clean

all: build

build:
	$(GOBUILD) -o bin/pbxd ./cmd/pbxd

# Supported appliance targets. 32-bit builds are not offered: Badger loses
# data there, and the store refuses to open (make test proves it on 386).
build-all:
	GOOS=linux GOARCH=amd64 $(GOBUILD) -o bin/pbxd-linux-amd64 ./cmd/pbxd
	GOOS=linux GOARCH=arm64 $(GOBUILD) -o bin/pbxd-linux-arm64 ./cmd/pbxd

run: build
	bin/pbxd serve --data-dir ./data --log-format text

test-deps:
	scripts/test-deps.sh

test: test-deps
	go test -race -count=1 -timeout 15m ./...
	GOARCH=386 CGO_ENABLED=0 go test -count=1 -run 'TestOpenRefuses32Bit' ./store/

lint:
	@test -x $(GOBIN)/staticcheck || go install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	go vet ./...
	$(GOBIN)/staticcheck ./...

bench: build
	BENCH_DEPS=1 scripts/test-deps.sh
	go test -run '^$$' -bench . -benchmem -count=1 ./...
	go test -tags bench -run 'TestBench' -v -count=1 -timeout 20m ./cmd/pbxd/

fuzz:
	@for pkg in $$(go list ./...); do \
	  for f in $$(go test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; go test -run '^$$' -fuzz "^$$f$$" -fuzztime 10s $$pkg || exit 1; \
	  done; \
	done

clean:
	rm -rf bin/
