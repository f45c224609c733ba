// End-to-end test of the offline page (dist/web/clyra-verify.html) in headless Chromium, driven by
// playwright-core. Serves the page from a one-file HTTP server on 127.0.0.1, then verifies golden
// vectors through the page's inputs and checks what it shows against the vectors' own files and
// expected.json. Also checks that the page makes no request but its own load (browser events and
// the server's log), works offline, logs no console error and throws no page error, and that its
// CSP really forbids eval and network access.
//
// Needs /usr/bin/chromium (scripts/chromium.sh installs it) and a built page (npm run build:web;
// `npm run test:web` does both the build and this test).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { readZip, parseStrictBytes } from "../dist/src/index.js";

const PKG = join(dirname(fileURLToPath(import.meta.url)), "..");
const SPEC = join(PKG, "..", "..", "spec");
const PAGE = join(PKG, "dist", "web", "clyra-verify.html");
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

let server;
let pageUrl;
/** Every path the server was asked for. */
const served = [];
let browser;
let context;
let page;
let userDataDir;
/** Every request the page made (URL), console errors and page errors, over the whole test. */
const requests = [];
const consoleErrors = [];
const pageErrors = [];

before(async () => {
  assert.ok(existsSync(PAGE), `${PAGE} is missing: run npm run build:web`);
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/chromium.sh (installs the Debian chromium package)`);
  const html = readFileSync(PAGE);
  server = createServer((req, res) => {
    served.push(req.url);
    if (req.url === "/clyra-verify.html") {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
      res.end(html);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
  pageUrl = `http://127.0.0.1:${server.address().port}/clyra-verify.html`;

  // A persistent context on a fresh, throw-away profile directory.
  userDataDir = mkdtempSync(join(tmpdir(), "clyra-web-test-"));
  context = await chromium.launchPersistentContext(userDataDir, { executablePath: CHROMIUM, headless: true, args: ARGS });
  browser = context.browser();
  context.on("request", (r) => requests.push(r.url()));
  page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (m) => {
    if (m.type() === "error") consoleErrors.push(m.text());
  });
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  const resp = await page.goto(pageUrl, { waitUntil: "load" });
  assert.equal(resp?.status(), 200);
  // From here on the browser is offline: the page must not need the network.
  await context.setOffline(true);
});

after(async () => {
  await context?.close();
  await browser?.close();
  await new Promise((ok) => server?.close(ok) ?? ok());
  if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
});

/** A vector: its files, expected.json, and what its bundle states (read with the core). */
function vector(rel) {
  const dir = join(SPEC, rel);
  const expected = JSON.parse(readFileSync(join(dir, "expected.json"), "utf8"));
  const zip = readZip(new Uint8Array(readFileSync(join(dir, "bundle.zip"))));
  const read = (name) => ("files" in zip ? zip.files.read(name) : undefined);
  const json = (name) => {
    const b = read(name);
    return b ? JSON.parse(new TextDecoder().decode(b)) : undefined;
  };
  return {
    dir,
    bundle: join(dir, "bundle.zip"),
    trustPath: join(dir, "trust.json"),
    trust: JSON.parse(readFileSync(join(dir, "trust.json"), "utf8")),
    expected,
    manifest: json("manifest.json"),
    envelope: json("attestation.dsse.json"),
    note: read("checkpoint.note") && new TextDecoder().decode(read("checkpoint.note")),
  };
}

/** Fill the inputs from the vector's expected.json, click Verify and wait for the result. */
async function verifyThroughPage(v, { drop = false } = {}) {
  const runBefore = Number((await page.getAttribute("#result", "data-run")) ?? 0);
  if (drop) await dropFiles([v.bundle, v.trustPath]);
  else {
    await page.setInputFiles("#bundle", v.bundle);
    await page.setInputFiles("#trust", v.trustPath);
  }
  await page.fill("#at", v.expected.verify_at);
  await page.fill("#threshold", String(v.expected.threshold ?? 1));
  await page.click("#verify");
  await page.waitForFunction((n) => Number(document.getElementById("result")?.dataset.run ?? 0) > n, runBefore);
  return {
    verdict: await page.textContent("#verdict .word"),
    state: await page.getAttribute("#verdict", "data-verdict"),
    findingCodes: await page.$$eval("#findings tbody tr td:first-child", (tds) => tds.map((td) => td.textContent)),
  };
}

