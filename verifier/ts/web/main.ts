// The offline verification page: reads a bundle (.zip) and a trust file chosen or dropped by the
// auditor, runs the core verifier (src/, the same code as the CLI) and shows the verdict, the
// findings and what the bundle states. No network: files are read with File.arrayBuffer(), and
// the page's CSP forbids any fetch. Bundle data is only ever put in the page as text
// (textContent), never as HTML.
import {
  readZip,
  loadTrust,
  parseStrictBytes,
  parseTime,
  verifyBundle,
  inspectBundle,
  digestHex,
  type Report,
  type Finding,
  type BundleContents,
} from "../src/index.js";

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page is missing #${id}`);
  return el as T;
};

const form = $<HTMLFormElement>("inputs");
const bundleInput = $<HTMLInputElement>("bundle");
const trustInput = $<HTMLInputElement>("trust");
const atInput = $<HTMLInputElement>("at");
const thresholdInput = $<HTMLInputElement>("threshold");
const button = $<HTMLButtonElement>("verify");
const drop = $("drop");
const chosen = $("chosen");
const inputError = $("input-error");
const result = $("result");
const verdict = $("verdict");

let bundleFile: File | null = null;
let trustFile: File | null = null;
/** Completed verifications; #result's data-run, so a test can wait for the next one. */
let runs = 0;

// ---------------------------------------------------------------------------------------------
// Choosing files: the two inputs, or one drop of both files.

function showChosen(): void {
  const parts: string[] = [];
  if (bundleFile) parts.push(`Bundle: ${bundleFile.name} (${bundleFile.size} bytes)`);
  if (trustFile) parts.push(`Trust file: ${trustFile.name}`);
  chosen.textContent = parts.join(" · ");
}

bundleInput.addEventListener("change", () => {
  bundleFile = bundleInput.files?.[0] ?? null;
  showChosen();
});
trustInput.addEventListener("change", () => {
  trustFile = trustInput.files?.[0] ?? null;
  showChosen();
});

/** Which input a dropped file is for: by name, else by its first byte ("PK" zip, "{" JSON). */
async function kindOf(f: File): Promise<"bundle" | "trust" | null> {
  const name = f.name.toLowerCase();
  if (name.endsWith(".zip")) return "bundle";
  if (name.endsWith(".json")) return "trust";
  const head = new Uint8Array(await f.slice(0, 2).arrayBuffer());
  if (head[0] === 0x50 && head[1] === 0x4b) return "bundle";
  if (head[0] === 0x7b) return "trust";
  return null;
}

// A file dropped anywhere else must not make the browser navigate to it.
for (const type of ["dragover", "drop"]) document.addEventListener(type, (e) => e.preventDefault());
drop.addEventListener("dragover", (e) => {
  e.preventDefault();
  drop.classList.add("over");
});
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", async (e) => {
  e.preventDefault();
  e.stopPropagation();
  drop.classList.remove("over");
  inputError.textContent = "";
  const dt = e.dataTransfer;
  if (!dt) return;
  // Read the drop's items and files now: the DataTransfer empties once the event has been handled.
  const files = [...dt.files];
  // A dropped directory arrives as a File that cannot be read: name it instead.
  const dirs = new Set<string>();
  for (const it of [...dt.items]) {
    const entry = it.webkitGetAsEntry?.();
    if (entry?.isDirectory) dirs.add(entry.name);
  }
  const problems: string[] = [];
  for (const f of files) {
    if (dirs.has(f.name)) {
      problems.push(`${f.name} is a directory: this page takes ZIP bundles only; verify a directory with the command line`);
      continue;
    }
    let k: "bundle" | "trust" | null = null;
    try {
      k = await kindOf(f);
    } catch {
      problems.push(`${f.name} cannot be read`);
      continue;
    }
    if (k === "bundle") bundleFile = f;
    else if (k === "trust") trustFile = f;
    else problems.push(`${f.name} is not a .zip bundle or a .json trust file`);
  }
  if (files.length === 0) problems.push("nothing to read in the drop");
  inputError.textContent = problems.join("; ");
  showChosen();
});

