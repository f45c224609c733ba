# One-line entry points. Rust builds share one target dir per worktree.
export CARGO_TARGET_DIR ?= $(CURDIR)/target

.PHONY: venv test interop

# Python venv with the independent DSSE implementation used by the interop tests.
venv:
	python3 -m venv .venv && .venv/bin/pip install -r tests/interop/requirements.txt

test:
	cargo test --workspace

# Cross-checks DSSE envelopes with securesystemslib (needs `make venv`).
interop: venv
	cargo test -p clyra-evidence --test interop_securesystemslib
