#!/usr/bin/env bash
# The bundle benchmark: build a DEF bundle of 100,000 realistic journal entries, write it, verify
# it from the file, and report build throughput, verify time against `sha256sum` of the same file
# (and SHA-256 in process) measured in the same run, and the peak RSS of building and of verifying,
# each in its own process, at 10k, 100k and 300k entries. Not part of CI: it takes a minute or two
# and wants a quiet machine. See crates/clyra-evidence/examples/bundle_bench.rs.
#
#   bench/bundle.sh                          # the full report
#   bench/bundle.sh --entries 20000 --sizes 10000,20000 --runs 3   # a quicker one
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p clyra-evidence --example bundle_bench
target_dir="$(cargo metadata --format-version 1 --no-deps --locked |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
# Run the binary itself, not through cargo, so that each process measured is only the benchmark.
exec "$target_dir/release/examples/bundle_bench" report "$@"
