# One-line targets; the logic lives in scripts/ and the crates.
SHELL := /bin/bash
CARGO ?= cargo
VENV := .venv

.PHONY: help demo install test lint fmt nextest doctest fuzz-smoke fuzz bench bench-bundle bench-verifiers bench-recorder bench-warehouse bench-dbt venv dbt-venv services clean

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

install: ## install the clyra binary into ~/.cargo/bin
	$(CARGO) install --locked --path crates/clyra-cli

demo: ## run the demo from source without installing
	$(CARGO) run --release --locked -p clyra-cli -- demo

test: ## the whole test suite, as CI runs it
	scripts/test.sh

lint: ## rustfmt and clippy, warnings are errors
	$(CARGO) fmt --all -- --check && $(CARGO) clippy --locked --workspace --all-targets -- -D warnings

fmt: ## format the code
	$(CARGO) fmt --all

nextest: venv dbt-venv ## unit, integration, vector and CLI tests
	$(CARGO) nextest run --locked --workspace --no-fail-fast

doctest: ## documentation examples
	$(CARGO) test --locked --workspace --doc

fuzz-smoke: ## every fuzz target for a short bounded time
	scripts/fuzz.sh smoke

fuzz: ## one fuzz target for longer: make fuzz TARGET=jcs_canonicalize SECONDS=600
	scripts/fuzz.sh run $(TARGET) $(SECONDS)

bench: ## kernel benchmarks, the ratio report and the bundle benchmark (not part of CI)
	bench/kernel.sh
	bench/bundle.sh
	bench/recorder.sh

bench-recorder: ## recorder entries/s and ack latency at 10k/s offered: floor vs SQLite vs Postgres (not part of CI)
	bench/recorder.sh

bench-dbt: ## clyra run -- dbt build vs plain dbt build on the example project: medians, added ms, ratio (not part of CI)
	bench/dbt-overhead.sh

bench-warehouse: ## Postgres snapshot and diff latency, 100 and 1,000 tables (not part of CI)
	bench/warehouse.sh

bench-bundle: ## bundle build/verify throughput, verify vs sha256sum, peak memory (not part of CI)
	bench/bundle.sh

bench-verifiers: ## TypeScript vs Rust verifier on the 100,000-entry bundle: medians and ratio (not part of CI)
	bench/verifiers.sh

venv: $(VENV)/.installed ## Python tools the interop tests use (PyPI)

dbt-venv: .venv-dbt/.installed ## dbt-postgres (pinned) for the dbt tests and examples/dbt-integration

.venv-dbt/.installed: tests/dbt/requirements.txt
	python3 -m venv .venv-dbt && .venv-dbt/bin/pip install --quiet --disable-pip-version-check -r tests/dbt/requirements.txt && touch $@

$(VENV)/.installed: tests/interop/requirements.txt
	python3 -m venv $(VENV) && $(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/interop/requirements.txt && touch $@

services: ## start local Postgres and Redis if they are down
	scripts/services.sh

clean: ## remove build output
	$(CARGO) clean && rm -rf fuzz/target $(VENV)
