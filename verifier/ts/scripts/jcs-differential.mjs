// JCS differential: the Rust canonicalizer (`clyra canon --ndjson`) and the TS one
// (parseStrictBytes + canonicalBytes, dist/src/json.js) over the same inputs must give the same
// bytes, and must reject the same inputs (strict profile, docs/evidence-kernel.md).
//
//   node scripts/jcs-differential.mjs [--count N] [--seed S] [--keep FILE] CLYRA_BIN
//
// Inputs, one per line, all written as raw text (so that number spellings such as `1.0e+300`,
// `-0.0` or `123456789012345678` reach both parsers as written):
//   - N (default 5,000) random documents from a fixed-seed PRNG (default seed 0xC1A7): numbers
//     above all (integers around 2^53 and 10^21, negative zero, huge and tiny exponents,
//     subnormals, long fractions, random digit strings, random doubles in several spellings),
//     strings with escapes, surrogate pairs, controls and non-ASCII text, objects whose keys need
//     UTF-16 ordering, and inputs the strict profile must refuse (duplicate keys, also through
//     escapes, lone surrogates, unsafe integers, overflow, bad syntax, invalid UTF-8, a BOM,
//     nesting past 128);
//   - the RFC 8785 number vectors (test/vectors/jcs/numbers, 10,000 doubles), each as its
//     expected text and as a 17-digit spelling, which must also canonicalize to the expected text;
//   - the six RFC 8785 input files, with their line breaks (whitespace there) turned into spaces.
// Prints the counts and the first mismatches; exits 3 on any mismatch. --keep writes the inputs.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const pkg = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const USAGE = "usage: node scripts/jcs-differential.mjs [--count N] [--seed S] [--keep FILE] CLYRA_BIN";
const argv = process.argv.slice(2);
let count = 5000;
let seed = 0xc1a7;
let keep = null;
while (argv[0]?.startsWith("--")) {
  const opt = argv.shift();
  const v = argv.shift();
  if (v === undefined) {
    console.error(USAGE);
    process.exit(1);
  }
  if (opt === "--count") count = Number(v);
  else if (opt === "--seed") seed = Number(v);
  else if (opt === "--keep") keep = v;
  else {
    console.error(`unknown option ${opt}\n${USAGE}`);
    process.exit(1);
  }
}
const rustBin = argv[0];
if (!rustBin || !Number.isSafeInteger(count) || !Number.isSafeInteger(seed)) {
  console.error(USAGE);
  process.exit(1);
}
const { parseStrictBytes, parseStrictChecked, canonicalBytes, decodeUtf8 } = await import(pathToFileURL(join(pkg, "dist", "src", "json.js")).href);

// ---------------------------------------------------------------------------------------------
// A small seeded PRNG (mulberry32): the same documents on every run and machine.
let state = seed >>> 0;
function rand() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (n) => Math.floor(rand() * n);
const pick = (xs) => xs[int(xs.length)];
const chance = (p) => rand() < p;
const digits = (n, first = true) => {
  let s = first ? String(1 + int(9)) : String(int(10));
  for (let i = 1; i < n; i++) s += String(int(10));
  return s;
};

// A random double from random bits (finite), for spellings of real doubles.
const dv = new DataView(new ArrayBuffer(8));
function randomDouble() {
  for (;;) {
    dv.setUint32(0, int(2 ** 32));
    dv.setUint32(4, int(2 ** 32));
    const x = dv.getFloat64(0);
    if (Number.isFinite(x)) return x;
  }
}

