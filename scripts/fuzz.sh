#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ with the stable toolchain (SanitizerCoverage through
# -Cpasses=sancov-module, the instrumentation cargo-fuzz uses; no nightly-only sanitizer) and runs
# them.
#   scripts/fuzz.sh smoke              every target for SMOKE_SECONDS (default 20) each
#   scripts/fuzz.sh run TARGET [SECS]  one target, default 300 s
# Crashes are written to fuzz/artifacts/TARGET/; the corpus grows in fuzz/corpus/TARGET/ and is
# seeded from the project's test vectors.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

mode=${1:-smoke}
export RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks"
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-target}
# An explicit --target keeps RUSTFLAGS away from build scripts and proc macros, as cargo-fuzz does.
host=$(rustc -vV | sed -n 's/^host: //p')
cargo build --release --locked --bins --target "$host" >&2
bin_dir=$CARGO_TARGET_DIR/$host/release

targets=$(sed -n 's/^name = "\(.*\)"$/\1/p' Cargo.toml | grep -v '^clyra-fuzz$')

seed() {
  local t=$1 dir=corpus/$1
  mkdir -p "$dir" "artifacts/$t"
  [ -d "seeds/$t" ] && cp seeds/"$t"/* "$dir"/ 2>/dev/null || true
  case $t in
    jcs_*) cp ../crates/clyra-evidence/tests/vectors/jcs/input/*.json "$dir"/ 2>/dev/null || true ;;
    dsse_*) find ../crates/clyra-evidence/tests/vectors/dsse -name '*.json' -exec cp {} "$dir"/ \; 2>/dev/null || true ;;
    merkle_*) find ../crates/clyra-evidence/tests/vectors/rfc6962 -name '*.json' -exec cp {} "$dir"/ \; 2>/dev/null || true ;;
    policy_*) cp ../templates/policy/*.yaml ../crates/clyra-policy/tests/malformed/*.yaml "$dir"/ 2>/dev/null || true ;;
    warehouse_snowflake) cp ../crates/clyra-warehouse/tests/fixtures/snowflake/*.json "$dir"/ 2>/dev/null || true ;;
    warehouse_delta_*) cp ../crates/clyra-warehouse/tests/fixtures/databricks/delta_log/*.json "$dir"/ 2>/dev/null || true ;;
    dbt_artifacts) for s in build fail sigint; do f=../crates/clyra-warehouse/tests/fixtures/dbt/$s
        cp "$f/run_results.json" "$dir/$s.run_results.json"
        { cat "$f/run_results.json"; printf '\n\0\n'; cat "$f/manifest.json"; } >"$dir/$s.both"; done ;;
    dbt_log) for s in build fail sigint sigterm; do
        head -c 60000 ../crates/clyra-warehouse/tests/fixtures/dbt/$s/dbt.log >"$dir/$s.head.log"
        tail -c 60000 ../crates/clyra-warehouse/tests/fixtures/dbt/$s/dbt.log >"$dir/$s.tail.log"; done ;;
  esac
}

run_one() {
  local t=$1 secs=$2
  seed "$t"
  echo "fuzz $t for ${secs}s"
  "$bin_dir/$t" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 \
    -artifact_prefix="artifacts/$t/" -print_final_stats=1 "corpus/$t" 2>"$CARGO_TARGET_DIR/$t.log" \
    || { tail -50 "$CARGO_TARGET_DIR/$t.log"; echo "fuzz target $t FAILED (crash saved under fuzz/artifacts/$t/)"; return 1; }
  grep -E '^stat::number_of_executed_units' "$CARGO_TARGET_DIR/$t.log" | sed "s/^/  $t /"
}

case $mode in
  smoke)
    secs=${SMOKE_SECONDS:-20}
    for t in $targets; do run_one "$t" "$secs"; done
    echo "fuzz smoke: all targets ran ${secs}s without a crash"
    ;;
  run)
    run_one "${2:?usage: scripts/fuzz.sh run TARGET [SECONDS]}" "${3:-300}"
    ;;
  *) echo "usage: scripts/fuzz.sh smoke | run TARGET [SECONDS]" >&2; exit 1 ;;
esac
