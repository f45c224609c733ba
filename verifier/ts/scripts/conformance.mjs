// Runs the Rust `clyra verify` and the TS verifier over case directories and compares verdicts,
// code sets and exit statuses.
//
//   node scripts/conformance.mjs [--ts cli|lib|both] [--jobs N] [--quiet] [--label TEXT]
//                                [--summary FILE] CLYRA_BIN CASE_DIR...
//
// --ts cli   (default) spawn bin/clyra-verify.js per case, like the Rust binary: the CLI level,
//            exit status and printed JSON report included.
// --ts lib   batch mode: verify every case in this one Node process through verifyCaseFiles
//            (dist/src/node.js), the function the CLI itself calls, so the report, the exit status
//            and the error outcome are the ones the CLI would print; no per-case Node start-up.
// --ts both  both of the above, and the library's report must equal the CLI's JSON byte for byte
//            (after parsing) with the same exit status; a difference counts as a disagreement.
// --jobs N   cases in flight at once (default: the number of CPUs). The Rust process of a case
//            runs while the TS side verifies it; in lib mode the TS side verifies one case at a time.
// --quiet    print only cases that disagree or differ from expected.json, then the table.
// --summary  append the table's figures to FILE as one JSON line (scripts/cross-verify.sh).
//
// A case dir holds bundle.zip or bundle/, trust.json, optionally artifacts/ and expected.json
// (verify_at, threshold, artifacts, and optionally verdict + codes, which both verifiers must then
// match). Without expected.json: --at from $CONFORMANCE_AT (default 2026-11-24T12:00:00Z),
// threshold 1, --artifacts artifacts when that directory exists. Exit 3 on any disagreement or
// expected.json mismatch.
import { spawn } from "node:child_process";
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { join, dirname, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { isDeepStrictEqual } from "node:util";

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const tsBin = join(pkg, "bin", "clyra-verify.js");
const USAGE =
  "usage: node scripts/conformance.mjs [--ts cli|lib|both] [--jobs N] [--quiet] [--label TEXT] [--summary FILE] CLYRA_BIN CASE_DIR...";

const argv = process.argv.slice(2);
let mode = "cli";
let jobs = availableParallelism();
let quiet = false;
let label = "";
let summaryFile = null;
while (argv[0]?.startsWith("--")) {
  const opt = argv.shift();
  const val = () => {
    const v = argv.shift();
    if (v === undefined) {
      console.error(`${opt} needs a value\n${USAGE}`);
      process.exit(1);
    }
    return v;
  };
  if (opt === "--ts") mode = val();
  else if (opt === "--batch") mode = "lib";
  else if (opt === "--jobs") jobs = Math.max(1, Number(val()) || 1);
  else if (opt === "--quiet") quiet = true;
  else if (opt === "--label") label = val();
  else if (opt === "--summary") summaryFile = val();
  else {
    console.error(`unknown option ${opt}\n${USAGE}`);
    process.exit(1);
  }
}
const [rustBin, ...cases] = argv;
if (!rustBin || cases.length === 0 || !["cli", "lib", "both"].includes(mode)) {
  console.error(USAGE);
  process.exit(1);
}

const started = process.hrtime.bigint();
const since = (t0) => Number(process.hrtime.bigint() - t0) / 1e6;

// The library is loaded once; its load time (module graph, schema compilation) is counted in the
// TS total below.
let lib = null;
let tsLoadMs = 0;
if (mode !== "cli") {
  const t0 = process.hrtime.bigint();
  lib = await import(pathToFileURL(join(pkg, "dist", "src", "node.js")).href);
  tsLoadMs = since(t0);
}

/** The outcome of a printed JSON document (a report or an error) and an exit status. */
function outcome(status, json, ms, stderr) {
  let verdict = "error";
  let codes = [];
  if (json && typeof json.verdict === "string" && Array.isArray(json.findings)) {
    verdict = json.verdict;
    codes = [...new Set(json.findings.map((f) => f.code))].sort();
  }
  return { status, verdict, codes, ms, stderr, json };
}

function runProcess(cmd, args, cwd) {
  return new Promise((done) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
    const out = [];
    const err = [];
    child.stdout.on("data", (b) => out.push(b));
    child.stderr.on("data", (b) => err.push(b));
    child.on("error", (e) => err.push(Buffer.from(String(e))));
    child.on("close", (status) => {
      const ms = since(t0);
      let json = null;
      try {
        json = JSON.parse(Buffer.concat(out).toString("utf8"));
      } catch {
        /* not JSON: an error */
      }
      done(outcome(status, json, ms, Buffer.concat(err).toString("utf8")));
    });
  });
}

// In lib mode the TS side runs one case at a time (it needs the case dir as working directory, so
// that paths, and the report's `bundle`, are what the CLI would see).
let libQueue = Promise.resolve();
function runLib(c, dir) {
  const run = async () => {
    const back = process.cwd();
    process.chdir(dir);
    const t0 = process.hrtime.bigint();
    try {
      const r = await lib.verifyCaseFiles({ bundle: c.bundle, trust: "trust.json", at: c.at, artifacts: c.artifacts, threshold: c.threshold });
      const ms = since(t0);
      // Through JSON text, as the CLI prints it.
      const json = JSON.parse(JSON.stringify(r.status === 1 ? lib.errorJson(r.error) : r.report));
      return outcome(r.status, json, ms, r.status === 1 ? r.error : "");
    } finally {
      process.chdir(back);
    }
  };
  const p = libQueue.then(run, run);
  libQueue = p.catch(() => {});
  return p;
}