// ---------------------------------------------------------------------------------------------
// Rendering helpers: elements built with textContent only.

function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, cls?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (cls) e.className = cls;
  return e;
}

function row(tbody: HTMLTableSectionElement, cells: (string | HTMLElement)[], cls?: string): HTMLTableRowElement {
  const tr = el("tr", undefined, cls);
  for (const c of cells) {
    const td = el("td");
    if (typeof c === "string") td.textContent = c;
    else td.append(c);
    tr.append(td);
  }
  tbody.append(tr);
  return tr;
}

function clearBody(id: string): HTMLTableSectionElement {
  const tbody = $(id).querySelector("tbody")!;
  tbody.replaceChildren();
  return tbody;
}

/** One dt/dd pair, wrapped in a div with data-key (for styling and tests). */
function item(dl: HTMLElement, key: string, label: string, value: string | HTMLElement | undefined): void {
  if (value === undefined || value === "") return;
  const d = el("div");
  d.dataset.key = key;
  const dd = el("dd");
  if (typeof value === "string") dd.textContent = value;
  else dd.append(value);
  d.append(el("dt", label), dd);
  dl.append(d);
}

const code = (s: string) => el("code", s);

// ---------------------------------------------------------------------------------------------
// Verification

class InputError extends Error {}

function readInputs(): { atText: string; at: bigint; threshold: number } {
  if (!bundleFile) throw new InputError("Choose a bundle (.zip).");
  if (!trustFile) throw new InputError("Choose a trust file (trust.json).");
  const atText = atInput.value.trim() || new Date().toISOString();
  const at = parseTime(atText);
  if (at === null) throw new InputError(`Verification time ${atText} is not an RFC 3339 time, e.g. 2026-11-24T12:00:00Z.`);
  const t = thresholdInput.value.trim() || "1";
  if (!/^[0-9]+$/.test(t) || Number(t) < 1) throw new InputError(`Threshold ${t} is not a whole number of at least 1.`);
  return { atText, at, threshold: Number(t) };
}

async function bytesOf(f: File): Promise<Uint8Array> {
  return new Uint8Array(await f.arrayBuffer());
}

form.addEventListener("submit", async (e) => {
  e.preventDefault();
  inputError.textContent = "";
  let inputs;
  try {
    inputs = readInputs();
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    inputError.textContent = err.message;
    return;
  }
  button.disabled = true;
  result.hidden = false;
  result.setAttribute("aria-busy", "true");
  verdict.dataset.verdict = "running";
  verdict.className = "verdict running";
  verdict.replaceChildren(el("p", "Verifying…", "word"));
  try {
    await run(bundleFile!, trustFile!, inputs);
  } catch (err) {
    showError(`unexpected error: ${(err as Error).message}`);
    console.warn(err);
  } finally {
    button.disabled = false;
    result.removeAttribute("aria-busy");
    result.dataset.run = String(++runs);
  }
});

function showError(message: string): void {
  result.hidden = false;
  verdict.dataset.verdict = "error";
  verdict.className = "verdict error";
  verdict.replaceChildren(el("p", "error", "word"), el("p", `Could not verify: ${message}`, "detail"));
  for (const id of ["findings", "entries", "externals", "signers"]) clearBody(id);
  for (const id of ["manifest", "journal", "checkpoint"]) $(id).replaceChildren();
  $("findings-none").hidden = true;
  $("externals-block").hidden = true;
}

async function run(bundle: File, trustF: File, inputs: { atText: string; at: bigint; threshold: number }): Promise<void> {
  // The trust file is outside the bundle: a problem with it is an error, not a verdict (CLI exit 1).
  let trust;
  try {
    trust = await loadTrust(parseStrictBytes(await bytesOf(trustF)));
  } catch (err) {
    showError(`trust file ${trustF.name}: ${(err as Error).message}`);
    return;
  }
  const bytes = await bytesOf(bundle);
  const container = readZip(bytes);
  const report = await verifyBundle(container, { trust, at: inputs.at, atText: inputs.atText, threshold: inputs.threshold, bundleName: bundle.name });
  const contents = await inspectBundle(container, trust, inputs.at);
  render(report, contents, { name: bundle.name, size: bytes.length, sha256: digestHex(bytes), threshold: inputs.threshold });
}

