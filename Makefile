# eventedge — build, run and test everything from here.
#
#   make run     the whole system with an embedded NATS server (no other service needed)
#   make test    run every module's tests with -race (what CI runs)
#   make build   put every service binary in ./bin
#   make images  package them into container images (needs a Docker engine)
#   make lint    gofmt, go vet, staticcheck
#   make proto   regenerate the Go code of proto/
#   make docs    regenerate docs/configuration.md from the services' flags
#   make bench   hot-path micro-benchmarks, then the standard load set L1…L5
#                (make bench-micro, make bench-system: each alone;
#                BENCH_FLAGS="--only L1,L5" or "--quick" for the set;
#                make bench-floor: L1 and L5 with nothing but the kernel;
#                make bench-hub: L5 against net/http + coder/websocket alone)
#   make soak    10 minutes of connection churn; the edge's goroutines and
#                RSS must return to their baseline (make test: 20 s)
#   make chaos   the chaos suite's long form (every fault scenario, a few
#                hundred clients; make test runs the short form)
#   make fuzz    every fuzz target for FUZZTIME (2m) each; make test runs
#                the parsers' targets, 30,000 inputs each (make fuzz-short)
#   make govulncheck  every module against the Go vulnerability database,
#                built offline from the module proxy
#   make screenshot  refresh docs/dashboard.png from the dashboard's browser test
#
# Tools that are missing are installed: protoc from Debian's
# protobuf-compiler, Chromium from Debian's chromium (browser tests),
# docker-compose from Debian's docker-compose (the compose file's test),
# protoc-gen-go and staticcheck into ./.tools/<toolchain>/bin (a tool that
# loads Go packages must be built by the Go it checks).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

GO          ?= go
# Every build and test runs on Go 1.27.3, which fixes standard-library
# vulnerabilities that Go 1.26.8 has (make govulncheck). The go command
# takes that toolchain from the Go module proxy the first time (about 76 MB)
# and keeps it in the module cache. go.mod files still say go 1.26.8, so a
# plain `go build` works on Go 1.26 too; what is shipped is built here.
# GO_TOOLCHAIN=local uses whatever Go the machine has.
GO_TOOLCHAIN ?= go1.27.3
export GOTOOLCHAIN := $(GO_TOOLCHAIN)
MODULES     := proto services/edge scripts/devrun scripts/configdocs scripts/bench services/internal services/sysmon services/taskapi services/worker services/dashboard services/loadgen deploy deploy/docker
SERVICES    := edge sysmon taskapi worker dashboard loadgen
TOOLS_BIN   := $(CURDIR)/.tools/$(GO_TOOLCHAIN)/bin
export PATH := $(TOOLS_BIN):$(PATH)

PROTOC_GEN_GO_VERSION := v1.36.12
STATICCHECK_VERSION   := v0.8.2

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all build run test lint proto bench bench-micro bench-system bench-floor bench-hub load-bins soak chaos fuzz fuzz-short govulncheck tools deps clean screenshot images docs

all: build

## deps: download every module's dependencies
deps:
	@for m in $(MODULES); do (cd $$m && $(GO) mod download); done

