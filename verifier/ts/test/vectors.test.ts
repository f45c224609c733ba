// Every golden vector under spec/{def,pef}/test-vectors must give exactly expected.json's verdict
// and code set, except the cases spec/test-vectors-superseded.txt lists.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync, existsSync } from "node:fs";
import { join } from "node:path";
import { verifyBundle } from "../src/verify.js";
import { parseTime } from "../src/time.js";
import { loadBundle, loadTrustFile, artifactDir } from "../src/node.js";
import { SPEC } from "./helpers.js";

const superseded = new Set(
  readFileSync(join(SPEC, "test-vectors-superseded.txt"), "utf8")
    .split("\n")
    .filter((l) => l.trim() && !l.startsWith("#"))
    .map((l) => l.split("\t")[0]!),
);

let ran = 0;
for (const fmt of ["def", "pef"]) {
  const dir = join(SPEC, fmt, "test-vectors");
  for (const name of readdirSync(dir).sort()) {
    const id = `${fmt}/${name}`;
    const caseDir = join(dir, name);
    test(id, { skip: superseded.has(id) ? "superseded" : false }, async () => {
      const exp = JSON.parse(readFileSync(join(caseDir, "expected.json"), "utf8"));
      const bundle = existsSync(join(caseDir, "bundle")) ? join(caseDir, "bundle") : join(caseDir, "bundle.zip");
      const report = await verifyBundle(loadBundle(bundle), {
        trust: await loadTrustFile(join(caseDir, "trust.json")),
        at: parseTime(exp.verify_at)!,
        atText: exp.verify_at,
        threshold: exp.threshold,
        ...(exp.artifacts ? { artifacts: artifactDir(join(caseDir, exp.artifacts)) } : {}),
      });
      const codes = [...new Set(report.findings.map((f) => f.code))].sort();
      assert.deepEqual({ verdict: report.verdict, codes }, { verdict: exp.verdict, codes: exp.codes }, JSON.stringify(report.findings, null, 1));
      ran++;
    });
  }
}

test("superseded list names existing cases", () => {
  for (const id of superseded) {
    const [fmt, name] = id.split("/") as [string, string];
    assert.ok(existsSync(join(SPEC, fmt, "test-vectors", name)), id);
  }
});
void ran;