// ---------------------------------------------------------------------------------------------
// Number text
const SPECIAL_NUMBERS = [
  "0", "-0", "-0.0", "0.0", "-0e0", "0e-5", "-0.000e+10", "0E0",
  "9007199254740991", "-9007199254740991", "9007199254740992", "-9007199254740992", "9007199254740993",
  "9007199254740991.0", "9007199254740991.9", "9007199254740990.5", "9.007199254740991e15",
  "9.007199254740992e15", "9007199254740991e0", "90071992547409910e-1", "1.2e17", "1.2e16", "123456789012345678",
  "1e21", "1e+21", "1E21", "-1e21", "999999999999999999999", "1000000000000000000000", "-1000000000000000000000",
  "100000000000000000000", "99999999999999999999", "999999999999999900000", "9.99999999999999e20",
  "9.999999999999999e20", "1e20", "1.0e+300", "1e308", "1.7976931348623157e308", "1.7976931348623158e308",
  "1.7976931348623159e308", "1.8e308", "-1.8e308", "1e400", "1e-400", "-1e-400",
  "5e-324", "4.9e-324", "2.4703282292062327e-324", "2.4703282292062328e-324", "2.2250738585072014e-308",
  "2.2250738585072011e-308", "1e-7", "1e-6", "0.000001", "0.0000001", "123e-20", "1.5", "1.50", "4.0", "4e0",
  "0.1000000000000000055511151231257827", "3.141592653589793238462643383279", "123456789.123456789123456789",
  "0.30000000000000004", "100000000000000000000000", "123456789012345678901234567890", "1e+007", "1E-007",
  "333333333.33333329", "1424953923781206.2", "-1424953923781206.25", "2e-323",
];
const BAD_NUMBERS = ["01", "-01", "1.", ".5", "+1", "1e", "1e+", "-", "0x10", "1.e5", "NaN", "Infinity", "-Infinity", "1_000", "١"];

function numberText() {
  switch (int(12)) {
    case 0:
    case 1:
      return pick(SPECIAL_NUMBERS);
    case 2: {
      // Integers around 2^53 and 10^21, as integer literals and with fraction or exponent.
      const base = pick([2n ** 53n, 10n ** 21n, 10n ** 20n, 2n ** 63n, 2n ** 64n, 10n ** 15n]);
      const v = base + BigInt(int(9) - 4);
      const s = (chance(0.3) ? "-" : "") + v.toString();
      return chance(0.7) ? s : pick([s + ".0", s + ".5", s + "e0", s.slice(0, -1) + "e1"]);
    }
    case 3:
      // Random digit strings as integers: 1 to 25 digits.
      return (chance(0.3) ? "-" : "") + (chance(0.05) ? "0" : digits(1 + int(25)));
    case 4: {
      // Random mantissa, decimal point and exponent.
      const m = digits(1 + int(20));
      const dot = int(m.length);
      const mant = dot === 0 ? m : m.slice(0, dot) + "." + m.slice(dot);
      const ex = chance(0.7) ? pick(["e", "E"]) + pick(["", "+", "-"]) + String(int(340)) : "";
      return (chance(0.3) ? "-" : "") + (chance(0.2) ? "0." + digits(1 + int(20), false) : mant) + ex;
    }
    case 5: {
      // Random doubles, spelled as ECMAScript would, with 17 digits, or exponentially.
      const x = randomDouble();
      return pick([String(x), x.toPrecision(17), x.toExponential(), x.toExponential(int(20))]);
    }
    case 6: {
      // Subnormals and extremes.
      const x = pick([5e-324 * (1 + int(1000)), 2.2250738585072014e-308 * rand(), 1.7976931348623157e308 * rand()]);
      return chance(0.5) ? String(x) : x.toPrecision(1 + int(21));
    }
    case 7:
      // Long fractions.
      return `${chance(0.3) ? "-" : ""}${int(1000)}.${digits(10 + int(40), false)}`;
    case 8:
      // Tiny and huge exponents.
      return `${digits(1 + int(3))}e${pick(["", "-", "+"])}${290 + int(40)}`;
    case 9:
      return pick(BAD_NUMBERS);
    case 10:
      // Small integers with fraction or exponent that make them integral.
      return `${int(100000)}${pick([".0", ".000", "e0", "E+0", "0e-1", ".50e1"])}`;
    default:
      return String(int(1000) - 500);
  }
}