## tools: install protoc, protoc-gen-go, staticcheck, chromium and
## docker-compose when missing
tools: $(TOOLS_BIN)/protoc-gen-go $(TOOLS_BIN)/staticcheck
	@command -v protoc >/dev/null || { echo "installing protoc (Debian protobuf-compiler)"; \
		$(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler >/dev/null; }
	@[ -x /usr/bin/chromium ] || { echo "installing chromium (Debian chromium, for the browser client's tests)"; \
		$(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@command -v docker-compose >/dev/null || { echo "installing docker-compose (Debian docker-compose, for the compose file's test)"; \
		$(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null; }

$(TOOLS_BIN)/protoc-gen-go:
	GOBIN=$(TOOLS_BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

$(TOOLS_BIN)/staticcheck:
	GOBIN=$(TOOLS_BIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

## proto: regenerate proto/gen from proto/eventedge/v1/*.proto
proto: tools
	cd proto && protoc -I . --go_out=. --go_opt=module=github.com/eventedge/eventedge/proto eventedge/v1/*.proto

## build: static binaries in ./bin
build:
	@mkdir -p bin
	@for s in $(SERVICES); do \
		echo "build bin/$$s"; \
		(cd services/$$s && CGO_ENABLED=0 $(GO) build -trimpath -o $(CURDIR)/bin/$$s ./cmd/$$s); \
	done
	@echo "build bin/devrun"
	@cd scripts/devrun && CGO_ENABLED=0 $(GO) build -trimpath -o $(CURDIR)/bin/devrun .

## images: one FROM-scratch image per service from ./bin, tagged
## eventedge/<svc>:<git describe> and :latest, plus eventedge/nats-server
## (bin/nats-server, for the container tests) tagged with its own version
## (deploy/docker/build-images); needs a Docker engine (DOCKER_HOST or the default socket)
images:
	@deploy/docker/build-images --check
	@$(MAKE) --no-print-directory build
	@deploy/docker/build-images

## run: the whole system on this machine (edge with embedded NATS, task API,
## worker, sysmon, dashboard when built), a demo project and a development
## token; Ctrl-C stops everything (scripts/devrun supervises the processes)
run: build
	./bin/devrun --bin ./bin --data-dir ./.data

## test: every module's tests with the race detector, then the allocation
## tests again without it (under -race, sync.Pool drops items on purpose)
test: tools
	@for m in $(MODULES); do \
		echo "== $$m"; \
		(cd $$m && $(GO) test -race -count=1 -p 1 -timeout 10m ./...); \
	done
	@echo "== allocation tests without the race detector"
	cd services/edge && $(GO) test -count=1 -run 'Allocs' ./...
	@$(MAKE) --no-print-directory fuzz-short

## lint: gofmt, go vet, staticcheck on every module
lint: tools
	@out=$$(gofmt -l $(MODULES) | grep -v '/gen/' || true); \
		if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@for m in $(MODULES); do (cd $$m && $(GO) vet ./... && staticcheck ./...); done

## bench: the hot-path micro-benchmarks, then the standard load set
bench: bench-micro bench-system

## bench-micro: hot-path micro-benchmarks with allocations (the edge's,
## and the load generator's lean receive path)
bench-micro:
	cd services/edge && $(GO) test -run '^$$' -bench . -benchmem ./internal/...
	cd services/loadgen && $(GO) test -run '^$$' -bench . -benchmem ./internal/...

## bench-system: the standard load set of issue #8 (L1…L5) on this
## machine: the edge on CPU 0, NATS and the load generator on CPU 1
## (scripts/bench; about 5 minutes; BENCH_FLAGS adds flags, e.g.
## --only L1,L5, --quick, --out DIR)
BENCH_FLAGS ?=
bench-system: load-bins
	cd scripts/bench && $(GO) run . --bin $(CURDIR)/bin $(BENCH_FLAGS)

## bench-floor: L1's broadcast with nothing but one plain TCP write per
## connection (writer on CPU 0, a minimal reader on CPU 1), then L5's
## connect storm with nothing but TCP connects and two plain exchanges:
## the floors of this setup (scripts/bench --floor; 30 s)
bench-floor:
	cd scripts/bench && $(GO) run . --floor

## bench-hub: L5's connect storm against a reference hub (nothing but
## net/http's server and coder/websocket's Accept: no auth, no broker) and
## against the edge, three interleaved pairs, same load generator and
## pinning (scripts/bench --hub; about 1 minute)
bench-hub: load-bins
	cd scripts/bench && $(GO) run . --bin $(CURDIR)/bin --hub $(BENCH_FLAGS)

## soak: connection churn against a fresh edge for $(SOAK) (issue #9,
## scripts/bench --soak), then checks that its goroutines and RSS return
## to their baseline within the margins of docs/reliability.md
## (SOAK=30m for longer; SOAK_FLAGS="--out DIR" keeps the records)
SOAK       ?= 10m
SOAK_FLAGS ?=
soak: load-bins
	cd scripts/bench && $(GO) run . --bin $(CURDIR)/bin --soak $(SOAK) $(SOAK_FLAGS)

## load-bins: bin/edge, bin/loadgen and bin/nats-server for bench-system
## and soak
load-bins: bin/nats-server
	@mkdir -p bin
	@for s in edge loadgen; do \
		echo "build bin/$$s"; \
		(cd services/$$s && CGO_ENABLED=0 $(GO) build -trimpath -o $(CURDIR)/bin/$$s ./cmd/$$s); \
	done

## bin/nats-server: a standalone NATS server (the version in the edge's
## go.sum) for the load set
bin/nats-server: services/edge/go.sum
	@mkdir -p bin
	cd services/edge && CGO_ENABLED=0 $(GO) build -trimpath -o $(CURDIR)/bin/nats-server github.com/nats-io/nats-server/v2

## chaos: the long form of the chaos suite (services/edge/chaos): every
## scenario of issue #9 against a three-node NATS cluster and three edges,
## a few hundred clients; the figures go to CHAOS_REPORT (Markdown). make
## test runs the short form (scenarios 1-3).
CHAOS_REPORT ?= /tmp/eventedge-chaos.md
chaos:
	cd services/edge && $(GO) test -count=1 -run '^TestChaos$$' -timeout 30m -v ./chaos -args -chaos.long -chaos.report $(CHAOS_REPORT)
	@cat $(CHAOS_REPORT)

## fuzz: every fuzz target of the repository for FUZZTIME each (a failing
## input stays in testdata/fuzz/ as a seed: commit it with the fix)
FUZZTIME ?= 2m
fuzz:
	scripts/fuzz $(FUZZTIME)

## fuzz-short: the parsers of issue #9 (client frames in JSON and
## protobuf, room names and subjects, JWT claims, events from NATS),
## 30,000 inputs each (a count,
## not a time: Go 1.26's fuzzer can fail a timed run at its deadline with
## "context deadline exceeded", go.dev/issue/75804); part of make test
FUZZ_SHORT := services/edge/internal/protocol:FuzzDecode services/edge/internal/protocol:FuzzSplit services/edge/internal/protocol:FuzzDecodeBinary services/edge/internal/protocol:FuzzSplitBinary proto/room:FuzzParse proto/room:FuzzFromSubject services/edge/internal/auth:FuzzClaims services/edge/internal/auth:FuzzVerify proto/events:FuzzDecode
fuzz-short:
	@echo "== fuzzing, 30000 inputs per target"
	scripts/fuzz 30000x $(FUZZ_SHORT)

## govulncheck: every module against the Go vulnerability database, built
## offline from the golang.org/x/vulndb module at a pinned version
## (scripts/govulncheck; VULNDB_VERSION=latest takes the newest reports);
## CI runs it after make lint
govulncheck:
	scripts/govulncheck

## docs: regenerate docs/configuration.md from the services' own flag sets
## (scripts/configdocs builds every binary and reads its -h); make test
## fails while the file is stale
docs:
	cd scripts/configdocs && $(GO) run .

## screenshot: run the dashboard's member/viewer browser test and keep its
## screenshot of the member's board as docs/dashboard.png
screenshot: tools
	cd services/dashboard && $(GO) test -count=1 -run '^TestMemberAndViewerSeeARunLive$$' ./e2e -update-docs-screenshot

clean:
	rm -rf bin .tools
