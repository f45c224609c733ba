// Runs the Rust `clyra verify` and the TS `clyra-verify` over case directories and compares
// verdicts, code sets and exit statuses. Usage: node scripts/conformance.mjs CLYRA_BIN CASE_DIR...
// A case dir holds bundle.zip or bundle/, trust.json, optionally artifacts/ and expected.json
// (verify_at, threshold, artifacts). Without expected.json: --at from $CONFORMANCE_AT (default
// 2026-11-24T12:00:00Z), threshold 1, --artifacts artifacts when that directory exists.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const tsBin = join(pkg, "bin", "clyra-verify.js");
const [rustBin, ...cases] = process.argv.slice(2);
if (!rustBin || cases.length === 0) {
  console.error("usage: node scripts/conformance.mjs CLYRA_BIN CASE_DIR...");
  process.exit(1);
}

function run(cmd, args, cwd) {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { cwd, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  let verdict = "error";
  let codes = [];
  try {
    const rep = JSON.parse(r.stdout);
    if (rep.verdict) {
      verdict = rep.verdict;
      codes = [...new Set(rep.findings.map((f) => f.code))].sort();
    }
  } catch {
    /* not a report: error */
  }
  return { status: r.status, verdict, codes, ms, stderr: r.stderr };
}

let agree = 0;
let expectedMismatches = 0;
const disagreements = [];
let rustMs = 0;
let tsMs = 0;
const rows = [];
for (const c of cases) {
  const dir = resolve(c);
  const expPath = join(dir, "expected.json");
  const exp = existsSync(expPath) ? JSON.parse(readFileSync(expPath, "utf8")) : {};
  const at = exp.verify_at ?? process.env.CONFORMANCE_AT ?? "2026-11-24T12:00:00Z";
  const threshold = exp.threshold ?? 1;
  const artifacts = "artifacts" in exp ? exp.artifacts : existsSync(join(dir, "artifacts")) ? "artifacts" : null;
  const bundle = existsSync(join(dir, "bundle")) ? "bundle" : "bundle.zip";
  const common = [bundle, "--trust", "trust.json", "--at", at];
  if (artifacts) common.push("--artifacts", artifacts);
  if (threshold !== 1) common.push("--threshold", String(threshold));
  const rs = run(rustBin, ["verify", ...common, "--format", "json"], dir);
  const ts = run(process.execPath, [tsBin, ...common, "--json"], dir);
  rustMs += rs.ms;
  tsMs += ts.ms;
  const same = rs.verdict === ts.verdict && rs.status === ts.status && rs.codes.join() === ts.codes.join();
  const expOk = exp.verdict === undefined || (exp.verdict === rs.verdict && (exp.codes ?? []).join() === rs.codes.join());
  if (!expOk) expectedMismatches++;
  if (same) agree++;
  else disagreements.push({ case: c, rust: rs, ts });
  rows.push([same ? "agree" : "DISAGREE", expOk ? "" : "(rust != expected.json)", c, `${rs.verdict} [${rs.codes.join(",")}]`, same ? "" : `ts: ${ts.verdict} [${ts.codes.join(",")}] exit ${ts.status} vs ${rs.status}`]);
}
for (const r of rows) console.log(r.filter(Boolean).join("  "));
console.log("");
console.log("| cases | agreements | disagreements | rust total ms | ts total ms | rust ms/case | ts ms/case |");
console.log("|---|---|---|---|---|---|---|");
const n = cases.length;
console.log(`| ${n} | ${agree} | ${disagreements.length} | ${rustMs.toFixed(0)} | ${tsMs.toFixed(0)} | ${(rustMs / n).toFixed(1)} | ${(tsMs / n).toFixed(1)} |`);
for (const d of disagreements) {
  console.log(`\nDISAGREE ${d.case}\n  rust: exit ${d.rust.status} ${d.rust.verdict} [${d.rust.codes}] ${d.rust.stderr.trim().slice(0, 300)}\n  ts:   exit ${d.ts.status} ${d.ts.verdict} [${d.ts.codes}] ${d.ts.stderr.trim().slice(0, 300)}`);
}
if (expectedMismatches) console.log(`\n${expectedMismatches} case(s) where the verdict or codes differ from expected.json`);
process.exit(disagreements.length || expectedMismatches ? 3 : 0);
