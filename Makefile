# cairn: `make test` installs what the tests need, then runs every check CI runs.
.PHONY: test test-deps build lint bench release

CARGO ?= cargo

test: test-deps lint
	$(CARGO) test --release --all-targets

test-deps:
	bash scripts/test-deps.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --all-targets -- -D warnings

build release:
	$(CARGO) build --release

bench:
	$(CARGO) bench
