# introspectd — make help lists the targets.

GO          ?= go
BIN         ?= bin
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -s -w -X github.com/introspectd/introspectd/internal/service.Version=$(VERSION)
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
GOLANGCI    := github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0
# Inputs each fuzz target runs: briefly in `make test`, longer in `make fuzz`.
# Counts, not durations: a -fuzztime deadline races Go's fuzzing
# coordinator, which then fails with "context deadline exceeded" and no
# failing input on a busy machine.
FUZZTIME    ?= 30000x
LONGFUZZ    ?= 1000000x

# package:target pairs, one per fuzz target.
FUZZ_TARGETS := \
	./introspect:FuzzParseJWT \
	./introspect:FuzzVerify \
	./introspect:FuzzClaims \
	./introspect:FuzzRequest \
	./introspect:FuzzCleanPath \
	./revocation:FuzzParseEvent \
	./bench:FuzzResponseSize \
	./internal/config:FuzzLoad

.DEFAULT_GOAL := help
.PHONY: help run build test deps vet fmt-check unit fuzz-short fuzz bench lint check clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

run: ## start introspectd in dev mode (embedded NATS, ephemeral issuer, prints a curl to try)
	$(GO) run ./cmd/introspectd -dev -listen 127.0.0.1:8080

build: ## build introspectd, tokenctl and introspect-bench into ./bin
	@mkdir -p $(BIN)
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

test: deps vet fmt-check unit fuzz-short ## everything CI checks: installs test dependencies, vet, gofmt, race tests, short fuzzing
	@echo "make test: all checks passed"

deps: ## install what the tests need (Prometheus/promtool, nginx, Caddy, HAProxy) from Debian when missing
	@for s in dashboards/install-prometheus.sh gateway/install-deps.sh; do \
		if [ -f $$s ]; then bash $$s || exit 1; fi; \
	done

vet: ## go vet
	$(GO) vet ./...

fmt-check: ## fail when a file is not gofmt-ed
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "not gofmt-ed:"; echo "$$out"; exit 1; fi

unit: ## go test with the race detector, shuffled
	$(GO) test -race -shuffle=on -timeout 12m ./...

fuzz-short: ## run every fuzz target for FUZZTIME inputs
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$pkg $$fn ($(FUZZTIME))"; \
		if ! $(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg > .fuzz.log 2>&1; then \
			if grep -q 'context deadline exceeded' .fuzz.log && ! grep -q 'Failing input' .fuzz.log; then \
				echo "  the fuzzing coordinator timed out without a failing input (a toolchain flake); running again"; \
				$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) $$pkg > .fuzz.log 2>&1 || { cat .fuzz.log; rm -f .fuzz.log; exit 1; }; \
			else cat .fuzz.log; rm -f .fuzz.log; exit 1; fi; \
		fi; \
	done; rm -f .fuzz.log

fuzz: ## run every fuzz target for LONGFUZZ inputs
	$(MAKE) fuzz-short FUZZTIME=$(LONGFUZZ)

bench: ## Go benchmarks of the hot paths, then the load tool's scenarios and baselines (writes bench/results/)
	$(GO) test -run '^$$' -bench . -benchmem ./cache ./introspect ./revocation
	bash bench/run.sh

lint: ## staticcheck and golangci-lint, pinned
	$(GO) run $(STATICCHECK) ./...
	$(GO) run $(GOLANGCI) run ./...

check: test lint ## test and lint

clean: ## remove build output
	rm -rf $(BIN) .fuzz.log
