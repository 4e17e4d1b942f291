# nines — see README.md. The two commands a new machine needs:
#   make run    build and run nines on 127.0.0.1:9095 (with a local ClickHouse)
#   make test   install what is missing, start throwaway servers, run every test

SHELL        := /bin/bash
GO           ?= go
BUILD        := .build
BIN          := $(BUILD)/nines
VERSION      ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
REVISION     := $(shell git rev-parse HEAD 2>/dev/null)
VERSION_PKG  := github.com/prometheus/common/version
LDFLAGS      := -s -w -X $(VERSION_PKG).Version=$(VERSION) -X $(VERSION_PKG).Revision=$(REVISION) \
                -X $(VERSION_PKG).Branch=$(shell git rev-parse --abbrev-ref HEAD 2>/dev/null) \
                -X $(VERSION_PKG).BuildUser=$(shell whoami)@$(shell hostname) -X $(VERSION_PKG).BuildDate=$(shell date -u +%Y%m%d-%H:%M:%S)
WITH_CH      := deploy/dev/with-clickhouse
WITH_CHDB    := deploy/dev/with-chdb

# make run: a private ClickHouse under .build/run (ports 19000/18123).
RUN_DIR      := $(BUILD)/run
RUN_ADDR     ?= 127.0.0.1:9095
# make test: a throwaway ClickHouse under .build/test (ports 19100/18223;
# set TEST_CH_TCP/TEST_CH_HTTP to run two checkouts' suites side by side).
TEST_DIR     := $(BUILD)/test
TEST_CH_TCP  ?= 19100
TEST_CH_HTTP ?= 18223
# ... and current ClickHouse as chDB behind chdbserver (HTTP port 18224).
TEST_CHDB_HTTP ?= 18224
# ... and a replicated cluster (deploy/clickhouse/dev/clusterctl): ZooKeeper
# and two ClickHouse servers, two replicas of one shard, for the cluster
# tests (chstore) and the failover acceptance test (nines-chaos cluster,
# which starts a cluster of its own on TEST_CLUSTER_CHAOS_PORTS).
TEST_ZK_PORT  ?= 19581
TEST_CH1_TCP  ?= 19510
TEST_CH1_HTTP ?= 19511
TEST_CH1_IS   ?= 19512
TEST_CH2_TCP  ?= 19520
TEST_CH2_HTTP ?= 19521
TEST_CH2_IS   ?= 19522
TEST_CLUSTER_CHAOS_PORTS ?= 19530-19549
WITH_CLUSTER  := deploy/dev/with-cluster
# The packages whose tests use chstore/chtest: they run on both engines.
CHTEST_PKGS   = $$($(GO) list -f '{{.ImportPath}}{{range .TestImports}} {{.}}{{end}}{{range .XTestImports}} {{.}}{{end}}' ./... | awk '/ github.com\/ninesops\/nines\/chstore\/chtest( |$$)/ {print $$1}')
GOTEST_FLAGS ?= -race -count=1 -timeout 20m

.PHONY: all build run test test-engines test-chdb unit lint fmt vet deps clean check-deploy bench-availability bench-availability-chdb bench-pages bench-pages-chdb bench bench-go chaos soak fuzz

all: build

# Each slow step says what it is doing first: on a cold machine the module
# download and the first compile take a minute or two, silently otherwise.
build:
	@echo "build: downloading Go modules (once per machine; go mod download)"
	@$(GO) mod download
	@echo "build: compiling nines into $(BIN) (the first compile takes a minute or two)"
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/nines

# Secrets for the local run: random, kept in files, never printed.
$(RUN_DIR)/webhook.token $(RUN_DIR)/api.token:
	@mkdir -p $(RUN_DIR) && umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > $@

run: build $(RUN_DIR)/webhook.token $(RUN_DIR)/api.token
	@echo "run: starting a private ClickHouse on 127.0.0.1:19000 under $(RUN_DIR)/clickhouse (installed with apt-get if missing), then nines"
	@echo "nines on http://$(RUN_ADDR) — webhook token in $(RUN_DIR)/webhook.token, API token in $(RUN_DIR)/api.token"
	@echo "figures from another shell: NINES_CLICKHOUSE_DSN=clickhouse://127.0.0.1:19000/nines $(BIN) report --catalog.file=deploy/catalog/catalog.yml --config.file=deploy/nines/config.yml --window 30d"
	$(WITH_CH) $(RUN_DIR)/clickhouse 19000 18123 -- \
	  $(BIN) serve --web.listen-address=$(RUN_ADDR) --storage.path=$(RUN_DIR)/data \
	    --config.file=deploy/nines/config.yml \
	    --catalog.file=deploy/catalog/catalog.yml \
	    --webhook.bearer-token-file=$(RUN_DIR)/webhook.token \
	    --api.token-file=$(RUN_DIR)/api.token \
	    --web.external-url=http://$(RUN_ADDR) $(ARGS)

