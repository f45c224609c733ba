#!/usr/bin/env bash
# Verify Clyra evidence bundles with both verifiers, the Rust `clyra verify` and the independent
# TypeScript `clyra-verify`, print a table (bundle, rust verdict, ts verdict, result) and fail
# unless every bundle is valid by both and the two agree (same verdict, same set of finding codes).
# The logic of the verify-bundle action (action.yml), usable on its own:
#
#   CLYRA_TRUST=trust.json verify.sh 'evidence/*.zip' run.def.zip
#
# Bundles: the arguments, else $CLYRA_BUNDLES; each is a path or a bash glob (** allowed),
# separated by spaces or newlines; a pattern that matches nothing is an error.
# Environment:
#   CLYRA_TRUST       trust file (required)
#   CLYRA_ARTIFACTS   directory of external artifacts (optional)
#   CLYRA_VERIFY_AT   verification time, RFC 3339 (optional; default now)
#   CLYRA_THRESHOLD   distinct trusted keys that must have signed (default 1)
#   CLYRA_BIN         the Rust verifier (default: clyra on PATH)
#   CLYRA_VERIFY_TS   the TypeScript verifier, e.g. verifier/ts/bin/clyra-verify.js (default:
#                     clyra-verify on PATH)
#   GITHUB_STEP_SUMMARY  when set (GitHub Actions), the table is appended to it as Markdown
# Exit: 0 every bundle valid by both verifiers; 2 some bundle not valid, or the verifiers
# disagree; 1 the check could not run (bad inputs, a verifier error, no bundle).
set -euo pipefail

die() {
  echo "verify-bundle: $*" >&2
  exit 1
}

CLYRA_BIN="${CLYRA_BIN:-clyra}"
CLYRA_VERIFY_TS="${CLYRA_VERIFY_TS:-clyra-verify}"
trust="${CLYRA_TRUST:-}"
artifacts="${CLYRA_ARTIFACTS:-}"
at="${CLYRA_VERIFY_AT:-}"
threshold="${CLYRA_THRESHOLD:-1}"

[[ -n "$trust" ]] || die "no trust file: set CLYRA_TRUST (the action's trust input)"
[[ -f "$trust" ]] || die "trust file $trust does not exist"
[[ -z "$artifacts" || -d "$artifacts" ]] || die "artifacts directory $artifacts does not exist"
[[ "$threshold" =~ ^[1-9][0-9]*$ ]] || die "threshold $threshold is not a whole number of at least 1"
command -v "$CLYRA_BIN" >/dev/null 2>&1 || die "the Rust verifier $CLYRA_BIN is not found (set CLYRA_BIN)"
command -v "$CLYRA_VERIFY_TS" >/dev/null 2>&1 || die "the TypeScript verifier $CLYRA_VERIFY_TS is not found (set CLYRA_VERIFY_TS)"
command -v node >/dev/null 2>&1 || die "node is not on PATH (the TypeScript verifier needs Node.js 20.19 or later)"

# Both verifiers take the same options (bundle.md §8, spec/README.md).
opts=(--trust "$trust" --threshold "$threshold" --format json)
[[ -n "$artifacts" ]] && opts+=(--artifacts "$artifacts")
# One instant for every bundle and both verifiers, so a key expiring mid-run cannot split them.
[[ -n "$at" ]] || at="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
opts+=(--at "$at")

