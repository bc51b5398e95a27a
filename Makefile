# Tollgate's build, test and benchmark entry points. `make run` and `make test`
# are the two set-up commands of the README; each installs what it needs.

GO        ?= go
DATA_DIR  ?= ./data
BIN       := bin
# Packages with concurrent code: their tests run again under the race detector.
RACE_PKGS := ./ledger/... ./wal/... ./proxy/... ./cmd/... ./bench/...

.PHONY: build run test test-unit test-race clients browser postgres screenshots bench vet fuzz clean

build:
	$(GO) build -o $(BIN)/tollgate ./cmd/tollgate

# run starts the gateway with configs/tollgate.yaml, data in ./data: on the
# built-in simulator unless ANTHROPIC_API_KEY is set; it prints the admin
# token (generated when TOLLGATE_ADMIN_TOKEN is unset), a demo key and curl
# lines to try.
run: build
	$(BIN)/tollgate serve --demo --config configs/tollgate.yaml --data-dir $(DATA_DIR)

# test runs every test with the expensive invariant checks compiled in, then the
# concurrent packages again under the race detector, then the real-client tests.
# Fuzz corpora in testdata/fuzz are replayed as ordinary test cases; no
# open-ended fuzzing happens here.
test: vet browser postgres test-unit test-race clients

# browser installs Debian's chromium when it is missing (as root, with
# apt-get), for the consoles' browser test (cmd/tollgate
# TestConsoleInBrowser); otherwise it says how, and that test skips.
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium for the console's browser test"; \
	  (apt-get install -y --no-install-recommends chromium >/dev/null || \
	   (apt-get update >/dev/null && apt-get install -y --no-install-recommends chromium >/dev/null)); \
	else \
	  echo "NOTE: no chromium; the console's browser test will skip (sudo apt-get install chromium)"; \
	fi

# postgres installs Debian's postgresql when it is missing (as root, with
# apt-get), for cluster mode's tests (ledger/cluster, cmd/tollgate
# TestCluster*): they start their own servers from temporary directories.
# Otherwise it says how, and those tests skip.
postgres:
	@if ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || command -v postgres >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing postgresql for cluster mode's tests"; \
	  (apt-get install -y --no-install-recommends postgresql >/dev/null || \
	   (apt-get update >/dev/null && apt-get install -y --no-install-recommends postgresql >/dev/null)); \
	else \
	  echo "NOTE: no PostgreSQL; cluster mode's tests will skip (sudo apt-get install postgresql)"; \
	fi

# screenshots refreshes the consoles' screenshots in docs/console (the
# browser test takes them as it goes).
screenshots: browser
	TOLLGATE_SCREENSHOTS=$(CURDIR)/docs/console $(GO) test -count=1 -run TestConsoleInBrowser ./cmd/tollgate

test-unit:
	$(GO) test -tags invariants -count=1 ./...

# -short: the process-level suites (crash, history, memory, SIGTERM) ran in
# test-unit already; under the race detector they would only take time.
test-race:
	$(GO) test -race -short -tags invariants -count=1 $(RACE_PKGS)

# clients runs the real-client tests in clients/ (the official TypeScript SDKs
# of Anthropic and OpenAI, and Claude Code, pinned in clients/package-lock.json) with node's test runner
# against bin/tollgate on its built-in simulator. It runs `npm ci` first when
# clients/node_modules is missing or older than the lock file. Without Node.js
# it says so and skips (CI installs the packages in .ci/run and never skips).
NODE ?= node
NPM  ?= npm
clients: build
	@if ! command -v $(NODE) >/dev/null 2>&1; then \
	  echo "SKIP clients: Node.js ($(NODE)) not found; the TypeScript SDK and Claude Code tests did not run"; \
	  exit 0; \
	fi; \
	set -e; \
	if [ ! -f clients/node_modules/.package-lock.json ] || [ clients/package-lock.json -nt clients/node_modules/.package-lock.json ]; then \
	  $(NPM) ci --prefix clients --no-audit --no-fund; \
	fi; \
	TOLLGATE_BIN=$(CURDIR)/$(BIN)/tollgate $(NODE) --test --test-concurrency=1 clients/test/*.test.mjs

# vet runs go vet, gofmt and staticcheck (pinned; fetched from the module
# proxy on first use). The structural rules (import graph, dependency
# allow-list, unsafe) are tests in internal/lint, run with the others.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1)
	$(GO) run $(STATICCHECK) ./...

# bench runs the Go micro-benchmarks, then a short tollbench run of streaming
# calls through the gateway against the same client straight to the upstream.
# BENCHMARKS.md has the longer runs and the sweep, with their commands.
bench: build
	$(GO) test -run=NONE -bench=. -benchmem ./...
	$(GO) build -o $(BIN)/tollbench ./cmd/tollbench
	$(BIN)/tollbench run -tollgate $(BIN)/tollgate -concurrency 64 -duration 4s
	TOLLGATE_CLUSTER_BENCH=1 $(GO) test -count=1 -run TestClusterMeasure -v ./cmd/tollgate

# fuzz runs each fuzz target for FUZZTIME (10s by default) and fails on a
# crasher (a failing input written to testdata/fuzz). A target whose checked-in
# corpus takes longer than FUZZTIME to replay for its baseline coverage ends
# with "context deadline exceeded": that is reported, not failed, since it
# found nothing.
FUZZTIME ?= 10s
fuzz:
	@failed=0; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; \
	    out=$$($(GO) test -run=NONE -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg 2>&1); status=$$?; \
	    echo "$$out" | tail -5; \
	    if [ $$status -ne 0 ]; then \
	      if echo "$$out" | grep -q "context deadline exceeded" && ! echo "$$out" | grep -q "Failing input written"; then \
	        echo "fuzz $$f: baseline coverage outlasted $(FUZZTIME); nothing found"; \
	      else failed=1; echo "FUZZING FAILED: $$pkg $$f"; fi; \
	    fi; \
	  done; \
	done; exit $$failed

clean:
	rm -rf $(BIN)
