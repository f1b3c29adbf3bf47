# The whole test suite, on a fresh machine: installs what is missing, then vets and tests.
.PHONY: test build bench microbench fuzz-smoke

GO ?= go

test:
	./scripts/install-test-deps
	$(GO) vet ./...
	@# The binary builds for Windows and macOS too: the raw socket path is Linux's alone (proxy/
	@# raw_other.go), and the demo's cluster says it needs Unix (internal/pgcluster).
	GOOS=windows GOARCH=amd64 $(GO) build -o /dev/null ./cmd/pgpollwatch
	GOOS=darwin GOARCH=arm64 $(GO) build -o /dev/null ./cmd/pgpollwatch
	@# fixtures/serverlog and fixtures/capture run here, beside the other packages: their storms
	@# spin on persistent connections, a poll every few ms, far from the 20 ms that a loaded
	@# machine could blur, and the capture's tcpdump has a 64 MiB buffer (a packet the kernel
	@# dropped fails the test, never its truth). fixtures/capture takes about a minute.
	@# deploy/ runs promtool test rules on the Prometheus rules (promtool installed above) from a
	@# Go test, beside its checks that every alert is tested and that the dashboard and the rules
	@# query only metrics a running proxy exports: go test ./... alone covers the kit too.
	$(GO) test -race -count=1 -timeout 20m $$($(GO) list ./... | grep -v -e /fixtures/celery$$ -e /fixtures/pollers$$ -e /internal/chaos$$)
	@# The real Celery test runs alone: its parent must get the CPU to spin (silences between
	@# polls well under 20 ms), which the load tests of other packages running alongside would
	@# take from it; the server's log then cannot settle the verdicts and the cases prove little.
	$(GO) test -race -count=1 -timeout 10m ./fixtures/celery/
	@# The poller matrix runs alone and without -race: its truth is the timing of the server's
	@# log, and the race detector makes the in-process proxy and pollers 4 times slower and stall
	@# them for hundreds of ms, which leaves most spin verdicts undecided (the proxy's races are
	@# tested in its own packages above). About 2 minutes; see docs/pollers.md.
	$(GO) test -count=1 -timeout 10m ./fixtures/pollers/
	@# The fault campaign's short cases run alone too: they load both cores on purpose (200
	@# clients at once, a soak), which would starve the other packages' tests of their CPU.
	$(GO) test -race -count=1 -timeout 10m ./internal/chaos/
	@# 5 s a fuzz target beyond its seeds keeps the suite under 15 minutes with the job-queue
	@# libraries' tests (fixtures/queues); `make fuzz-smoke` and FUZZTIME fuzz longer.
	FUZZTIME=$${FUZZTIME:-5s} ./scripts/fuzz-smoke

# Every fuzz target for FUZZTIME (10s) beyond its seeds; part of test.
fuzz-smoke:
	./scripts/fuzz-smoke

build:
	$(GO) build -o bin/pgpollwatch ./cmd/pgpollwatch

# pgbench -S direct vs PgBouncer vs pgpollwatch; see docs/performance.md.
bench:
	./scripts/bench

# Hot-path micro-benchmarks (allocations per message must stay 0).
microbench:
	$(GO) test -run '^$$' -bench . -skip StreamDistinctKeys -benchmem ./proxy/ ./analyzer/...
