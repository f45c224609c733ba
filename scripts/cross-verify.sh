#!/usr/bin/env bash
# Both verifiers, Rust (`clyra verify`) and TypeScript (`verifier/ts`), on:
#   1. every golden vector (spec/*/test-vectors), which must match expected.json exactly;
#   2. bundles cut from real journals: the demo's SQLite journal (a DEF run and a PEF session)
#      and a Postgres journal (a run export and a time-range export), which must verify;
#   3. byte-flip mutants of those exported bundles, on which both must agree.
# Part of `make test`. Needs target/debug/clyra and the TS package built (npm test builds it).
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

echo "golden vectors:"
CLYRA_BIN="$CLYRA" verifier/ts/scripts/conformance.sh | tail -4

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
case_dir pg-range-pef "$work/pg-range.pef.zip" "$work/demo/trust.json" valid

# Mutants: one flipped byte at 24 spread offsets of each exported bundle; both verifiers must agree.
python3 - "$work" <<'PY'
import os, sys, shutil
work = sys.argv[1]
for name in ("demo-run-def", "pg-run-def", "pg-range-pef"):
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
echo "exported bundles and their mutants:"
CLYRA_BIN="$CLYRA" verifier/ts/scripts/conformance.sh "$work"/cases/* | tail -4