/** Drop files on the drop zone, as a drag from the desktop would (a DataTransfer of Files). */
async function dropFiles(paths) {
  const files = paths.map((p) => ({ name: p.split("/").pop(), b64: readFileSync(p).toString("base64") }));
  const dt = await page.evaluateHandle((files) => {
    const dt = new DataTransfer();
    for (const f of files) dt.items.add(new File([Uint8Array.from(atob(f.b64), (c) => c.charCodeAt(0))], f.name));
    return dt;
  }, files);
  await page.dispatchEvent("#drop", "drop", { dataTransfer: dt });
  await page.waitForFunction((names) => names.every((n) => document.getElementById("chosen")?.textContent?.includes(n)), files.map((f) => f.name));
}

const dd = (key) => page.textContent(`[data-key="${key}"] dd`);
const cells = (table, col) => page.$$eval(`#${table} tbody tr td:nth-child(${col})`, (tds) => tds.map((td) => td.textContent));

test("a valid DEF bundle: verdict, manifest summary, entries, signer", async () => {
  const v = vector("def/test-vectors/dbt_run_postgres");
  assert.equal(v.expected.verdict, "valid");
  const r = await verifyThroughPage(v);
  assert.equal(r.verdict, "valid");
  assert.equal(r.state, "valid");
  assert.deepEqual(r.findingCodes, []);
  assert.equal(await page.isVisible("#findings-none"), true);

  const m = v.manifest;
  assert.equal(await dd("format"), `${m.format} ${m.format_version}`);
  assert.ok((await dd("kind")).startsWith(m.format.replace("clyra-", "") + " "));
  assert.equal(await dd("bundle_id"), m.bundle_id);
  assert.equal(await dd("created_at"), m.created_at);
  const subject = await dd("subject");
  for (const part of [m.governance.tenant, m.governance.environment, m.governance.run_id]) assert.ok(subject.includes(part), subject);

  assert.deepEqual(await cells("entries", 1), m.files.map((f) => f.path));
  assert.deepEqual(await cells("entries", 2), m.files.map((f) => String(f.size)));
  assert.deepEqual(await cells("entries", 3), m.files.map((f) => f.sha256));

  // Signers: one row per signature; each verifies under the trust file's key, with its algorithm.
  const sigs = v.envelope.signatures;
  assert.deepEqual(await cells("signers", 2), sigs.map((s) => s.keyid));
  const key = v.trust.keys[0];
  assert.equal(await page.textContent("#signers tbody tr:first-child td:nth-child(3) code"), key.keyid);
  assert.equal((await cells("signers", 4))[0], key.algorithm);
  assert.equal((await cells("signers", 5))[0], "yes");

  assert.equal(await dd("journal_count"), String(m.journal.count));
  assert.equal(await dd("journal_seq"), `${m.journal.first_seq} to ${m.journal.last_seq}`);
});

test("a valid bundle with a run chain and a checkpoint, dropped on the page", async () => {
  const v = vector("def/test-vectors/run_chain_checkpoint");
  assert.equal(v.expected.verdict, "valid");
  const r = await verifyThroughPage(v, { drop: true });
  assert.equal(r.verdict, "valid");
  assert.equal(await dd("bundle_id"), v.manifest.bundle_id);
  assert.ok(v.manifest.checkpoint && v.note);
  const [origin, size] = v.note.split("\n");
  assert.equal(await dd("checkpoint_origin"), origin);
  assert.equal(await dd("checkpoint_size"), size);
  assert.equal(await dd("journal_chain"), `run chain of run ${v.manifest.journal.run}`);
});

