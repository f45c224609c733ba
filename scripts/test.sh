#!/usr/bin/env bash
# The whole test suite. `make test` and CI (.ci/run) run exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

step "services"
scripts/services.sh
step "python tools for interop tests"
make --no-print-directory venv
step "dbt (pinned dbt-postgres) for the dbt tests"
make --no-print-directory dbt-venv
step "format and lint"
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings
# fuzz/ is its own workspace with its own lock file: a dependency added to a crate it fuzzes must be
# in fuzz/Cargo.lock too. Checked here, in seconds, rather than by the fuzz smoke at the very end.
cargo metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml > /dev/null
step "tests"
cargo nextest run --locked --workspace --no-fail-fast
step "doc tests"
cargo test --locked --workspace --doc
step "TypeScript verifier (verifier/ts)"
(cd verifier/ts && npm ci --no-audit --no-fund --loglevel=error && npm test)
step "TypeScript verifier's offline page in headless Chromium"
scripts/chromium.sh
(cd verifier/ts && node --test test-web/) # npm test just built dist/web/clyra-verify.html
step "both verifiers: golden vectors, journal exports (SQLite and Postgres), mutants"
cargo build --locked -q -p clyra-cli
scripts/cross-verify.sh
step "verify-bundle GitHub Action (verify.sh with both verifiers)"
scripts/test-action.sh
step "fuzz smoke"
scripts/fuzz.sh smoke