function render(report: Report, c: BundleContents, file: { name: string; size: number; sha256: string; threshold: number }): void {
  const errors = report.findings.filter((f) => f.code.startsWith("E_")).length;
  const warnings = report.findings.length - errors;
  verdict.dataset.verdict = report.verdict;
  verdict.className = `verdict ${report.verdict}`;
  const detail =
    report.verdict === "valid"
      ? `The bundle verifies: digests, Merkle roots, chain links, schemas and ${file.threshold === 1 ? "the signature" : `${file.threshold} signatures`} all check out${warnings ? `, with ${warnings} warning${warnings > 1 ? "s" : ""}` : ""}.`
      : `The bundle does not verify: ${errors} error${errors > 1 ? "s" : ""}${warnings ? ` and ${warnings} warning${warnings > 1 ? "s" : ""}` : ""} below.`;
  const about = el("p", undefined, "about");
  about.append(`${file.name}, ${file.size} bytes, SHA-256 `, code(file.sha256), `; checked at ${report.checked_at}, threshold ${file.threshold}.`);
  verdict.replaceChildren(el("p", report.verdict, "word"), el("p", detail, "detail"), about);

  // Findings.
  const fb = clearBody("findings");
  for (const f of report.findings) row(fb, [code(f.code), f.message, f.path ?? "(bundle)"], f.code.startsWith("W_") ? "warning" : "error");
  $("findings-none").hidden = report.findings.length > 0;
  $("findings").hidden = report.findings.length === 0;

  renderManifest(c, report);
  renderEntries(c, report.findings);
  renderSigners(c, report);
  renderJournal(c);
}

function renderManifest(c: BundleContents, report: Report): void {
  const dl = $("manifest");
  dl.replaceChildren();
  if (c.format === undefined && c.bundle_id === undefined) {
    dl.append(el("p", "The manifest could not be read (see the findings).", "none"));
    return;
  }
  const kindName = c.kind === "def" ? "DEF, the Data Evidence Format (a data pipeline run)" : c.kind === "pef" ? "PEF, the Portable Evidence Format (automation acting on production)" : undefined;
  item(dl, "format", "Format", c.format && `${c.format} ${c.format_version ?? ""}`.trim());
  item(dl, "kind", "Kind", c.kind && `${c.kind} — ${kindName}`);
  item(dl, "bundle_id", "Bundle id", c.bundle_id);
  item(dl, "created_at", "Created", c.created_at);
  const g = c.governance;
  if (g) {
    const subject = [g.tenant && `tenant ${g.tenant}`, g.environment && `environment ${g.environment}`, g.run_id && `run ${g.run_id}`].filter(Boolean).join(" · ");
    item(dl, "subject", "Subject", subject);
    if (g.actors?.length) item(dl, "actors", "Actors", g.actors.join(", "));
  }
  const r = c.statement?.run;
  if (r) item(dl, "run", "Run", [r.run_id, r.status, r.started_at && r.finished_at && `${r.started_at} → ${r.finished_at}`].filter(Boolean).join(" · "));
  if (c.producer) item(dl, "producer", "Producer", `${c.producer.name ?? "?"} ${c.producer.version ?? ""}`.trim());
  if (c.policy_sha256 !== undefined) item(dl, "policy", "Policy SHA-256", c.policy_sha256 === null ? "none in force" : code(c.policy_sha256));
  item(dl, "predicate_type", "Predicate type", c.statement?.predicateType);
  const counts = ["anchors", "tool_calls", "approvals"]
    .filter((k) => typeof report.summary[k] === "number")
    .map((k) => `${report.summary[k]} ${k.replace("_", " ")}`)
    .join(", ");
  item(dl, "predicate", "Predicate", counts);
  if (c.statement?.subjects.length) {
    const ul = el("ul", undefined, "plain");
    for (const s of c.statement.subjects) {
      const li = el("li", `${s.name}: `);
      li.append(code(s.sha256 ?? "(no sha256)"));
      ul.append(li);
    }
    item(dl, "statement_subjects", "Signed subjects", ul);
  }
  if (c.merkle) {
    const d = el("span", `${c.merkle.tree_size ?? "?"} leaves, root `);
    d.append(code(c.merkle.root ?? "?"));
    item(dl, "merkle", "Merkle tree", d);
  }
}

