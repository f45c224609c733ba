// What a bundle says it contains, for display (the web page): the manifest, its entries, who
// signed and under which trusted key, the journal segment and the checkpoint. Nothing here is a
// verdict: every value is read as the bundle states it, defensively (a member of the wrong type is
// left out, never thrown on), and is trustworthy only when verifyBundle says "valid". Pure, like
// verify.ts: bytes in, a plain object out; no file-system access.
import { parseStrictBytes, isObject, utf8Encode, type Json, type JsonObject } from "./json.js";
import { base64DecodeLenient, concatBytes, sha256Hex } from "./util.js";
import { keyValidAt, verifySig, type Algorithm, type TrustedKey } from "./keys.js";
import { parseSignedNote, parseCheckpointBody } from "./note.js";
import { parseTime } from "./time.js";
import type { ContainerResult } from "./zip.js";

export interface EntryInfo {
  path: string;
  size?: number;
  media_type?: string;
  sha256?: string;
}

export interface ExternalInfo extends EntryInfo {
  uri?: string;
}

export interface SignatureInfo {
  index: number;
  /** The keyid the signature names (a hint; not what makes it count). */
  keyid?: string;
  /** Trusted keys under which the signature verifies. */
  verifiedBy: { keyid: string; algorithm: Algorithm; validAt: boolean }[];
}

export interface CheckpointInfo {
  origin: string;
  size: string;
  root: string;
  time: string;
  head: string;
  /** Names on the note's signature lines. */
  signers: string[];
}

export interface BundleContents {
  /** Every file in the container, with its size (directory order sorted by name). */
  container: { path: string; size: number }[];
  format?: string;
  format_version?: string;
  /** "def" or "pef", from the manifest's format. */
  kind?: "def" | "pef";
  bundle_id?: string;
  created_at?: string;
  producer?: { name?: string; version?: string };
  governance?: { tenant?: string; environment?: string; run_id?: string; actors?: string[] };
  policy_sha256?: string | null;
  files: EntryInfo[];
  external_artifacts: ExternalInfo[];
  merkle?: { tree_size?: number; root?: string };
  journal?: {
    path?: string;
    count?: number;
    first_seq?: number;
    last_seq?: number;
    chain?: string;
    run?: string;
    head?: string;
    entries_root?: string;
  };
  /** From the signed statement (as stated; see the verdict). */
  statement?: {
    predicateType?: string;
    subjects: { name: string; sha256?: string }[];
    run?: { run_id?: string; started_at?: string; finished_at?: string; status?: string };
  };
  payloadType?: string;
  signatures: SignatureInfo[];
  checkpoint?: CheckpointInfo;
  /** Parts that could not be read for display (the verdict's findings say why). */
  unreadable: string[];
}

const str = (v: Json | undefined): string | undefined => (typeof v === "string" ? v : undefined);
const num = (v: Json | undefined): number | undefined => (typeof v === "number" ? v : undefined);
const obj = (v: Json | undefined): JsonObject | undefined => (isObject(v) ? v : undefined);
const arr = (v: Json | undefined): Json[] => (Array.isArray(v) ? v : []);

/** Drop members whose value is undefined (so the object shows only what the bundle has). */
function defined<T extends object>(o: T): T {
  for (const k of Object.keys(o)) if ((o as Record<string, unknown>)[k] === undefined) delete (o as Record<string, unknown>)[k];
  return o;
}

