#!/usr/bin/env bash
# Cross-verifier conformance: runs the Rust `clyra verify` and the TypeScript `clyra-verify` over
# case directories and fails (exit 3) on any disagreement in verdict, exit status or code set.
#
#   verifier/ts/scripts/conformance.sh                 # every golden vector, minus superseded ones
#   verifier/ts/scripts/conformance.sh DIR...          # given case dirs (e.g. a mutation corpus)
#   find corpus -name trust.json -printf '%h\n' | xargs verifier/ts/scripts/conformance.sh
#
# Rust binary: $CLYRA_BIN, else target/debug/clyra under the repository root (cargo build -p clyra-cli).
# The TS package must be built (cd verifier/ts && npm ci && npm run build).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pkg="$(dirname "$here")"
root="$(cd "$pkg/../.." && pwd)"
bin="${CLYRA_BIN:-$root/target/debug/clyra}"
if [[ ! -x "$bin" ]]; then
  echo "conformance: no Rust binary at $bin (set CLYRA_BIN or run cargo build -p clyra-cli)" >&2
  exit 1
fi
if [[ ! -f "$pkg/dist/src/cli.js" ]]; then
  echo "conformance: TS verifier not built (cd verifier/ts && npm run build)" >&2
  exit 1
fi
if [[ $# -eq 0 ]]; then
  cases=()
  superseded="$(grep -v '^#' "$root/spec/test-vectors-superseded.txt" | cut -f1 || true)"
  for fmt in def pef; do
    for d in "$root"/spec/$fmt/test-vectors/*/; do
      name="$(basename "$d")"
      if grep -qxF "$fmt/$name" <<<"$superseded"; then continue; fi
      cases+=("${d%/}")
    done
  done
  set -- "${cases[@]}"
fi
exec node "$here/conformance.mjs" "$bin" "$@"