function renderEntries(c: BundleContents, findings: Finding[]): void {
  const codesAt = (path: string) => [...new Set(findings.filter((f) => f.path === path).map((f) => f.code))].join(", ");
  const tb = clearBody("entries");
  const listed = new Set(c.files.map((f) => f.path));
  for (const f of c.files) row(tb, [code(f.path), f.size === undefined ? "?" : String(f.size), code(f.sha256 ?? "?"), codesAt(f.path)]);
  for (const e of c.container) {
    if (listed.has(e.path) || e.path === "manifest.json" || e.path === "attestation.dsse.json") continue;
    row(tb, [code(e.path), String(e.size), "(not listed in the manifest)", codesAt(e.path)], "unlisted");
  }
  if (tb.children.length === 0) row(tb, ["(no entries could be read)", "", "", ""]);
  const xb = clearBody("externals");
  for (const x of c.external_artifacts) row(xb, [code(x.path), x.size === undefined ? "?" : String(x.size), code(x.sha256 ?? "?"), x.uri ?? ""]);
  $("externals-block").hidden = c.external_artifacts.length === 0;
}

function renderSigners(c: BundleContents, report: Report): void {
  const tb = clearBody("signers");
  const counted = new Set((report.summary.signers as string[] | undefined) ?? []);
  for (const s of c.signatures) {
    const by = s.verifiedBy.length ? el("span") : el("span", "none: no trusted key verifies it");
    s.verifiedBy.forEach((v, i) => {
      if (i) by.append(", ");
      by.append(code(v.keyid));
      if (counted.has(v.keyid)) by.append(" (counted)");
    });
    row(tb, [
      `#${s.index + 1}`,
      s.keyid ? code(s.keyid) : "(none)",
      by,
      [...new Set(s.verifiedBy.map((v) => v.algorithm))].join(", ") || "—",
      s.verifiedBy.length ? s.verifiedBy.map((v) => (v.validAt ? "yes" : "no")).join(", ") : "—",
    ]);
  }
  if (c.signatures.length === 0) row(tb, ["(no signatures could be read)", "", "", "", ""]);
}

function renderJournal(c: BundleContents): void {
  const dl = $("journal");
  dl.replaceChildren();
  const j = c.journal;
  if (j) {
    item(dl, "journal_path", "Journal", j.path);
    item(dl, "journal_count", "Entries", j.count === undefined ? undefined : String(j.count));
    item(dl, "journal_seq", "Sequence numbers", j.first_seq === undefined ? undefined : `${j.first_seq} to ${j.last_seq ?? "?"}`);
    item(dl, "journal_chain", "Chain", j.chain === "run" ? `run chain of run ${j.run ?? "?"}` : "the journal's chain");
    if (j.head) item(dl, "journal_head", "Head", code(j.head));
    if (j.entries_root) item(dl, "journal_root", "Entries root", code(j.entries_root));
  } else dl.append(el("p", "No journal summary could be read.", "none"));
  const cl = $("checkpoint");
  cl.replaceChildren();
  const cp = c.checkpoint;
  if (cp) {
    item(cl, "checkpoint_origin", "Checkpoint origin", cp.origin);
    item(cl, "checkpoint_size", "Checkpoint tree size", cp.size);
    item(cl, "checkpoint_time", "Checkpoint time", cp.time);
    item(cl, "checkpoint_root", "Checkpoint root", code(cp.root));
    item(cl, "checkpoint_head", "Checkpoint head", code(cp.head));
    item(cl, "checkpoint_signers", "Checkpoint signed by", cp.signers.join(", "));
  } else cl.append(el("p", "No checkpoint in this bundle.", "none"));
}

if (!window.isSecureContext) {
  const notice = $("notice");
  notice.hidden = false;
  notice.textContent = "This page is not in a secure context, so WebCrypto is unavailable: RSA keys cannot be checked. Open the file directly (file://) or over https.";
}
