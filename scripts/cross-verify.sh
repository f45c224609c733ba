#!/usr/bin/env bash
# Both verifiers, Rust (`clyra verify`, `clyra canon`) and TypeScript (`verifier/ts`), on:
#   1. every golden vector (spec/*/test-vectors), which must match expected.json exactly, through
#      both CLIs (exit status and JSON report) and the TS library (same report as its CLI);
#   2. bundles cut from real journals: the demo's SQLite journal (a DEF run and a PEF session)
#      and a Postgres journal (a run export and a time-range export), and a real dbt run sealed
#      by `clyra run` (examples/dbt-integration, pinned dbt), which must verify, and
#      byte-flip mutants of them, on which both must agree;
#   3. mutants of every valid golden vector from the mutation fuzzer (fixed seed, 40 per case:
#      crates/clyra-evidence/examples/gen_mutants.rs), on which both must agree;
#   4. the JCS differential: 5,000 fixed-seed random JSON documents plus the RFC 8785 number
#      vectors, canonicalized by both, which must give the same bytes and reject the same inputs.
# Any disagreement fails. Sets 2 and 3 run the TS side in one Node process (conformance.mjs
# --batch); the Rust side spawns `clyra verify` per case. Prints a table per set and a summary.
# Part of `make test`. Needs target/debug/clyra, the TS package built (npm test builds it) and
# cargo (the mutant generator is an example of clyra-evidence; or set CLYRA_GEN_MUTANTS to it).
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
CLYRA="${CLYRA_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/clyra}"
PG_URL="${CLYRA_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
work="$(mktemp -d)"
schema="xverify_$$"
cleanup() {
  psql "$PG_URL" -qc "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

started=$SECONDS
summary="$work/summary.jsonl"
failed=0
# Runs every set even after a failure, so that every table is printed; fails at the end.
conformance() { # LABEL CONFORMANCE_OPTIONS... [CASE_DIR...]
  local label="$1"
  shift
  echo
  CLYRA_BIN="$CLYRA" verifier/ts/scripts/conformance.sh --quiet --label "$label:" --summary "$summary" "$@" ||
    failed=1
}

conformance "golden vectors (CLIs, and the TS library)" --ts both

case_dir() { # NAME BUNDLE TRUST [VERDICT]
  mkdir -p "$work/cases/$1"
  cp "$2" "$work/cases/$1/bundle.zip"
  cp "$3" "$work/cases/$1/trust.json"
  if [[ -n "${4:-}" ]]; then
    printf '{"verdict": "%s", "codes": [], "verify_at": "%s", "threshold": 1, "artifacts": null}\n' "$4" "$now" \
      > "$work/cases/$1/expected.json"
  else
    printf '{"verify_at": "%s", "threshold": 1, "artifacts": null}\n' "$now" > "$work/cases/$1/expected.json"
  fi
}

# Exports from the embedded SQLite journal (the demo) and from Postgres.
"$CLYRA" demo --dir "$work/demo" > /dev/null
# Keys in the demo's trust file become valid when it runs: verify a little later than that.
now="$(date -u -d '+2 seconds' +%Y-%m-%dT%H:%M:%SZ)"
case_dir demo-run-def "$work/demo/bundles/run.def.zip" "$work/demo/trust.json" valid
case_dir demo-session-pef "$work/demo/bundles/session.pef.zip" "$work/demo/trust.json" valid
store="$PG_URL?schema=$schema"
"$CLYRA" journal append --store "$store" --tenant acme --body-policy full - > /dev/null <<'JSON'
{"events": [
  {"kind": "dbt.run.started", "run": "r-9", "body": {"target": "prod", "adapter": "postgres"}},
  {"kind": "gateway.decision", "session": "s-1", "body": {"tool": "sql.query", "decision": "allow", "actor": {"type": "agent", "id": "copilot"}}},
  {"kind": "dbt.model.finished", "run": "r-9", "body": {"unique_id": "model.shop.orders", "status": "success"}},
  {"kind": "dbt.run.finished", "run": "r-9", "body": {"status": "success"}}
]}
JSON
"$CLYRA" bundle export --store "$store" --tenant acme --run r-9 --kind def \
  --key "$work/demo/keys/clyra.key" --out "$work/pg-run.def.zip" > /dev/null
"$CLYRA" bundle export --store "$store" --tenant acme --kind pef --key "$work/demo/keys/clyra.key" \
  --from 2000-01-01T00:00:00Z --to 2100-01-01T00:00:00Z --out "$work/pg-range.pef.zip" > /dev/null
case_dir pg-run-def "$work/pg-run.def.zip" "$work/demo/trust.json" valid

# A real dbt run (examples/dbt-integration, the pinned dbt from `make dbt-venv`) sealed by
# `clyra run`, anchored and snapshotted on Postgres, signed with the demo's key.
dbt_db="xverify_dbt_$$"
psql "$PG_URL" -qc "CREATE DATABASE $dbt_db" > /dev/null
dbt_dsn="${PG_URL%/*}/$dbt_db"
mkdir -p "$work/dbt"
cp -r examples/dbt-integration/. "$work/dbt/"
rm -rf "$work/dbt/target" "$work/dbt/dbt_packages" "$work/dbt/logs" "$work/dbt/.clyra"
printf 'packages:\n  - local: %s\n' "$root/dbt/clyra_guard" > "$work/dbt/packages.yml"
(
  cd "$work/dbt"
  export PATH="$root/.venv-dbt/bin:$PATH" DBT_PROFILES_DIR="$work/dbt" CLYRA_EXAMPLE_PGDATABASE="$dbt_db" \
    DBT_SEND_ANONYMOUS_USAGE_STATS=false
  dbt deps --quiet > /dev/null
  "$CLYRA" run --dsn "$dbt_dsn" --key "$work/demo/keys/clyra.key" --out-dir "$work/dbt-bundles" \
    -- dbt build --quiet > "$work/dbt-run.log" 2>&1 || { cat "$work/dbt-run.log"; exit 1; }
)
psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $dbt_db WITH (FORCE)" > /dev/null
case_dir dbt-run-def "$(ls "$work"/dbt-bundles/*.def.zip)" "$work/demo/trust.json" valid
case_dir pg-range-pef "$work/pg-range.pef.zip" "$work/demo/trust.json" valid

# Mutants: one flipped byte at 24 spread offsets of each exported bundle; both verifiers must agree.
python3 - "$work" <<'PY'
import os, sys, shutil
work = sys.argv[1]
for name in ("demo-run-def", "pg-run-def", "pg-range-pef", "dbt-run-def"):
    src = os.path.join(work, "cases", name)
    data = open(os.path.join(src, "bundle.zip"), "rb").read()
    for k in range(24):
        off = (len(data) * (2 * k + 1)) // 48
        dst = os.path.join(work, "cases", f"{name}-mut{k:02d}")
        os.makedirs(dst)
        mutated = bytearray(data)
        mutated[off] ^= 0x01
        open(os.path.join(dst, "bundle.zip"), "wb").write(mutated)
        shutil.copy(os.path.join(src, "trust.json"), dst)
        shutil.copy(os.path.join(src, "expected.json"), dst)
        # Only agreement is required of mutants, not a fixed verdict.
        exp = open(os.path.join(dst, "expected.json")).read()
        open(os.path.join(dst, "expected.json"), "w").write(exp.replace('"verdict": "valid", "codes": [], ', ''))
PY
conformance "journal exports and their byte-flip mutants" --batch "$work"/cases/*

# Mutants of the valid golden vectors from the mutation fuzzer's generator, fixed seed.
gen_started=$SECONDS
if [[ -n "${CLYRA_GEN_MUTANTS:-}" ]]; then
  "$CLYRA_GEN_MUTANTS" --seed 0xC1A7 --per-case 40 --out "$work/mutants" > /dev/null
else
  cargo run -q --locked -p clyra-evidence --example gen_mutants -- \
    --seed 0xC1A7 --per-case 40 --out "$work/mutants" > /dev/null
fi
gen_seconds=$((SECONDS - gen_started))
conformance "mutation-fuzzer mutants of the valid vectors (seed 0xC1A7, 40 per case)" --batch "$work"/mutants/*

echo
echo "JCS differential (clyra canon --ndjson against the TS canonicalizer):"
node verifier/ts/scripts/jcs-differential.mjs --count 5000 --seed 0xC1A7 "$CLYRA" || failed=1

echo
echo "cross-verify summary (mutant generation took ${gen_seconds} s):"
node - "$summary" <<'JS'
const rows = require("fs").readFileSync(process.argv[2], "utf8").trim().split("\n").map(JSON.parse);
const s = (ms) => (ms / 1e3).toFixed(1);
console.log("| set | cases | agreements | disagreements | expected.json mismatches | rust s | ts s | wall s |");
console.log("|---|---|---|---|---|---|---|---|");
for (const r of rows)
  console.log(`| ${r.label.replace(/:$/, "")} | ${r.cases} | ${r.agreements} | ${r.disagreements} | ${r.expected_mismatches} | ${s(r.rust_ms)} | ${s(r.ts_ms)} | ${s(r.wall_ms)} |`);
JS
echo "total: $((SECONDS - started)) s"
if [[ $failed -ne 0 ]]; then
  echo "cross-verify: the verifiers disagree (see above)" >&2
  exit 3
fi
