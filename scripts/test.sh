#!/usr/bin/env bash
# The whole test suite. `make test` and CI (.ci/run) run exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "services"
scripts/services.sh
step "python tools for interop tests"
make --no-print-directory venv
step "format and lint"
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings
step "tests"
cargo nextest run --locked --workspace --no-fail-fast
step "doc tests"
cargo test --locked --workspace --doc
step "fuzz smoke"
scripts/fuzz.sh smoke
