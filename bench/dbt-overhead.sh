#!/usr/bin/env bash
# dbt wrapper overhead: `clyra run -- dbt build` against plain `dbt build` on
# examples/dbt-integration, in one run, alternating the two so drift hits both alike.
# Reports each variant's median and p90 wall time over RUNS runs, the added time (median difference)
# and the ratio. The wrapper run includes everything it does: two warehouse anchors, the journal,
# the after-run snapshot, ingesting the artifacts and signing the bundle.
#
#   bench/dbt-overhead.sh [RUNS, default 10]
#
# Needs the local Postgres (scripts/services.sh) and the pinned dbt (make dbt-venv). Builds clyra in
# release mode. Not part of CI: its figures are only meaningful on a quiet machine, so it prints
# the load average.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS="${1:-10}"
ROOT="$PWD"
PG_URL="${CLYRA_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"

make --no-print-directory dbt-venv >/dev/null
cargo build --release --locked -q -p clyra-cli
TARGET="${CARGO_TARGET_DIR:-target}"
CLYRA="$(cd "$TARGET/release" && pwd)/clyra"
DBT="$ROOT/.venv-dbt/bin/dbt"

work="$(mktemp -d)"
schema="bench_dbt_$$"
trap 'rm -rf "$work"; psql -q -h 127.0.0.1 -U postgres test -c "DROP SCHEMA IF EXISTS $schema CASCADE; DROP SCHEMA IF EXISTS ${schema}_landing CASCADE" >/dev/null 2>&1 || true' EXIT
cp -r examples/dbt-integration "$work/project"
rm -rf "$work/project/target" "$work/project/dbt_packages" "$work/project/logs" "$work/project/.clyra"
printf 'packages:\n  - local: %s\n' "$ROOT/dbt/clyra_guard" > "$work/project/packages.yml"
cd "$work/project"
export CLYRA_EXAMPLE_SCHEMA="$schema" DBT_PROFILES_DIR="$work/project" DBT_SEND_ANONYMOUS_USAGE_STATS=false
"$CLYRA" dbt init >/dev/null
"$DBT" deps --quiet >/dev/null
# Warm-up: one of each (partial-parse state, catalog caches, the server's buffers).
"$DBT" build --quiet >/dev/null
"$CLYRA" run --dsn "$PG_URL" -- "$DBT" build --quiet >/dev/null

plain=() wrapped=()
now_ms() { date +%s%3N; }
for ((i = 0; i < RUNS; i++)); do
  t0=$(now_ms); "$DBT" build --quiet >/dev/null; t1=$(now_ms)
  plain+=($((t1 - t0)))
  t0=$(now_ms); "$CLYRA" run --dsn "$PG_URL" -- "$DBT" build --quiet >/dev/null; t1=$(now_ms)
  wrapped+=($((t1 - t0)))
done
python3 - "${plain[*]}" "${wrapped[*]}" <<'PY'
import statistics, sys
plain = sorted(int(x) for x in sys.argv[1].split())
wrapped = sorted(int(x) for x in sys.argv[2].split())
def p90(v): return v[min(len(v) - 1, int(round(0.9 * (len(v) - 1))))]
mp, mw = statistics.median(plain), statistics.median(wrapped)
print(f"runs: {len(plain)} each, alternating")
print(f"dbt build                 median {mp/1000:.3f} s  p90 {p90(plain)/1000:.3f} s")
print(f"clyra run -- dbt build    median {mw/1000:.3f} s  p90 {p90(wrapped)/1000:.3f} s")
print(f"added (median difference) {(mw-mp):.0f} ms  ratio {mw/mp:.3f} ({(mw/mp-1)*100:+.1f}%)")
print("targets: added <= 300 ms and <= 10% (seed: < 2 s per run)")
PY
echo "machine: load average $(cut -d' ' -f1-3 /proc/loadavg) (after)"
