// inspectBundle reads what a bundle states, for display; checked against the vectors' own files.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { inspectBundle } from "../src/inspect.js";
import { parseTime } from "../src/time.js";
import { loadBundle, loadTrustFile } from "../src/node.js";
import { SPEC } from "./helpers.js";

async function inspectCase(rel: string) {
  const dir = join(SPEC, rel);
  const exp = JSON.parse(readFileSync(join(dir, "expected.json"), "utf8"));
  const bundle = existsSync(join(dir, "bundle")) ? join(dir, "bundle") : join(dir, "bundle.zip");
  const container = loadBundle(bundle);
  const trust = await loadTrustFile(join(dir, "trust.json"));
  const manifest = "files" in container ? JSON.parse(new TextDecoder().decode(container.files.read("manifest.json"))) : null;
  return { contents: await inspectBundle(container, trust, parseTime(exp.verify_at)!), trust, manifest };
}

test("a valid DEF bundle: manifest, entries, signer", async () => {
  const { contents: c, trust, manifest } = await inspectCase("def/test-vectors/dbt_run_postgres");
  assert.equal(c.kind, "def");
  assert.equal(c.format, manifest.format);
  assert.equal(c.format_version, manifest.format_version);
  assert.equal(c.bundle_id, manifest.bundle_id);
  assert.equal(c.created_at, manifest.created_at);
  assert.deepEqual(c.governance, manifest.governance);
  assert.deepEqual(c.files, manifest.files);
  assert.equal(c.journal?.count, manifest.journal.count);
  assert.deepEqual(c.statement?.subjects.map((s) => s.name), ["manifest.json", "merkle-root"]);
  assert.equal(c.statement?.predicateType, "https://clyra.dev/def/v0");
  assert.equal(c.signatures.length, 1);
  assert.deepEqual(c.signatures[0]!.verifiedBy, [{ keyid: trust[0]!.keyid, algorithm: trust[0]!.algorithm, validAt: true }]);
  assert.deepEqual(c.unreadable, []);
  assert.ok(c.container.some((e) => e.path === "manifest.json"));
});

test("two signers, each under its own trusted key", async () => {
  const { contents: c } = await inspectCase("pef/test-vectors/two_signers_threshold_2");
  assert.equal(c.kind, "pef");
  assert.equal(c.signatures.length, 2);
  const ids = c.signatures.map((s) => s.verifiedBy.map((v) => v.keyid));
  assert.ok(ids.every((l) => l.length === 1));
  assert.notEqual(ids[0]![0], ids[1]![0]);
});

test("a checkpoint is summarised", async () => {
  const { contents: c } = await inspectCase("def/test-vectors/run_chain_checkpoint");
  assert.ok(c.checkpoint);
  assert.match(c.checkpoint.root, /^[0-9a-f]{64}$/);
  assert.ok(c.checkpoint.signers.length >= 1);
  assert.equal(c.journal?.chain, "run");
});

test("an untrusted signer verifies under no trusted key", async () => {
  const { contents: c } = await inspectCase("def/test-vectors/untrusted_key_fail");
  assert.ok(c.signatures.length >= 1);
  assert.ok(c.signatures.every((s) => s.verifiedBy.length === 0));
});

test("a broken container gives nothing to show, without throwing", async () => {
  const { contents: c } = await inspectCase("def/test-vectors/zip_trailing_data_fail");
  assert.deepEqual(c.unreadable, ["container"]);
  const { contents: d } = await inspectCase("def/test-vectors/manifest_duplicate_key_fail");
  assert.ok(d.unreadable.includes("manifest.json"));
});