function caseArgs(dir) {
  const expPath = join(dir, "expected.json");
  const exp = existsSync(expPath) ? JSON.parse(readFileSync(expPath, "utf8")) : {};
  const at = exp.verify_at ?? process.env.CONFORMANCE_AT ?? "2026-11-24T12:00:00Z";
  const threshold = exp.threshold ?? 1;
  const artifacts = "artifacts" in exp ? exp.artifacts : existsSync(join(dir, "artifacts")) ? "artifacts" : null;
  const bundle = existsSync(join(dir, "bundle")) ? "bundle" : "bundle.zip";
  const cli = [bundle, "--trust", "trust.json", "--at", at];
  if (artifacts) cli.push("--artifacts", artifacts);
  if (threshold !== 1) cli.push("--threshold", String(threshold));
  return { exp, at, threshold, artifacts, bundle, cli };
}

const same = (a, b) => a.verdict === b.verdict && a.status === b.status && a.codes.join() === b.codes.join();
const matchesExp = (exp, r) => exp.verdict === undefined || (exp.verdict === r.verdict && (exp.codes ?? []).join() === r.codes.join());

async function runCase(c) {
  const dir = resolve(c);
  const a = caseArgs(dir);
  const [rs, tsCli, tsLib] = await Promise.all([
    runProcess(rustBin, ["verify", ...a.cli, "--format", "json"], dir),
    mode === "lib" ? null : runProcess(process.execPath, [tsBin, ...a.cli, "--json"], dir),
    mode === "cli" ? null : runLib(a, dir),
  ]);
  const ts = tsCli ?? tsLib;
  const problems = [];
  if (!same(rs, ts)) problems.push(`ts: ${ts.verdict} [${ts.codes.join(",")}] exit ${ts.status} vs rust exit ${rs.status}`);
  if (tsCli && tsLib && !(tsCli.status === tsLib.status && isDeepStrictEqual(tsCli.json, tsLib.json)))
    problems.push(`ts library report != ts CLI report (exit ${tsLib.status} vs ${tsCli.status})`);
  const expOk = matchesExp(a.exp, rs) && matchesExp(a.exp, ts);
  return { case: c, rs, ts, tsLib, problems, expOk };
}

const results = new Array(cases.length);
let next = 0;
async function worker() {
  while (next < cases.length) {
    const i = next++;
    results[i] = await runCase(cases[i]);
  }
}
await Promise.all(Array.from({ length: Math.min(jobs, cases.length) }, worker));
const wallMs = since(started);

let agree = 0;
let expectedMismatches = 0;
let rustMs = 0;
let tsMs = mode === "lib" ? tsLoadMs : 0;
let tsLibMs = 0;
for (const r of results) {
  rustMs += r.rs.ms;
  tsMs += r.ts.ms;
  if (mode === "both") tsLibMs += r.tsLib.ms;
  if (r.problems.length === 0) agree++;
  if (!r.expOk) expectedMismatches++;
  if (quiet && r.problems.length === 0 && r.expOk) continue;
  const row = [r.problems.length ? "DISAGREE" : "agree", r.expOk ? "" : "(!= expected.json)", r.case, `${r.rs.verdict} [${r.rs.codes.join(",")}]`, ...r.problems];
  console.log(row.filter(Boolean).join("  "));
}
const n = cases.length;
const disagreements = n - agree;
const tsLabel = mode === "lib" ? "ts (1 process)" : "ts (CLI per case)";
if (!quiet) console.log("");
if (label) console.log(label);
console.log(`| cases | agreements | disagreements | expected.json mismatches | rust total s | rust ms/case | ${tsLabel} total s | ts ms/case | wall s |`);
console.log("|---|---|---|---|---|---|---|---|---|");
console.log(
  `| ${n} | ${agree} | ${disagreements} | ${expectedMismatches} | ${(rustMs / 1e3).toFixed(1)} | ${(rustMs / n).toFixed(1)} | ${(tsMs / 1e3).toFixed(1)} | ${(tsMs / n).toFixed(1)} | ${(wallMs / 1e3).toFixed(1)} |`,
);
if (mode === "both")
  console.log(`(ts library in this process, reports compared with the CLI's: ${(tsLibMs / 1e3).toFixed(1)} s, ${(tsLibMs / n).toFixed(1)} ms/case, plus ${tsLoadMs.toFixed(0)} ms to load)`);
else if (mode === "lib") console.log(`(ts total includes ${tsLoadMs.toFixed(0)} ms to load the library once)`);
for (const r of results) {
  if (r.problems.length === 0 && r.expOk) continue;
  console.log(`\n${r.problems.length ? "DISAGREE" : "EXPECTED"} ${r.case}`);
  console.log(`  rust: exit ${r.rs.status} ${r.rs.verdict} [${r.rs.codes}] ${r.rs.stderr.trim().slice(0, 300)}`);
  console.log(`  ts:   exit ${r.ts.status} ${r.ts.verdict} [${r.ts.codes}] ${r.ts.stderr.trim().slice(0, 300)}`);
  for (const p of r.problems) console.log(`  ${p}`);
}
if (expectedMismatches) console.log(`\n${expectedMismatches} case(s) where a verdict or code set differs from expected.json`);
if (summaryFile) {
  const line = { label, mode, cases: n, agreements: agree, disagreements, expected_mismatches: expectedMismatches, rust_ms: rustMs, ts_ms: tsMs, wall_ms: wallMs };
  appendFileSync(summaryFile, JSON.stringify(line) + "\n");
}
process.exit(disagreements || expectedMismatches ? 3 : 0);