// ---------------------------------------------------------------------------------------------
// Strings
const CHARS = [
  "a", "z", "A", " ", "é", "ß", "ø", "€", "中", "文", "😀", "𝄞", "\u2028", "\u2029", "\u007f", "\u0080", "\uffff",
  "\ufb33", "\ud83d\ude02", "\u0301", "\u00a0", "\ufeff", "~", "/",
];
const ESCAPES = [
  '\\"', "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t", "\\u0000", "\\u001f", "\\u001F", "\\u0020", "\\u007f", "\\u00e9",
  "\\u00E9", "\\u2028", "\\ud83d\\ude00", "\\uD83D\\uDE00", "\\ufeff", "\\u0041", "\\uffff", "\\ud7ff", "\\ue000",
];
const BAD_IN_STRINGS = ["\\ud800", "\\udc00", "\\ude00\\ud83d", "\\ud83dx", "\\x", "\\u12G4", "\\u00", "\t", "\u0001", "\u001f", "\\U0041", "\\'"];

function stringBody(allowBad) {
  let s = "";
  const n = int(12);
  for (let i = 0; i < n; i++) {
    const r = int(10);
    if (r < 5) s += pick(CHARS);
    else if (r < 9) s += pick(ESCAPES);
    else s += allowBad && chance(0.3) ? pick(BAD_IN_STRINGS) : pick(CHARS);
  }
  return s;
}
const stringText = (allowBad) => `"${stringBody(allowBad)}"`;

// Keys whose UTF-16 order differs from code point or byte order, plus near-duplicates.
const KEYS = ["", "a", "b", "A", "aa", "a\\u0000", "é", "e\\u0301", "\\u00e9", "\u0080", "\ufb33", "😂", "\\ud83d\\ude02", "\uffff", "10", "1", "\u007f", "__proto__", "constructor", "z"];

// ---------------------------------------------------------------------------------------------
// Documents
const WS = ["", "", "", " ", "  ", "\t", "\r", " \r\t "];
const ws = () => pick(WS);

function value(depth, allowBad) {
  const r = int(depth > 4 ? 6 : 10);
  if (r < 3) return numberText();
  if (r < 5) return stringText(allowBad);
  if (r === 5) return pick(["true", "false", "null"]);
  if (r < 8) {
    const n = int(5);
    const items = [];
    for (let i = 0; i < n; i++) items.push(ws() + value(depth + 1, allowBad) + ws());
    return `[${items.join(",")}]`;
  }
  const n = int(6);
  const used = new Set();
  const members = [];
  for (let i = 0; i < n; i++) {
    let k = chance(0.6) ? pick(KEYS) : stringBody(false);
    if (used.has(k) && !(allowBad && chance(0.2))) continue;
    used.add(k);
    members.push(`${ws()}"${k}"${ws()}:${ws()}${value(depth + 1, allowBad)}${ws()}`);
  }
  return `{${members.join(",")}}`;
}

function nested(levels) {
  return "[".repeat(levels) + "]".repeat(levels);
}

/** One document as bytes. About a quarter are built to test a rejection. */
function documentBytes() {
  const r = int(100);
  if (r < 30) return Buffer.from(ws() + numberText() + ws());
  if (r < 40) return Buffer.from(`[${numberText()},${numberText()},{"n":${numberText()}}]`);
  if (r < 50) return Buffer.from(stringText(chance(0.3)));
  if (r < 85) return Buffer.from(ws() + value(0, chance(0.2)) + ws());
  switch (int(12)) {
    case 0:
      return Buffer.from(`{"a":1,"\\u0061":2}`); // a duplicate only after unescaping
    case 1:
      return Buffer.from(`{"${pick(KEYS)}":1,"x":{"k":${numberText()},"k":0}}`);
    case 2:
      return Buffer.from(nested(pick([127, 128, 129, 200])));
    case 3:
      return Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(value(0, false))]); // BOM
    case 4: {
      // Invalid UTF-8 in a string: overlong, encoded surrogate, stray continuation, truncated.
      const bad = pick([[0xc0, 0x80], [0xed, 0xa0, 0x80], [0x80], [0xe2, 0x82], [0xff], [0xf4, 0x90, 0x80, 0x80], [0xf0, 0x9f, 0x98]]);
      return Buffer.concat([Buffer.from('["ok","'), Buffer.from(bad), Buffer.from('"]')]);
    }
    case 5:
      return Buffer.from(pick(["[1,]", "{\"a\":1,}", "{} x", "", " ", "[1 2]", "{\"a\" 1}", "{a:1}", "'x'", "[True]", "nul", "[\u00a01]", "[\f1]", "\"\\\"", "[", "}"]));
    case 6:
      return Buffer.from(`{"big":${pick(["9007199254740992", "-9007199254740993", "1.2e17", "12345678901234567890", "1e22", "1e400"])}}`);
    default:
      return Buffer.from(value(0, true));
  }
}

