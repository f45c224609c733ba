#!/usr/bin/env bash
# The two verifiers on one large bundle: builds the 100,000-entry DEF bundle of the bundle benchmark
# once (crates/clyra-evidence/examples/bundle_bench.rs), then verifies it from the file with the
# Rust CLI (`clyra verify`, release build) and the TypeScript CLI (`node bin/clyra-verify.js`,
# after `npm run build`), interleaved run by run, and reports each one's median wall time (whole
# process: start-up, reading, every check), CPU time, and time in process after start-up (Rust:
# the library call in bundle_bench; TS: verifyCaseFiles after a warm-up call, so without module
# loading and schema compilation), with the ratios TS/Rust. Target: TS CLI within 3x of Rust's.
# Not part of CI: it wants a quiet machine.
#
#   bench/verifiers.sh                          # 100,000 entries, 5 runs each
#   bench/verifiers.sh --entries 20000 --runs 3
#   bench/verifiers.sh --cpu-prof DIR           # also one profiled TS run (node --cpu-prof)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
entries=100000
runs=5
prof=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --entries) entries="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --cpu-prof) prof="$(realpath -m "$2")"; shift 2 ;;
    *) echo "usage: bench/verifiers.sh [--entries N] [--runs R] [--cpu-prof DIR]" >&2; exit 1 ;;
  esac
done

cargo build --release --locked -q -p clyra-cli
cargo build --release --locked -q -p clyra-evidence --example bundle_bench
target_dir="$(cargo metadata --format-version 1 --no-deps --locked |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')"
(cd verifier/ts && { [[ -d node_modules ]] || npm ci --no-audit --no-fund --loglevel=error; } && npm run -s build)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$target_dir/release/examples/bundle_bench" build "$entries" "$work/bench.zip" > /dev/null
"$target_dir/release/clyra" keys trust add --trust "$work/trust.json" \
  --not-before 2026-01-01T00:00:00Z "$work/bench.zip.pub" > /dev/null

node - "$target_dir/release/clyra" "$root/verifier/ts" "$work" "$runs" "$entries" "$prof" \
  "$target_dir/release/examples/bundle_bench" <<'JS'
const { spawnSync } = require("node:child_process");
const { existsSync, statSync } = require("node:fs");
const [rust, pkg, work, runs, entries, prof, benchBin] = process.argv.slice(2);
const ts = `${pkg}/bin/clyra-verify.js`;
const args = ["bench.zip", "--trust", "trust.json", "--at", "2026-11-24T12:00:00Z"];
const timeBin = existsSync("/usr/bin/time") ? "/usr/bin/time" : null;
// Wall time measured here; CPU time (user + system) from /usr/bin/time when it exists.
const time = (cmd, argv) => {
  const full = timeBin ? [timeBin, ["-f", "CPU %U %S", cmd, ...argv]] : [cmd, argv];
  const t0 = process.hrtime.bigint();
  const r = spawnSync(full[0], full[1], { cwd: work, encoding: "utf8", maxBuffer: 1 << 28 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`${cmd} exited ${r.status}: ${r.stdout.slice(0, 500)} ${r.stderr.slice(0, 500)}`);
  const m = /CPU ([0-9.]+) ([0-9.]+)/.exec(r.stderr);
  return { ms, cpu: m ? (Number(m[1]) + Number(m[2])) * 1e3 : NaN };
};
const rustRun = () => time(rust, ["verify", ...args, "--format", "json"]);
const tsRun = () => time(process.execPath, [ts, ...args, "--json"]);
// Warm-up (page cache), then interleaved so that outside load falls on both alike.
rustRun();
tsRun();
const r = [];
const t = [];
for (let i = 0; i < Number(runs); i++) {
  r.push(rustRun());
  t.push(tsRun());
}
// In process, after start-up: Rust's library call (bundle_bench verify), and the TS library
// (verifyCaseFiles) after one warm-up call, which loads modules and compiles the schemas.
const inRust = [];
for (let i = 0; i < Number(runs); i++) {
  const out = spawnSync(benchBin, ["verify", `${work}/bench.zip`], { encoding: "utf8" }).stdout;
  inRust.push(Number(/seconds=([0-9.]+)/.exec(out)[1]) * 1e3);
}
const inTsOut = spawnSync(process.execPath, ["--input-type=module", "-e", `
  const { verifyCaseFiles } = await import(${JSON.stringify(`${pkg}/dist/src/node.js`)});
  process.chdir(${JSON.stringify(work)});
  const c = { bundle: "bench.zip", trust: "trust.json", at: "2026-11-24T12:00:00Z", artifacts: null, threshold: 1 };
  const first = await verifyCaseFiles(c);
  if (first.status !== 0) throw new Error("not valid");
  const ms = [];
  for (let i = 0; i < ${Number(runs)}; i++) {
    const t0 = performance.now();
    await verifyCaseFiles(c);
    ms.push(performance.now() - t0);
  }
  console.log(JSON.stringify(ms));`], { encoding: "utf8" });
const inTs = JSON.parse(inTsOut.stdout);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (xs) => `${median(xs).toFixed(0)} ms (min ${Math.min(...xs).toFixed(0)}, max ${Math.max(...xs).toFixed(0)})`;
const mib = (statSync(`${work}/bench.zip`).size / 2 ** 20).toFixed(1);
const rw = r.map((x) => x.ms), tw = t.map((x) => x.ms), rc = r.map((x) => x.cpu), tc = t.map((x) => x.cpu);
console.log(`verifiers on one DEF bundle: ${entries} entries, ${mib} MiB; medians of ${runs} runs after a warm-up`);
console.log(`| verifier | CLI wall time (whole process) | CLI CPU time (user + sys) | in process, after start-up |`);
console.log(`|---|---|---|---|`);
console.log(`| rust: clyra verify (release) | ${fmt(rw)} | ${fmt(rc)} | ${fmt(inRust)} |`);
console.log(`| ts: node bin/clyra-verify.js (node ${process.version}) | ${fmt(tw)} | ${fmt(tc)} | ${fmt(inTs)} |`);
const ratio = (a, b) => (median(a) / median(b)).toFixed(2);
console.log(`ratio ts/rust (medians): CLI wall ${ratio(tw, rw)}x, CLI CPU ${ratio(tc, rc)}x, in process ${ratio(inTs, inRust)}x (target: CLI wall <= 3x)`);
if (prof) {
  spawnSync(process.execPath, ["--cpu-prof", "--cpu-prof-dir", prof, ts, ...args, "--json"], { cwd: work, stdio: "ignore" });
  console.log(`cpu profile of one TS run in ${prof} (open in Chrome DevTools, Performance tab)`);
}
JS
