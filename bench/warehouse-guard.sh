#!/usr/bin/env bash
# Warehouse guard benchmark: the latency a guard adds to small UPDATEs (1 and 100 rows, under the
# threshold) and to an approved 1,000-row UPDATE above it, against identical unguarded tables.
# p50/p95/max over RUNS runs each, timed in-process (one reused connection).
#
#   bench/warehouse-guard.sh [RUNS, default 500]
#
# Needs the local Postgres (scripts/services.sh starts it); creates a database bench_guard_<pid>
# and drops it. Not part of CI: its figures are only meaningful on a quiet machine, so it prints
# the load average.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-500}"
PG_URL="${CLYRA_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"

cargo build --release --locked -q -p clyra-warehouse --example guard_bench
TARGET="${CARGO_TARGET_DIR:-target}"
"$TARGET/release/examples/guard_bench" "$PG_URL" "$RUNS"
echo "machine: load average $(cut -d' ' -f1-3 /proc/loadavg) (after)"