// ---------------------------------------------------------------------------------------------
// The inputs
const inputs = []; // { bytes, label, want? }
for (let i = 0; i < count; i++) inputs.push({ bytes: documentBytes(), label: `random ${i}` });
const randomCount = inputs.length;
const numLines = readFileSync(join(pkg, "test", "vectors", "jcs", "numbers", "es6testfile10k.txt"), "utf8").trim().split("\n");
for (const line of numLines) {
  const [hex, want] = line.split(",");
  dv.setBigUint64(0, BigInt("0x" + hex));
  const x = dv.getFloat64(0);
  if (!Number.isFinite(x)) continue;
  inputs.push({ bytes: Buffer.from(want), label: `rfc8785 number ${hex}`, want });
  inputs.push({ bytes: Buffer.from(x.toPrecision(17)), label: `rfc8785 number ${hex} as ${x.toPrecision(17)}`, want });
}
const numberCount = inputs.length - randomCount;
const jcsDir = join(pkg, "test", "vectors", "jcs");
for (const f of readdirSync(join(jcsDir, "input")).sort()) {
  const text = readFileSync(join(jcsDir, "input", f)).toString("utf8").replace(/[\r\n]/g, " ");
  inputs.push({ bytes: Buffer.from(text), label: `rfc8785 input ${f}`, want: readFileSync(join(jcsDir, "output", f), "utf8") });
}
for (const inp of inputs) if (inp.bytes.includes(0x0a)) throw new Error(`generator bug: LF in ${inp.label}`);

// ---------------------------------------------------------------------------------------------
// Rust: all lines in one process.
const work = mkdtempSync(join(tmpdir(), "jcs-diff-"));
const file = keep ?? join(work, "inputs.ndjson");
writeFileSync(file, Buffer.concat(inputs.flatMap((i) => [i.bytes, Buffer.from("\n")])));
const t0 = process.hrtime.bigint();
const r = spawnSync(rustBin, ["canon", "--ndjson", file], { maxBuffer: 1 << 30 });
const rustMs = Number(process.hrtime.bigint() - t0) / 1e6;
rmSync(work, { recursive: true, force: true });
if (r.status !== 0 && r.status !== 1) {
  console.error(`clyra canon --ndjson failed (exit ${r.status}): ${r.stderr}`);
  process.exit(1);
}
const rustLines = [];
{
  const out = r.stdout;
  let start = 0;
  for (let i = out.indexOf(0x0a); i >= 0; i = out.indexOf(0x0a, start)) {
    rustLines.push(out.subarray(start, i));
    start = i + 1;
  }
}
if (rustLines.length !== inputs.length) {
  console.error(`clyra canon --ndjson wrote ${rustLines.length} lines for ${inputs.length} inputs`);
  process.exit(1);
}

// TS: the same, in this process.
const t1 = process.hrtime.bigint();
const tsOut = inputs.map((inp) => {
  try {
    return { ok: Buffer.from(canonicalBytes(parseStrictBytes(inp.bytes))) };
  } catch (e) {
    return { error: e.message };
  }
});
const tsMs = Number(process.hrtime.bigint() - t1) / 1e6;

