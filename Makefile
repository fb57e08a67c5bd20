# cairn: `make test` installs what the tests need, then runs every check CI runs.
.PHONY: test test-deps build lint bench release compare bench-deps

CARGO ?= cargo

# The dev profile: integration tests drive the real binary over sockets, which is fast
# enough unoptimised, and CI's two cores are better spent than on LTO-linking every test.
test: test-deps lint
	$(CARGO) test --all-targets

test-deps:
	bash scripts/test-deps.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

build release:
	$(CARGO) build --release

bench:
	$(CARGO) bench

# cairn beside Prometheus 2.42 and VictoriaMetrics 1.79 on the same load (docs/performance.md).
bench-deps:
	bash scripts/bench-deps.sh

compare: bench-deps
	$(CARGO) bench --bench compare
