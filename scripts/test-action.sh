#!/usr/bin/env bash
# Tests the verify-bundle GitHub Action's logic (.github/actions/verify-bundle/verify.sh) locally,
# with the Rust verifier built by `make test` (target/debug/clyra, or $CLYRA_BIN) and the TS
# verifier built by `npm test` (verifier/ts): valid, forged and mixed sets of golden vectors, a
# threshold, a directory bundle, external artifacts, a disagreement, and bad inputs.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
export CLYRA_BIN="${CLYRA_BIN:-${CARGO_TARGET_DIR:-$root/target}/debug/clyra}"
export CLYRA_VERIFY_TS="$root/verifier/ts/bin/clyra-verify.js"
[[ -x "$CLYRA_BIN" ]] || { echo "test-action: $CLYRA_BIN missing: cargo build -p clyra-cli (or set CLYRA_BIN)" >&2; exit 1; }
[[ -f "$root/verifier/ts/dist/src/cli.js" ]] || { echo "test-action: build the TS verifier first (cd verifier/ts && npm ci && npm run build)" >&2; exit 1; }

VERIFY="$root/.github/actions/verify-bundle/verify.sh"
DEF="$root/spec/def/test-vectors"
PEF="$root/spec/pef/test-vectors"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export CLYRA_VERIFY_AT=2026-11-24T12:00:00Z # every vector's verify_at
export CLYRA_TRUST="$DEF/dbt_run_postgres/trust.json" # the trust file most vectors share
export GITHUB_STEP_SUMMARY="$work/summary.md"

fails=0
# expect STATUS NAME -- COMMAND...: runs COMMAND, checks its exit status; output in $work/out.
expect() {
  local want="$1" name="$2" got=0
  shift 3
  "$@" >"$work/out" 2>&1 || got=$?
  if [[ "$got" == "$want" ]]; then
    echo "ok    $name (exit $got)"
  else
    echo "FAIL  $name: exit $got, want $want"
    sed 's/^/      /' "$work/out"
    fails=$((fails + 1))
  fi
}
# has NAME PATTERN: the last output matches the extended regex PATTERN.
has() {
  if ! grep -Eq "$2" "$work/out"; then
    echo "FAIL  $1: output lacks /$2/"
    sed 's/^/      /' "$work/out"
    fails=$((fails + 1))
  fi
}

expect 0 "a valid vector" -- "$VERIFY" "$DEF/dbt_run_postgres/bundle.zip"
has "a valid vector" "dbt_run_postgres/bundle.zip +valid +valid +ok"
has "a valid vector" "all 1 bundle\(s\) valid by both verifiers"

expect 2 "a forged vector" -- "$VERIFY" "$DEF/bad_signature_fail/bundle.zip"
has "a forged vector" "bad_signature_fail/bundle.zip +invalid \(E_SIGNATURE\) +invalid \(E_SIGNATURE\) +INVALID"

# A mixed set, given as the action gives it: CLYRA_BUNDLES with a glob, spaces and newlines.
mkdir -p "$work/evidence/pef"
cp "$DEF/dbt_run_postgres/bundle.zip" "$work/evidence/dbt-run.zip"
cp "$DEF/journal_entry_edited_fail/bundle.zip" "$work/evidence/edited.zip"
cp "$PEF/agent_session/bundle.zip" "$work/evidence/pef/agent-session.zip"
cp "$PEF/journal_entry_removed_fail/bundle.zip" "$work/evidence/pef/entry-removed.zip"
(
  cd "$work"
  expect 2 "a mixed set (glob and list)" -- env CLYRA_BUNDLES="evidence/*.zip
  evidence/pef/agent-session.zip   evidence/pef/entry-removed.zip" "$VERIFY"
  has "mixed: valid DEF" "^evidence/dbt-run.zip +valid +valid +ok"
  has "mixed: edited DEF" "^evidence/edited.zip +invalid \(E_CHAIN_BROKEN, E_DIGEST_MISMATCH, E_MERKLE_ROOT\) .* INVALID"
  has "mixed: valid PEF" "^evidence/pef/agent-session.zip +valid +valid +ok"
  has "mixed: entry removed PEF" "^evidence/pef/entry-removed.zip +invalid \(E_CHAIN_BROKEN\) .* INVALID"
  has "mixed: summary" "4 checked"
  expect 0 "the valid ones, by a ** glob" -- env CLYRA_BUNDLES="evidence/**/*-s*.zip evidence/dbt-*.zip" "$VERIFY"
  has "** glob" "all 2 bundle\(s\) valid"
  grep -q '^| `evidence/pef/agent-session.zip` | valid | valid | ok |$' "$GITHUB_STEP_SUMMARY" ||
    { echo "FAIL  the job summary lacks the Markdown table"; fails=$((fails + 1)); }
  exit "$fails"
) || fails=$?

expect 0 "threshold 2, two signers" -- env CLYRA_TRUST="$PEF/two_signers_threshold_2/trust.json" CLYRA_THRESHOLD=2 \
  "$VERIFY" "$PEF/two_signers_threshold_2/bundle.zip"
expect 2 "threshold 2, one key signed twice" -- env CLYRA_TRUST="$PEF/same_key_twice_fail/trust.json" CLYRA_THRESHOLD=2 \
  "$VERIFY" "$PEF/same_key_twice_fail/bundle.zip"
has "threshold 2, one key signed twice" "E_THRESHOLD"
expect 0 "a directory bundle" -- "$VERIFY" "$PEF/directory_form/bundle"
expect 0 "external artifacts supplied" -- env CLYRA_ARTIFACTS="$DEF/external_artifact_supplied/artifacts" \
  "$VERIFY" "$DEF/external_artifact_supplied/bundle.zip"
expect 2 "external artifacts swapped" -- env CLYRA_ARTIFACTS="$DEF/external_artifact_swapped_fail/artifacts" \
  "$VERIFY" "$DEF/external_artifact_swapped_fail/bundle.zip"

# The two verifiers disagreeing: a stand-in "Rust verifier" that calls everything valid.
cat >"$work/yes-clyra" <<'SH'
#!/usr/bin/env bash
printf '{"verdict": "valid", "findings": []}\n'
SH
chmod +x "$work/yes-clyra"
expect 2 "the verifiers disagree" -- env CLYRA_BIN="$work/yes-clyra" "$VERIFY" "$DEF/file_digest_changed_fail/bundle.zip"
has "the verifiers disagree" "valid +invalid \(E_DIGEST_MISMATCH\) +DISAGREE"

# Inputs that stop the check before any verdict (exit 1).
expect 1 "a pattern that matches nothing" -- "$VERIFY" "$work/none/*.zip"
has "a pattern that matches nothing" "no bundle matches"
expect 1 "a path that does not exist" -- "$VERIFY" "$work/missing.zip"
expect 1 "no bundles" -- env CLYRA_BUNDLES="" "$VERIFY"
expect 1 "no trust file" -- env CLYRA_TRUST="" "$VERIFY" "$DEF/dbt_run_postgres/bundle.zip"
expect 1 "a bad threshold" -- env CLYRA_THRESHOLD=0 "$VERIFY" "$DEF/dbt_run_postgres/bundle.zip"
printf '{"version": 1, "keys": [' >"$work/broken-trust.json"
expect 1 "a trust file the verifiers reject" -- env CLYRA_TRUST="$work/broken-trust.json" "$VERIFY" "$DEF/dbt_run_postgres/bundle.zip"
has "a trust file the verifiers reject" "error +error +ERROR"

if [[ $fails -ne 0 ]]; then
  echo "test-action: $fails failure(s)" >&2
  exit 1
fi
echo "test-action: all passed"