// The TS parser's own canonical flag (which lets the journal check skip canonicalization) must
// be true exactly for canonical text: checked on every accepted input and every Rust output.
let flagErrors = 0;
const flagShown = [];
const checkFlag = (text, expected, label) => {
  if (parseStrictChecked(text).canonical !== expected) {
    flagErrors++;
    if (flagShown.length < 5) flagShown.push(`CANONICAL FLAG WRONG (want ${expected}): ${label}: ${JSON.stringify(text).slice(0, 200)}`);
  }
};

// ---------------------------------------------------------------------------------------------
// Compare.
const ERROR_PREFIX = Buffer.from('{"error": ');
const tally = { same: 0, bothRejected: 0, differentBytes: 0, rustOnlyRejected: 0, tsOnlyRejected: 0, wantMismatch: 0 };
const rustCodes = new Map();
const shown = [];
const show = (kind, inp, rust, ts) => {
  if (shown.length < 15) shown.push(`${kind}: ${inp.label}\n  input: ${JSON.stringify(inp.bytes.toString("utf8")).slice(0, 300)}\n  rust:  ${rust.toString("utf8").slice(0, 300)}\n  ts:    ${(ts.ok ? ts.ok.toString("utf8") : `rejected: ${ts.error}`).slice(0, 300)}`);
};
inputs.forEach((inp, i) => {
  const rust = rustLines[i];
  const rustRejected = rust.subarray(0, ERROR_PREFIX.length).equals(ERROR_PREFIX);
  const ts = tsOut[i];
  if (rustRejected) {
    const code = JSON.parse(rust.toString("utf8")).error;
    rustCodes.set(code, (rustCodes.get(code) ?? 0) + 1);
  }
  if (rustRejected && ts.error !== undefined) tally.bothRejected++;
  else if (rustRejected) {
    tally.rustOnlyRejected++;
    show("REJECTED BY RUST ONLY", inp, rust, ts);
  } else if (ts.error !== undefined) {
    tally.tsOnlyRejected++;
    show("REJECTED BY TS ONLY", inp, rust, ts);
  } else if (!rust.equals(ts.ok)) {
    tally.differentBytes++;
    show("DIFFERENT BYTES", inp, rust, ts);
  } else {
    tally.same++;
    const text = decodeUtf8(inp.bytes);
    checkFlag(text, ts.ok.equals(inp.bytes), inp.label);
    checkFlag(rust.toString("utf8"), true, `rust output for ${inp.label}`);
    if (inp.want !== undefined && rust.toString("utf8") !== inp.want) {
      tally.wantMismatch++;
      show(`BOTH DIFFER FROM THE VECTOR (${inp.want})`, inp, rust, ts);
    }
  }
});
const mismatches = tally.differentBytes + tally.rustOnlyRejected + tally.tsOnlyRejected + tally.wantMismatch + flagErrors;
for (const s of [...shown, ...flagShown]) console.log(s);
if (shown.length) console.log("");
console.log(
  `inputs: ${inputs.length} (${randomCount} random documents, seed ${"0x" + seed.toString(16)}; ${numberCount} RFC 8785 number spellings; ${inputs.length - randomCount - numberCount} RFC 8785 input files)`,
);
console.log(`rust rejections by code: ${[...rustCodes].sort().map(([c, n]) => `${c} ${n}`).join(", ")}`);
console.log(`ts canonical flag checked on ${2 * tally.same} texts: ${flagErrors} wrong`);
console.log("| inputs | matches | identical bytes | both rejected | mismatches | different bytes | rejected by rust only | rejected by ts only | differ from RFC 8785 vector | rust ms (1 process) | ts ms |");
console.log("|---|---|---|---|---|---|---|---|---|---|---|");
console.log(
  `| ${inputs.length} | ${tally.same + tally.bothRejected - tally.wantMismatch} | ${tally.same - tally.wantMismatch} | ${tally.bothRejected} | ${mismatches} | ${tally.differentBytes} | ${tally.rustOnlyRejected} | ${tally.tsOnlyRejected} | ${tally.wantMismatch} | ${rustMs.toFixed(0)} | ${tsMs.toFixed(0)} |`,
);
process.exit(mismatches ? 3 : 0);
