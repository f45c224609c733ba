#!/usr/bin/env bash
# Cross-verifier conformance: runs the Rust `clyra verify` and the TypeScript verifier over case
# directories and fails (exit 3) on any disagreement in verdict, exit status or code set.
#
#   verifier/ts/scripts/conformance.sh                 # every golden vector, minus superseded ones
#   verifier/ts/scripts/conformance.sh DIR...          # given case dirs (e.g. a mutation corpus)
#   verifier/ts/scripts/conformance.sh --batch DIR...  # TS side in one Node process (library API)
#   find corpus -name trust.json -printf '%h\n' | xargs verifier/ts/scripts/conformance.sh --batch
#
# Options before the case dirs go to scripts/conformance.mjs (--ts cli|lib|both, --batch, --jobs N,
# --quiet, --label TEXT, --summary FILE; see its header).
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
if [[ ! -f "$pkg/dist/src/cli.js" || ! -f "$pkg/dist/src/node.js" ]]; then
  echo "conformance: TS verifier not built (cd verifier/ts && npm run build)" >&2
  exit 1
fi
opts=()
while [[ $# -gt 0 && "$1" == --* ]]; do
  case "$1" in
    --ts | --jobs | --label | --summary) opts+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
    *) opts+=("$1"); shift ;;
  esac
done
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
exec node "$here/conformance.mjs" "${opts[@]}" "$bin" "$@"