deps:
	deploy/dev/ensure-deps
	deploy/dev/ensure-chdb >/dev/null

# Every test, integration tests included: they must not skip here. Both
# engines are up: ClickHouse 18.16 and current ClickHouse (chDB). First
# every test on 18.16 (with the cross-engine comparison), then every package
# that talks to ClickHouse again on chDB, with the same assertions.
test: deps lint check-deploy
	rm -rf $(TEST_DIR)/clickhouse $(TEST_DIR)/chdb $(TEST_DIR)/cluster
	env -u NINES_CLICKHOUSE_DSN $(WITH_CH) $(TEST_DIR)/clickhouse $(TEST_CH_TCP) $(TEST_CH_HTTP) -- \
	  $(WITH_CHDB) $(TEST_DIR)/chdb $(TEST_CHDB_HTTP) -- \
	  $(WITH_CLUSTER) $(TEST_DIR)/cluster $(TEST_ZK_PORT) $(TEST_CH1_TCP) $(TEST_CH1_HTTP) $(TEST_CH1_IS) $(TEST_CH2_TCP) $(TEST_CH2_HTTP) $(TEST_CH2_IS) -- \
	  $(MAKE) --no-print-directory test-engines

test-engines:
	env NINES_TEST_ENGINE=clickhouse18 NINES_REQUIRE_INTEGRATION=1 NINES_TEST_ALERTMANAGER=/usr/bin/prometheus-alertmanager \
	  NINES_CLUSTER_CHAOS_PORTS=$(TEST_CLUSTER_CHAOS_PORTS) \
	  NINES_TEST_HELM=$$(deploy/dev/go-tool helm) \
	  $(GO) test $(GOTEST_FLAGS) ./...
	env NINES_TEST_ENGINE=chdb NINES_REQUIRE_INTEGRATION=1 NINES_TEST_ALERTMANAGER=/usr/bin/prometheus-alertmanager \
	  NINES_TEST_HELM=$$(deploy/dev/go-tool helm) \
	  $(GO) test $(GOTEST_FLAGS) $(CHTEST_PKGS)

# The ClickHouse-facing packages on current ClickHouse (chDB) only.
test-chdb: deps
	rm -rf $(TEST_DIR)/chdb
	env -u NINES_CLICKHOUSE_DSN -u NINES_TEST_CLICKHOUSE_ADDR $(WITH_CHDB) $(TEST_DIR)/chdb $(TEST_CHDB_HTTP) -- \
	  env NINES_TEST_ENGINE=chdb NINES_REQUIRE_INTEGRATION=1 NINES_TEST_ALERTMANAGER=/usr/bin/prometheus-alertmanager \
	  NINES_TEST_HELM=$$(deploy/dev/go-tool helm) \
	  $(GO) test $(GOTEST_FLAGS) $(CHTEST_PKGS)

# Unit tests only: integration tests skip and say what is missing.
unit:
	$(GO) test -count=1 ./...

lint: fmt vet

# promtool/amtool checks of every Prometheus and Alertmanager file, helm
# lint, goreleaser check, and more.
check-deploy:
	deploy/check

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^vendor/')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# Availability at scale: 1,000,000 incidents over 2,000 services and a year.
bench-availability: deps
	rm -rf $(BUILD)/bench/clickhouse
	env -u NINES_CLICKHOUSE_DSN $(WITH_CH) $(BUILD)/bench/clickhouse 19400 18523 -- \
	  env NINES_REQUIRE_INTEGRATION=1 $(GO) test ./chstore/ -run '^$$' -bench '^BenchmarkAvailability$$' -benchtime 10x -count 1 -timeout 30m

# The same on current ClickHouse (chDB, `make bench-availability-chdb`).
BENCH_CHDB_HTTP ?= 18524
bench-availability-chdb: deps
	rm -rf $(BUILD)/bench/chdb
	env -u NINES_CLICKHOUSE_DSN -u NINES_TEST_CLICKHOUSE_ADDR $(WITH_CHDB) $(BUILD)/bench/chdb $(BENCH_CHDB_HTTP) -- \
	  env NINES_TEST_ENGINE=chdb NINES_REQUIRE_INTEGRATION=1 $(GO) test ./chstore/ -run '^$$' -bench '^BenchmarkAvailability$$' -benchtime 10x -count 1 -timeout 30m

