# mxgateway build and checks. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
GO ?= go
BUF := $(GO) tool -modfile=tools/go.mod buf
PKGS := ./...
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -X github.com/mxgateway/mxgateway/internal/buildinfo.Version=$(VERSION) -X github.com/mxgateway/mxgateway/internal/buildinfo.Commit=$(COMMIT)

.PHONY: dashboard-shots
.PHONY: all test generate check-generated lint fmt-check vet cross build bench fuzz unit e2e-norace test-windows clean

all: build

## generate: regenerate the checked-in protobuf code with pinned local plugins,
## move the service stubs into their own package (api/internal/grpcpkg), then
## the client kit's descriptor set (api/mxgateway.v1.binpb) from it.
generate:
	$(BUF) generate
	$(GO) run ./api/internal/grpcpkg
	$(GO) run ./api/internal/descset -o api/mxgateway.v1.binpb

## lint: buf lint, plus breaking-change checks against the last commit (for
## uncommitted changes) and against its parent (for the last commit itself).
lint:
	$(BUF) lint
	@for ref in HEAD HEAD~1; do \
		if git rev-parse --verify -q "$$ref" >/dev/null && git cat-file -e "$$ref:buf.yaml" 2>/dev/null; then \
			echo "buf breaking --against .git#ref=$$ref"; \
			$(BUF) breaking --against ".git#ref=$$ref" || exit 1; \
		fi; \
	done

## check-generated: fail when the generated code or descriptor set is stale.
check-generated:
	@tmp=$$(mktemp -d); trap 'rm -rf $$tmp' EXIT; \
	cp -r api $$tmp/api.before; \
	$(MAKE) --no-print-directory generate >/dev/null || exit 1; \
	if ! diff -r $$tmp/api.before api >/dev/null; then \
		diff -r $$tmp/api.before api | head -40; \
		echo "generated code is stale: run 'make generate' and commit"; exit 1; \
	fi

fmt-check:
	@out=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)
	GOOS=windows GOARCH=386 $(GO) vet $(PKGS)
	GOOS=windows GOARCH=amd64 $(GO) vet $(PKGS)

## cross: build every package for the three targets and compile Windows tests.
cross:
	GOOS=linux GOARCH=amd64 $(GO) build $(PKGS)
	GOOS=windows GOARCH=386 $(GO) build $(PKGS)
	GOOS=windows GOARCH=amd64 $(GO) build $(PKGS)
	@for p in $$(GOOS=windows GOARCH=386 $(GO) list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' $(PKGS)); do \
		GOOS=windows GOARCH=386 $(GO) test -c -o /dev/null $$p || exit 1; \
	done

unit:
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

## dashboard-shots: refresh the screenshots of docs/dashboard.md
## (docs/dashboard/*.png) by running the browser test (needs chromium).
dashboard-shots:
	mkdir -p docs/dashboard
	MXGATEWAY_UI_SHOTS=$(CURDIR)/docs/dashboard $(GO) test -count=1 -run 'TestDashboard(Alarms)?InBrowser$$' ./test/ui

## e2e-norace: the end-to-end suites once more without -race: timing
## differs (no race detector slowing every step), and races against
## timers and reconnects show up there first.
E2E_PKGS := ./test/e2e/... ./client/e2e/...
e2e-norace:
	$(GO) test -count=1 -timeout 10m $(E2E_PKGS)

## test-windows: the Wine suite (test/wine, docs/windows.md): builds the
## Windows binaries, the ProcessPrng shim and the stand-in MXAccess COM server
## (MinGW, widl), prepares the Wine prefix (cached under ~/.cache/mxgateway)
## and runs the windows/amd64 gateway with windows/386 COM workers under Wine.
## Needs the Debian packages .ci/run installs.
test-windows:
	GOOS=windows GOARCH=amd64 $(GO) vet -tags winetest ./internal/winsvc ./cmd/mxgateway
	$(GO) vet -tags wine ./test/wine
	GO=$(GO) $(GO) test -race -tags wine -count=1 -timeout 20m ./test/wine

## test: every check CI runs.
test: lint check-generated fmt-check vet cross unit e2e-norace test-windows

## build: all binaries into bin/. The linux worker is built without cgo: it
## needs none, and a cgo build links the C library into every worker
## (about 1.8 MiB of RSS each, docs/performance.md "Lean workers").
build:
	GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/linux_amd64/ ./cmd/...
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/linux_amd64/ ./cmd/mxworker
	GOOS=windows GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/windows_amd64/mxgateway.exe ./cmd/mxgateway
	GOOS=windows GOARCH=386 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/windows_386/mxworker.exe ./cmd/mxworker

## bench: the benchmark driver (bench/run.sh: npm ci for the OPC UA peer, then
## cmd/mxbench against its own gateways); prints the table and writes
## bench/results/latest.json. Never fails on speed. BENCHFLAGS go to mxbench.
bench:
	GO=$(GO) bench/run.sh $(BENCHFLAGS)

## bench-go: the Go micro-benchmarks of every package.
.PHONY: bench-go
bench-go:
	$(GO) test -run='^$$' -bench=. -benchmem $(PKGS)

## fuzz: run each fuzz target for FUZZTIME (default 30s).
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run='^$$' -fuzz=FuzzReader -fuzztime=$(FUZZTIME) ./internal/frame
	$(GO) test -run='^$$' -fuzz=FuzzParse$$ -fuzztime=$(FUZZTIME) ./internal/itemref
	$(GO) test -run='^$$' -fuzz=FuzzParseKey -fuzztime=$(FUZZTIME) ./internal/auth
	$(GO) test -run='^$$' -fuzz=FuzzLoadYAML -fuzztime=$(FUZZTIME) ./internal/config
	$(GO) test -run='^$$' -fuzz=FuzzDecode -fuzztime=$(FUZZTIME) ./client

clean:
	rm -rf bin