function hex(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

/**
 * Read what a bundle states. `trust` and `at` are used only to say which trusted key each
 * signature verifies under and whether that key is valid at `at`.
 */
export async function inspectBundle(container: ContainerResult, trust: TrustedKey[], at: bigint): Promise<BundleContents> {
  const out: BundleContents = { container: [], files: [], external_artifacts: [], signatures: [], unreadable: [] };
  if ("fatal" in container) {
    out.unreadable.push("container");
    return out;
  }
  const files = container.files;
  const read = (name: string): Uint8Array | undefined => {
    try {
      return files.read(name);
    } catch {
      out.unreadable.push(name); // a ZIP entry found bad when read (ContainerFatal)
      return undefined;
    }
  };
  const parse = (name: string, bytes: Uint8Array | undefined): Json | undefined => {
    if (bytes === undefined) return undefined;
    try {
      return parseStrictBytes(bytes);
    } catch {
      out.unreadable.push(name);
      return undefined;
    }
  };
  out.container = files
    .names()
    .sort()
    .map((path) => ({ path, size: files.size(path) ?? 0 }));

  const m = obj(parse("manifest.json", read("manifest.json")));
  if (m) {
    out.format = str(m.format);
    out.format_version = str(m.format_version);
    out.kind = m.format === "clyra-def" ? "def" : m.format === "clyra-pef" ? "pef" : undefined;
    out.bundle_id = str(m.bundle_id);
    out.created_at = str(m.created_at);
    const p = obj(m.producer);
    if (p) out.producer = defined({ name: str(p.name), version: str(p.version) });
    const g = obj(m.governance);
    if (g) {
      const actors = arr(g.actors).filter((a): a is string => typeof a === "string");
      out.governance = defined({ tenant: str(g.tenant), environment: str(g.environment), run_id: str(g.run_id), actors });
    }
    out.policy_sha256 = m.policy_sha256 === null ? null : str(m.policy_sha256);
    for (const f of arr(m.files)) {
      const e = obj(f);
      if (e && typeof e.path === "string") out.files.push(defined({ path: e.path, size: num(e.size), media_type: str(e.media_type), sha256: str(e.sha256) }));
    }
    for (const f of arr(m.external_artifacts)) {
      const e = obj(f);
      if (e && typeof e.name === "string")
        out.external_artifacts.push(defined({ path: e.name, size: num(e.size), media_type: str(e.media_type), sha256: str(e.sha256), uri: str(e.uri) }));
    }
    const mk = obj(m.merkle);
    if (mk) out.merkle = defined({ tree_size: num(mk.tree_size), root: str(mk.root) });
    const j = obj(m.journal);
    if (j)
      out.journal = defined({
        path: str(j.path),
        count: num(j.count),
        first_seq: num(j.first_seq),
        last_seq: num(j.last_seq),
        chain: str(j.chain) ?? "journal",
        run: str(j.run),
        head: str(j.head),
        entries_root: str(j.entries_root),
      });
    const cp = obj(m.checkpoint);
    if (cp && typeof cp.note === "string") {
      const noteBytes = files.size(cp.note) === undefined ? undefined : read(cp.note);
      if (noteBytes !== undefined) {
        try {
          const note = parseSignedNote(noteBytes);
          const body = parseCheckpointBody(note.body, (t) => parseTime(t) !== null);
          out.checkpoint = { origin: body.origin, size: body.size.toString(), root: hex(body.root), time: body.time, head: body.head, signers: note.sigs.map((s) => s.name) };
        } catch {
          out.unreadable.push(cp.note);
        }
      }
    }
  }

  const env = obj(parse("attestation.dsse.json", read("attestation.dsse.json")));
  if (env) {
    out.payloadType = str(env.payloadType);
    const payload = typeof env.payload === "string" ? base64DecodeLenient(env.payload) : null;
    if (payload) {
      try {
        const st = parseStrictBytes(payload);
        if (isObject(st)) {
          const subjects = arr(st.subject)
            .map(obj)
            .filter((s): s is JsonObject => s !== undefined && typeof s.name === "string")
            .map((s) => defined({ name: s.name as string, sha256: str(obj(s.digest)?.sha256) }));
          const run = obj(obj(st.predicate)?.run);
          out.statement = defined({
            predicateType: str(st.predicateType),
            subjects,
            run: run && defined({ run_id: str(run.run_id), started_at: str(run.started_at), finished_at: str(run.finished_at), status: str(run.status) }),
          });
        }
      } catch {
        out.unreadable.push("attestation.dsse.json payload");
      }
    }
    // The DSSE pre-authentication encoding (bundle.md §5), to say which key each signature verifies under.
    const type = utf8Encode(typeof env.payloadType === "string" ? env.payloadType : "");
    const message =
      payload && concatBytes(utf8Encode(`DSSEv1 ${type.length} `), type, utf8Encode(` ${payload.length} `), payload);
    const sigs = arr(env.signatures);
    for (let i = 0; i < sigs.length; i++) {
      const s = obj(sigs[i]);
      const info: SignatureInfo = defined({ index: i, keyid: str(s?.keyid), verifiedBy: [] });
      const sig = s && typeof s.sig === "string" ? base64DecodeLenient(s.sig) : null;
      if (sig && message)
        for (const k of trust)
          if (await verifySig(k, sig, message)) info.verifiedBy.push({ keyid: k.keyid, algorithm: k.algorithm, validAt: keyValidAt(k, at) });
      out.signatures.push(info);
    }
  }
  return defined(out);
}

/** SHA-256 of bytes as hex (for a page showing the digest of a file it was given). */
export function digestHex(bytes: Uint8Array): string {
  return sha256Hex(bytes);
}
