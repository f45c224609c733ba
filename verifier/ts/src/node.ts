// The Node file-system side of the verifier: bundles, trust files and artifacts read from disk, and
// verifyCaseFiles, which is everything `clyra-verify` does short of parsing arguments and printing.
// The CLI (cli.ts) and the conformance harness's batch mode (scripts/conformance.mjs) both call it,
// so a batch of cases verified in one process gives the reports the CLI would print. Like cli.ts,
// this module uses node:fs; the core (the other modules of src/) stays browser-safe.
import * as crypto from "node:crypto";
import { readFileSync, lstatSync, statSync, readdirSync } from "node:fs";
import { join } from "node:path";
import * as zlib from "node:zlib";
import { readZip, filesFromMap, useCrc32, MAX_DOC, MAX_ENTRIES, MAX_ENTRY, MAX_TOTAL, type ContainerResult } from "./zip.js";
import { useSha256, useSha256Into } from "./util.js";
import { verifyBundle, type ArtifactSource } from "./verify.js";
import { loadTrust } from "./keys.js";
import { parseStrictBytes, decodeUtf8 } from "./json.js";
import { parseTime } from "./time.js";
import { unsafePathReason } from "./paths.js";
import type { Finding, Report } from "./report.js";

// Under Node, the core hashes with node:crypto and checks CRC-32 with zlib (native code) instead
// of its portable pure-JS implementations: same results, several times faster on large bundles.
// crypto.hash (one-shot, Node >= 20.12) costs much less per call than a Hash object, which
// matters at three hashes per journal line.
const oneShot = (crypto as { hash?: (alg: string, data: Uint8Array, enc: string) => Buffer | string }).hash;
if (typeof oneShot === "function") {
  // Parts are joined in one reused buffer (hash() reads it before returning).
  let scratch = new Uint8Array(1 << 12);
  useSha256(
    (a, b, c) => {
      let data = a;
      if (b !== undefined) {
        const n = a.length + b.length + (c?.length ?? 0);
        if (n > scratch.length) scratch = new Uint8Array(Math.max(n, 2 * scratch.length));
        scratch.set(a);
        scratch.set(b, a.length);
        if (c !== undefined) scratch.set(c, a.length + b.length);
        data = scratch.subarray(0, n);
      }
      const d = oneShot("sha256", data, "buffer") as Buffer;
      return new Uint8Array(d.buffer, d.byteOffset, d.length);
    },
    (a) => oneShot("sha256", a, "hex") as string,
  );
  // The digest as a latin1 string (one char per byte) rather than a Buffer: no ArrayBuffer per
  // hash, which at 200,000 hashes per 100,000-line journal keeps the garbage collector idle.
  useSha256Into((out, at, a, b) => {
    let data = a;
    if (b !== undefined) {
      const n = a.length + b.length;
      if (n > scratch.length) scratch = new Uint8Array(Math.max(n, 2 * scratch.length));
      scratch.set(a);
      scratch.set(b, a.length);
      data = scratch.subarray(0, n);
    }
    const d = oneShot("sha256", data, "latin1") as string;
    for (let i = 0; i < 32; i++) out[at + i] = d.charCodeAt(i);
  });
} else {
  useSha256((a, b, c) => {
    const h = crypto.createHash("sha256").update(a);
    if (b !== undefined) h.update(b);
    if (c !== undefined) h.update(c);
    const d = h.digest();
    return new Uint8Array(d.buffer, d.byteOffset, d.length);
  });
}
// zlib.crc32 exists from Node 20.15 / 22.2 (engines: >= 20.19).
const zcrc = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;
if (typeof zcrc === "function") useCrc32((b) => zcrc(b));