test("two signers and threshold 2: both trusted keys shown", async () => {
  const v = vector("pef/test-vectors/two_signers_threshold_2");
  assert.equal(v.expected.threshold, 2);
  const r = await verifyThroughPage(v);
  assert.equal(r.verdict, "valid");
  assert.ok((await dd("kind")).startsWith("pef "));
  const shown = await page.$$eval("#signers tbody td:nth-child(3) code", (cs) => cs.map((c) => c.textContent));
  assert.deepEqual(new Set(shown), new Set(v.trust.keys.map((k) => k.keyid)));
});

for (const rel of ["def/test-vectors/journal_entry_edited_fail", "def/test-vectors/bad_signature_fail"]) {
  test(`a forged bundle (${rel.split("/").pop()}): invalid, with the expected finding codes`, async () => {
    const v = vector(rel);
    assert.equal(v.expected.verdict, "invalid");
    assert.equal(v.expected.category, "forged");
    const r = await verifyThroughPage(v);
    assert.equal(r.verdict, "invalid");
    assert.equal(r.state, "invalid");
    assert.deepEqual([...new Set(r.findingCodes)].sort(), v.expected.codes);
  });
}

test("a trust file that fails its checks is an error, not a verdict", async () => {
  const v = vector("def/test-vectors/dbt_run_postgres");
  const runBefore = Number(await page.getAttribute("#result", "data-run"));
  await page.setInputFiles("#bundle", v.bundle);
  await page.setInputFiles("#trust", { name: "trust.json", mimeType: "application/json", buffer: Buffer.from('{"version":1,"keys":[{"keyid":"00"}]}') });
  await page.click("#verify");
  await page.waitForFunction((n) => Number(document.getElementById("result")?.dataset.run ?? 0) > n, runBefore);
  assert.equal(await page.textContent("#verdict .word"), "error");
  assert.match(await page.textContent("#verdict .detail"), /trust file trust\.json: .*schema/);
});

test("the page made no request but its own load, and logged no error", () => {
  assert.deepEqual(requests, [pageUrl]);
  assert.deepEqual(served, ["/clyra-verify.html"]);
  assert.deepEqual(consoleErrors, []);
  assert.deepEqual(pageErrors, []);
});

test("the page's CSP forbids eval and network access", async () => {
  const html = readFileSync(PAGE, "utf8");
  const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html)?.[1];
  assert.equal(csp, "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:; connect-src 'none'");
  // Enforced, not just written: in a second page (these attempts log CSP errors by design).
  await context.setOffline(false);
  const p = await context.newPage();
  try {
    await p.goto(pageUrl, { waitUntil: "load" });
    // The attempts run as the page's own inline script, on a later task: code evaluated through
    // the DevTools protocol (page.evaluate, and a script element run synchronously inside it) is
    // exempt from the page's CSP for eval.
    await p.evaluate((url) => {
      const s = document.createElement("script");
      s.textContent = `setTimeout(() => {
        try { new Function("return 1")(); document.body.dataset.eval = "allowed"; }
        catch { document.body.dataset.eval = "blocked"; }
        fetch(${JSON.stringify(url + "?leak")}).then(
          () => { document.body.dataset.fetch = "allowed"; },
          () => { document.body.dataset.fetch = "blocked"; });
      }, 0);`;
      document.body.append(s);
    }, pageUrl);
    await p.waitForFunction(() => document.body.dataset.eval && document.body.dataset.fetch);
    const attempts = await p.evaluate(() => ({ eval: document.body.dataset.eval, fetch: document.body.dataset.fetch }));
    assert.deepEqual(attempts, { eval: "blocked", fetch: "blocked" });
    assert.ok(!served.some((u) => u.includes("leak")), JSON.stringify(served));
  } finally {
    await p.close();
  }
});