# Expand the patterns: word splitting on spaces and newlines only, then globbing.
if [[ $# -gt 0 ]]; then
  patterns=("$@")
else
  IFS=$' \t\n' read -r -d '' -a patterns <<<"${CLYRA_BUNDLES:-}" || true
fi
[[ ${#patterns[@]} -gt 0 ]] || die "no bundles given (the bundles input, CLYRA_BUNDLES or arguments)"
shopt -s nullglob globstar
bundles=()
for p in "${patterns[@]}"; do
  # shellcheck disable=SC2206 # globbing is the point; the pattern has no spaces after splitting
  matches=($p)
  [[ ${#matches[@]} -gt 0 && -e "${matches[0]}" ]] || die "no bundle matches $p"
  bundles+=("${matches[@]}")
done
shopt -u nullglob globstar

# Runs one verifier; prints "VERDICT CODES" (codes comma-separated, sorted, "-" for none), where
# VERDICT is valid, invalid or error. The exit status and the JSON report must agree.
run() { # BUNDLE VERIFIER...
  local bundle="$1" out rc=0
  shift
  out="$("$@" "$bundle" "${opts[@]}" 2>"$tmp/stderr")" || rc=$?
  if [[ $rc -ne 0 && $rc -ne 2 ]]; then
    echo "error -"
    sed 's/^/    /' "$tmp/stderr" >&2
    return
  fi
  printf '%s' "$out" | node -e '
    let s = "";
    process.stdin.on("data", (d) => (s += d)).on("end", () => {
      let r;
      try { r = JSON.parse(s); } catch { console.log("error -"); return; }
      const want = process.argv[1] === "0" ? "valid" : "invalid";
      if (r.verdict !== want) { console.log("error -"); return; }
      const codes = [...new Set((r.findings ?? []).map((f) => f.code))].sort();
      console.log(`${r.verdict} ${codes.join(",") || "-"}`);
    });' "$rc"
}

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

cell() { if [[ "$2" == "-" ]]; then echo "$1"; else echo "$1 (${2//,/, })"; fi; }

header=(bundle "rust verdict" "ts verdict" result)
rows=()
failed=0
errored=0
for b in "${bundles[@]}"; do
  rv="" tv="" rc_codes="-" tc_codes="-"
  read -r rv rc_codes < <(run "$b" "$CLYRA_BIN" verify) || true
  read -r tv tc_codes < <(run "$b" "$CLYRA_VERIFY_TS") || true
  [[ -n "$rv" ]] || rv=error
  [[ -n "$tv" ]] || tv=error
  if [[ "$rv" == error || "$tv" == error ]]; then
    result="ERROR"
    errored=1
  elif [[ "$rv" != "$tv" || "$rc_codes" != "$tc_codes" ]]; then
    result="DISAGREE"
    failed=1
  elif [[ "$rv" == valid ]]; then
    result="ok"
  else
    result="INVALID"
    failed=1
  fi
  rows+=("$b"$'\t'"$(cell "$rv" "$rc_codes")"$'\t'"$(cell "$tv" "$tc_codes")"$'\t'"$result")
done

# The table, aligned for the log and in Markdown for the job summary.
widths=(0 0 0 0)
for r in "$(IFS=$'\t'; echo "${header[*]}")" "${rows[@]}"; do
  IFS=$'\t' read -r -a c <<<"$r"
  for i in 0 1 2 3; do
    if ((${#c[i]} > widths[i])); then widths[i]=${#c[i]}; fi
  done
done
for r in "$(IFS=$'\t'; echo "${header[*]}")" "${rows[@]}"; do
  IFS=$'\t' read -r -a c <<<"$r"
  printf '%-*s  %-*s  %-*s  %s\n' "${widths[0]}" "${c[0]}" "${widths[1]}" "${c[1]}" "${widths[2]}" "${c[2]}" "${c[3]}"
done
if [[ -n "${GITHUB_STEP_SUMMARY:-}" ]]; then
  {
    echo "### Clyra evidence bundles (verified at $at, threshold $threshold)"
    echo
    echo "| bundle | rust verdict | ts verdict | result |"
    echo "|---|---|---|---|"
    for r in "${rows[@]}"; do
      IFS=$'\t' read -r -a c <<<"$r"
      echo "| \`${c[0]}\` | ${c[1]} | ${c[2]} | ${c[3]} |"
    done
  } >>"$GITHUB_STEP_SUMMARY"
fi

n=${#bundles[@]}
if [[ $failed -ne 0 ]]; then
  echo "verify-bundle: not every bundle is valid by both verifiers ($n checked at $at)" >&2
  exit 2
elif [[ $errored -ne 0 ]]; then
  echo "verify-bundle: a verifier could not run on some bundle (see above)" >&2
  exit 1
fi
echo "verify-bundle: all $n bundle(s) valid by both verifiers (at $at, threshold $threshold)"
