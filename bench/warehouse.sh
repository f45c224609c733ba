#!/usr/bin/env bash
# Warehouse benchmark: snapshot latency for 100 tables (reused connection and new connection),
# exact counts and content hashes of those 100 tables, snapshot latency for 1,000 tables, and diff
# latency for two 1,000-table snapshots, in the library and as a `clyra diff` process. p50/p95/max.
#
#   bench/warehouse.sh [RUNS, default 50]
#
# Needs the local Postgres (scripts/services.sh starts it); creates two schemas and drops them.
# Not part of CI: its figures are only meaningful on a quiet machine, so it prints the load average.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-50}"
PG_URL="${CLYRA_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"

cargo build --release --locked -q -p clyra-warehouse --example warehouse_bench
cargo build --release --locked -q -p clyra-cli --bin clyra
TARGET="${CARGO_TARGET_DIR:-target}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg) (before)"
"$TARGET/release/examples/warehouse_bench" "$PG_URL" "$RUNS" "$WORK"

# `clyra diff` as a process, as CI runs it: start-up, reading and checking both files, diff, JSON.
times=()
for _ in $(seq 1 "$RUNS"); do
    t0=$(date +%s%N)
    "$TARGET/release/clyra" diff "$WORK/a.json" "$WORK/b.json" --format json > /dev/null
    t1=$(date +%s%N)
    times+=($(( (t1 - t0) / 1000 )))
done
printf '%s\n' "${times[@]}" | sort -n | awk -v n="$RUNS" '
    { v[NR] = $1 }
    END { p50 = v[int((n - 1) * 0.50 + 1.5)]; p95 = v[int((n - 1) * 0.95 + 1.5)];
          printf "%-46s p50 %8.2f ms  p95 %8.2f ms  max %8.2f ms  n=%d  (target <= 50 ms)\n",
                 "clyra diff process, two 1,000-table files", p50 / 1000, p95 / 1000, v[n] / 1000, n }'
echo "machine: load average $(cut -d' ' -f1-3 /proc/loadavg) (after)"
