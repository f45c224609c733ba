// clyra-verify BUNDLE --trust trust.json [--at RFC3339] [--artifacts DIR] [--threshold N] [--json]
// The only module that touches the file system (Node). Exit: 0 valid, 2 invalid, 1 error.
import { readFileSync, lstatSync, statSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { readZip, filesFromMap, MAX_DOC, MAX_ENTRIES, MAX_ENTRY, MAX_TOTAL, type ContainerResult } from "./zip.js";
import { verifyBundle, type ArtifactSource } from "./verify.js";
import { loadTrust } from "./keys.js";
import { parseStrictBytes, decodeUtf8 } from "./json.js";
import { parseTime } from "./time.js";
import { unsafePathReason } from "./paths.js";
import type { Finding, Report } from "./report.js";

const USAGE = "usage: clyra-verify BUNDLE --trust trust.json [--at RFC3339] [--artifacts DIR] [--threshold N] [--json]";

class UsageError extends Error {}

interface Args {
  bundle: string;
  trust: string;
  at: string | null;
  artifacts: string | null;
  threshold: number;
  json: boolean;
}

function parseArgs(argv: string[]): Args {
  let bundle: string | null = null;
  let trust: string | null = null;
  let at: string | null = null;
  let artifacts: string | null = null;
  let threshold = 1;
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const val = () => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    if (a === "--trust") trust = val();
    else if (a === "--at") at = val();
    else if (a === "--artifacts") artifacts = val();
    else if (a === "--threshold") {
      const v = val();
      if (!/^[0-9]+$/.test(v)) throw new UsageError(`--threshold ${v} is not a number`);
      threshold = Number(v);
      if (threshold < 1) throw new UsageError("--threshold must be at least 1");
    } else if (a === "--json" || a === "--format=json") json = true;
    else if (a === "--format") {
      const v = val();
      if (v !== "json" && v !== "text") throw new UsageError(`--format ${v}`);
      json = v === "json";
    } else if (a === "-h" || a === "--help") throw new UsageError(USAGE);
    else if (a.startsWith("-")) throw new UsageError(`unknown option ${a}\n${USAGE}`);
    else if (bundle === null) bundle = a;
    else throw new UsageError(`unexpected argument ${a}\n${USAGE}`);
  }
  if (bundle === null || trust === null) throw new UsageError(USAGE);
  return { bundle, trust, at, artifacts, threshold, json };
}

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

function render(r: Report): string {
  const lines = [`${r.verdict.toUpperCase()}: ${r.bundle ?? ""}`];
  for (const f of r.findings) lines.push(`  ${f.code}${f.path ? ` ${f.path}` : ""}: ${f.message}`);
  return lines.join("\n") + "\n";
}

export async function main(argv: string[]): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    return 1;
  }
  const fail = (message: string) => {
    if (args.json) process.stdout.write(JSON.stringify({ error: { message, causes: [message] }, ok: false }, null, 2) + "\n");
    process.stderr.write(`error: ${message}\n`);
    return 1;
  };
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
    let st;
    try {
      st = statSync(args.bundle);
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
    process.stdout.write(args.json ? JSON.stringify(report, null, 2) + "\n" : render(report));
    return report.verdict === "valid" ? 0 : 2;
  } catch (e) {
    return fail((e as Error).stack ?? String(e));
  }
}
