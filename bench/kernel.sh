#!/usr/bin/env bash
# The evidence kernel's ratio report: every figure against its baseline, measured in one run.
# Not part of CI (it takes a few minutes and wants a quiet machine). See benches/ratios.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --locked -p clyra-evidence --bench ratios
if [ "${CRITERION:-0}" = 1 ]; then
  cargo bench --locked -p clyra-evidence --bench merkle
fi