/** Directory form (bundle.md §2.3): every path, size and link finding is reported, all fatal. */
export function readDir(root: string): ContainerResult {
  const fatal: Finding[] = [];
  const files = new Map<string, Uint8Array>();
  let count = 0;
  let total = 0;
  const walk = (dir: string, rel: string) => {
    const names = readdirSync(dir, { encoding: "buffer" }).sort(Buffer.compare);
    for (const nb of names) {
      const name = decodeUtf8(nb);
      const shown = name ?? nb.toString("latin1");
      const relPath = rel === "" ? shown : `${rel}/${shown}`;
      if (name === null) {
        fatal.push({ code: "E_UNSAFE_PATH", path: relPath, message: "name is not UTF-8" });
        continue;
      }
      const full = join(dir, name);
      const st = lstatSync(full);
      if (st.isSymbolicLink() || !(st.isFile() || st.isDirectory())) {
        fatal.push({ code: "E_LINK_ENTRY", path: relPath, message: st.isSymbolicLink() ? "symbolic link" : "not a regular file" });
        continue;
      }
      const why = unsafePathReason(relPath);
      if (why !== null) {
        fatal.push({ code: "E_UNSAFE_PATH", path: relPath, message: why });
        continue;
      }
      if (st.isDirectory()) {
        walk(full, relPath);
        continue;
      }
      count++;
      total += st.size;
      if (st.size > MAX_ENTRY) fatal.push({ code: "E_TOO_LARGE", path: relPath, message: "file larger than 1 GiB" });
      else if ((relPath === "manifest.json" || relPath === "attestation.dsse.json") && st.size > MAX_DOC)
        fatal.push({ code: "E_TOO_LARGE", path: relPath, message: `${relPath} is larger than 16 MiB` });
      else {
        const data = readFileSync(full);
        if (data.length > st.size) fatal.push({ code: "E_TOO_LARGE", path: relPath, message: "file grew while it was read" });
        else if (data.length < st.size) fatal.push({ code: "E_ARCHIVE", path: relPath, message: "file shrank while it was read" });
        else files.set(relPath, new Uint8Array(data.buffer, data.byteOffset, data.length));
      }
    }
  };
  walk(root, "");
  if (count > MAX_ENTRIES) fatal.push({ code: "E_TOO_LARGE", message: `${count} files (limit ${MAX_ENTRIES})` });
  if (total >= MAX_TOTAL) fatal.push({ code: "E_TOO_LARGE", message: "files add up to 4 GiB or more" });
  return fatal.length ? { fatal } : { files: filesFromMap(files) };
}

export function artifactDir(dir: string): ArtifactSource {
  return {
    async read(name) {
      const p = join(dir, name);
      let st;
      try {
        st = statSync(p);
      } catch (e) {
        return { absent: `${p}: ${(e as Error).message}` };
      }
      if (!st.isFile()) return { notRegular: `${p} is not a regular file` };
      try {
        const b = readFileSync(p);
        return new Uint8Array(b.buffer, b.byteOffset, b.length);
      } catch (e) {
        return { absent: `${p} cannot be read: ${(e as Error).message}` };
      }
    },
  };
}

/** A bundle path: a directory (bundle.md §2.3) or a ZIP file (§2.2). */
export function loadBundle(path: string): ContainerResult {
  if (statSync(path).isDirectory()) return readDir(path);
  const b = readFileSync(path);
  return readZip(new Uint8Array(b.buffer, b.byteOffset, b.length));
}

/** Read and check a trust file; throws on any problem (an error outside the bundle). */
export async function loadTrustFile(path: string) {
  return loadTrust(parseStrictBytes(readFileSync(path)));
}

/** One verification as the CLI runs it: paths as given on its command line. */
export interface CaseFiles {
  bundle: string;
  trust: string;
  /** RFC 3339; null means now. */
  at: string | null;
  artifacts: string | null;
  threshold: number;
}

/**
 * What `clyra-verify` would do with these arguments: a report with exit status 0 (valid) or 2
 * (invalid), or an error outside the bundle with exit status 1.
 */
export type CaseOutcome = { status: 0 | 2; report: Report } | { status: 1; error: string };

export async function verifyCaseFiles(args: CaseFiles): Promise<CaseOutcome> {
  const fail = (error: string): CaseOutcome => ({ status: 1, error });
  try {
    const atText = args.at ?? new Date().toISOString();
    const at = parseTime(atText);
    if (at === null) return fail(`--at ${atText} is not an RFC 3339 time`);
    let trustBytes: Buffer;
    try {
      trustBytes = readFileSync(args.trust);
    } catch (e) {
      return fail(`trust file ${args.trust}: ${(e as Error).message}`);
    }
    let trust;
    try {
      trust = await loadTrust(parseStrictBytes(trustBytes));
    } catch (e) {
      return fail(`trust file ${args.trust}: ${(e as Error).message}`);
    }
    try {
      statSync(args.bundle);
    } catch (e) {
      return fail(`bundle ${args.bundle}: ${(e as Error).message}`);
    }
    const container = loadBundle(args.bundle);
    if (args.artifacts !== null) {
      try {
        if (!statSync(args.artifacts).isDirectory()) return fail(`--artifacts ${args.artifacts} is not a directory`);
      } catch (e) {
        return fail(`--artifacts ${args.artifacts}: ${(e as Error).message}`);
      }
    }
    const report = await verifyBundle(container, {
      trust,
      at,
      atText,
      threshold: args.threshold,
      bundleName: args.bundle,
      ...(args.artifacts !== null ? { artifacts: artifactDir(args.artifacts) } : {}),
    });
    return { status: report.verdict === "valid" ? 0 : 2, report };
  } catch (e) {
    return fail((e as Error).stack ?? String(e));
  }
}

/** The JSON the CLI prints for an error (`--json`). */
export function errorJson(message: string): { error: { message: string; causes: string[] }; ok: false } {
  return { error: { message, causes: [message] }, ok: false };
}