# Page speed: every page with 2,000 services and 100,000 incidents, on
# ClickHouse 18.16 (`make bench-pages`) and on current ClickHouse (chDB,
# `make bench-pages-chdb`), as ratios to a plain scan of the incidents.
BENCH_PAGES_TCP       ?= 19410
BENCH_PAGES_HTTP      ?= 18533
BENCH_PAGES_CHDB_HTTP ?= 18534
bench-pages: deps
	rm -rf $(BUILD)/bench/pages-clickhouse
	env -u NINES_CLICKHOUSE_DSN $(WITH_CH) $(BUILD)/bench/pages-clickhouse $(BENCH_PAGES_TCP) $(BENCH_PAGES_HTTP) -- \
	  env NINES_REQUIRE_INTEGRATION=1 $(GO) test ./cmd/nines/ -run '^$$' -bench '^BenchmarkPagesOnClickHouse$$' -benchtime 10x -count 1 -timeout 30m -v

bench-pages-chdb: deps
	rm -rf $(BUILD)/bench/pages-chdb
	env -u NINES_CLICKHOUSE_DSN -u NINES_TEST_CLICKHOUSE_ADDR $(WITH_CHDB) $(BUILD)/bench/pages-chdb $(BENCH_PAGES_CHDB_HTTP) -- \
	  env NINES_TEST_ENGINE=chdb NINES_REQUIRE_INTEGRATION=1 $(GO) test ./cmd/nines/ -run '^$$' -bench '^BenchmarkPagesOnClickHouse$$' -benchtime 10x -count 1 -timeout 30m -v

# make bench: nines against a private ClickHouse beside Alertmanager, a
# decode-only receiver and ClickHouse's own insert rate, on the same
# notifications: the mixed storm, the storm of new groups (beside the
# raw-log insert bound) and the latency run (README "Performance"). Flags
# go to cmd/nines-bench, e.g. on a shared machine
#   make bench BENCH_FLAGS='-clickhouse.tcp-port 19800 -clickhouse.http-port 19801 -ports 19810-19899 -cpuprofile .build/bench/cpu.pprof -memprofile .build/bench/heap.pprof'
BENCH_FLAGS ?=
bench: deps build
	$(GO) run ./cmd/nines-bench -nines.bin $(BIN) $(BENCH_FLAGS)

# The hot paths' Go benchmarks, six runs each, for benchstat.
bench-go:
	@mkdir -p $(BUILD)
	$(GO) test -run '^$$' -bench 'DecodeConvert|Handler|Ingest|ToRows' -benchmem -count 6 \
	  ./alerts/ ./incidents/ ./chstore/ | tee $(BUILD)/bench-go.txt

# The fault test: private ClickHouse, two replicas, ClickHouse stopped 30s,
# one kill -9; then the paused-leader test: the chat leader stopped 3× for
# 24s (SIGSTOP) while posting to a fake Slack. Short versions run in
# `make test` (TestChaosShort, TestPauseShort).
chaos: deps build
	$(GO) run ./cmd/nines-chaos chaos --nines.bin=$(BIN) $(CHAOS_ARGS)
	$(GO) run ./cmd/nines-chaos pause --nines.bin=$(BIN) $(PAUSE_ARGS)
	$(GO) run ./cmd/nines-chaos storm --nines.bin=$(BIN) $(STORM_ARGS)
	$(GO) run ./cmd/nines-chaos deadletter --nines.bin=$(BIN) $(DEADLETTER_ARGS)
	$(GO) run ./cmd/nines-chaos memory --nines.bin=$(BIN) $(MEMORY_ARGS)
	$(GO) run ./cmd/nines-chaos cluster --nines.bin=$(BIN) --ports=$(TEST_CLUSTER_CHAOS_PORTS) $(CLUSTER_ARGS)

# Soak at a steady rate: memory, goroutines and latency at start, middle and
# end. A short version runs in `make test` (TestSoakShort).
SOAK_DURATION ?= 10m
SOAK_RATE     ?= 200
soak: deps build
	$(GO) run ./cmd/nines-chaos soak --nines.bin=$(BIN) --duration=$(SOAK_DURATION) --rate=$(SOAK_RATE) $(SOAK_ARGS)

FUZZTIME ?= 2m
FUZZ_TARGETS := alerts:FuzzDecode alerts:FuzzWebhook incidents:FuzzStoredCodec incidents:FuzzListQuery incidents:FuzzActionRequests spool:FuzzSegment spool:FuzzReplayInPieces catalog:FuzzParse chat:FuzzParseInteraction
fuzz:
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; fn=$${t##*:}; echo "== $$fn"; \
	  $(GO) test -run='^$$' -fuzz="^$$fn\$$" -fuzztime=$(FUZZTIME) ./$$pkg || exit 1; done

clean:
	-deploy/clickhouse/dev/clickhousectl stop $(RUN_DIR)/clickhouse 2>/dev/null
	-deploy/clickhouse/dev/clickhousectl stop $(TEST_DIR)/clickhouse 2>/dev/null
	-deploy/clickhouse/dev/clusterctl stop $(TEST_DIR)/cluster 2>/dev/null
	rm -rf $(BUILD)
