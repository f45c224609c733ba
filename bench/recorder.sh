#!/usr/bin/env bash
# Recorder benchmark: sustained entries/s and acknowledgement latency at a fixed offered rate, for
# `clyra recorder serve` on SQLite and on Postgres, against a plain HTTP endpoint that does nothing
# (the floor), all on loopback, reported as ratios in one run.
#
#   bench/recorder.sh [RATE entries/s, default 10000] [SECONDS, default 20] [BATCH, default 1]
#
# Needs the local Postgres (scripts/services.sh starts it). Not part of CI: it takes about a minute
# and its figures are only meaningful on a quiet machine.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE="${1:-10000}"
SECONDS_RUN="${2:-20}"
BATCH="${3:-1}"
CONNS="${CONNS:-64}"
PG_URL="${CLYRA_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"

cargo build --release --locked -q -p clyra-cli --bin clyra
cargo build --release --locked -q -p clyra-recorder --example loadgen
TARGET="${CARGO_TARGET_DIR:-target}"
CLYRA="$TARGET/release/clyra"
LOADGEN="$TARGET/release/examples/loadgen"

WORK="$(mktemp -d)"
PIDS=()
SCHEMA="bench_$$"
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    psql "$PG_URL" -qc "DROP SCHEMA IF EXISTS $SCHEMA CASCADE" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

head -c 32 /dev/urandom > "$WORK/acme.k1.secret"
chmod 600 "$WORK/acme.k1.secret"
echo '{"tenants": {"acme": {"keys": [{"id": "k1", "secret_file": "acme.k1.secret"}]}}}' > "$WORK/tenants.json"

# Starts a server in the background (in this shell, so its pid is kept for cleanup).
start() {
    local log="$1"; shift
    "$@" > /dev/null 2> "$log" &
    PIDS+=("$!")
}

# Prints the address a server announced in its log, once it listens.
addr_of() {
    for _ in $(seq 1 200); do
        if grep -q "listening on http://" "$1"; then
            grep -o "listening on http://[^ ]*" "$1" | head -1 | sed 's|listening on http://||'
            return 0
        fi
        sleep 0.05
    done
    echo "server did not start: $(cat "$1")" >&2
    return 1
}

load() {
    "$LOADGEN" run --endpoint "http://$1" --tenant acme --key-id k1 --secret-file "$WORK/acme.k1.secret" \
        --rate "$RATE" --seconds "$SECONDS_RUN" --connections "$CONNS" --batch "$BATCH" --json
}

start "$WORK/floor.log" "$LOADGEN" floor --listen 127.0.0.1:0
start "$WORK/sqlite.log" "$CLYRA" recorder serve --listen 127.0.0.1:0 \
    --store "sqlite:$WORK/journal" --tenants "$WORK/tenants.json" --queue 100000
start "$WORK/pg.log" "$CLYRA" recorder serve --listen 127.0.0.1:0 \
    --store "$PG_URL?schema=$SCHEMA" --tenants "$WORK/tenants.json" --queue 100000
FLOOR=$(addr_of "$WORK/floor.log")
SQLITE=$(addr_of "$WORK/sqlite.log")
PG=$(addr_of "$WORK/pg.log")

echo "offered $RATE entries/s for ${SECONDS_RUN}s, batch $BATCH, $CONNS connections, $(nproc) cores" >&2
F=$(load "$FLOOR");  echo "floor  $F" >&2
S=$(load "$SQLITE"); echo "sqlite $S" >&2
P=$(load "$PG");     echo "pg     $P" >&2

# Every acknowledged entry is in the journal and the chain verifies.
"$CLYRA" journal verify --store "sqlite:$WORK/journal" >&2
"$CLYRA" journal verify --store "$PG_URL?schema=$SCHEMA" >&2

python3 - "$F" "$S" "$P" <<'PY'
import json, sys
f, s, p = (json.loads(a) for a in sys.argv[1:4])
print(f"{'target':<10}{'entries/s':>11}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}   ratio to floor (p50/p95/p99)")
for name, r in (("floor", f), ("sqlite", s), ("postgres", p)):
    ratio = "" if r is f else "   " + " / ".join(f"{r[k]/f[k]:.1f}x" for k in ("p50_ms", "p95_ms", "p99_ms"))
    print(f"{name:<10}{r['entries_per_s']:>11.0f}{r['p50_ms']:>9.2f}{r['p95_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['errors']:>8}{ratio}")
ok = s["entries_per_s"] >= 0.98 * s["offered_entries_per_s"] and s["p99_ms"] <= 10 and s["errors"] == 0
print(f"target (SQLite: >= 10,000 entries/s sustained, p99 <= 10 ms): {'met' if ok and s['offered_entries_per_s'] >= 10000 else 'NOT met'}")
PY
