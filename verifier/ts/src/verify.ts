// The bundle verifier (bundle.md §8), written from spec/ alone. Pure: bytes in, report out; no
// file-system access (the CLI layer reads files), so it runs in a browser too.
import { parseStrictChecked, parseStrictBytes, canonicalBytes, canonicalize, bytesEqual, isObject, decodeUtf8, utf8Encode, JsonError, type Json, type JsonObject } from "./json.js";
import { validate, type SchemaId } from "./schema.js";
import { sha256Hex, base64DecodeLenient, base64Encode, concatBytes, compareUtf8, hexToBytesStrict, ZERO_DIGEST, DIGEST_RE } from "./util.js";
import { merkleRoot, rootOfPackedHashes, leafHashInto, verifyInclusionHash } from "./merkle.js";
import { keyValidAt, verifySig, isHighS, type TrustedKey } from "./keys.js";
import { parseSignedNote, parseCheckpointBody, ed25519NoteKeyId, NoteError, type Checkpoint } from "./note.js";
import { unsafePathReason } from "./paths.js";
import { MAX_DOC, ContainerFatal, type ContainerResult } from "./zip.js";
import { parseTime } from "./time.js";
import type { Code, Finding, Report } from "./report.js";

export const IN_TOTO = "application/vnd.in-toto+json";
export const STATEMENT_TYPE = "https://in-toto.io/Statement/v1";
const PREDICATE_TYPES: Record<string, string> = {
  "clyra-def": "https://clyra.dev/def/v0",
  "clyra-pef": "https://clyra.dev/pef/v0",
};
const KNOWN_VERSIONS = new Set(["0.1", "0.2"]);
const MAX_LINE = 16 * 1024 * 1024;

export interface ArtifactSource {
  /** The bytes of DIR/<name>; "absent" or "unreadable" when not given; "not-regular" for a non-file. */
  read(name: string): Promise<Uint8Array | { absent: string } | { notRegular: string }>;
}

export interface VerifyOptions {
  trust: TrustedKey[];
  /** Verification instant, nanoseconds since the epoch. */
  at: bigint;
  atText: string;
  threshold?: number;
  artifacts?: ArtifactSource;
  bundleName?: string;
}

const MANIFEST = "manifest.json";
const ATTESTATION = "attestation.dsse.json";

class Ctx {
  findings: Finding[] = [];
  add(code: Code, message: string, path?: string): void {
    this.findings.push(path === undefined ? { code, message } : { code, path, message });
  }
}

function schemaFindings(ctx: Ctx, id: SchemaId, value: Json, path: string, what: string): boolean {
  const issues = validate(id, value);
  if (issues.length === 0) return true;
  for (const i of issues) ctx.add("E_SCHEMA", `${what}${i.pointer ? " at " + i.pointer : ""}: ${i.message}`, path);
  return false;
}

const MEDIA_TYPE_RE = /^[\x21-\x2e\x30-\x7e]+\/[\x21-\x7e]+$/;

export async function verifyBundle(container: ContainerResult, opts: VerifyOptions): Promise<Report> {
  try {
    return await verifyInner(container, opts);
  } catch (e) {
    // A container finding met while reading an entry is then the only finding (bundle.md §2.2).
    if (!(e instanceof ContainerFatal)) throw e;
    const report: Report = { verdict: "invalid", checked_at: opts.atText, findings: [e.finding], summary: {} };
    if (opts.bundleName !== undefined) report.bundle = opts.bundleName;
    return report;
  }
}

async function verifyInner(container: ContainerResult, opts: VerifyOptions): Promise<Report> {
  const ctx = new Ctx();
  const threshold = opts.threshold ?? 1;
  const report: Report = { verdict: "invalid", checked_at: opts.atText, findings: ctx.findings, summary: {} };
  if (opts.bundleName !== undefined) report.bundle = opts.bundleName;

  // §2: container findings are fatal.
  if ("fatal" in container) {
    ctx.findings.push(...container.fatal);
    return finish(report);
  }
  const files = container.files;

  // §3, §4: the manifest.
  const manifestBytes = files.read(MANIFEST);
  let manifest: JsonObject | null = null; // usable for everything that depends on it
  let format: string | null = null;
  let unknownVersion = false;
  if (manifestBytes === undefined) {
    ctx.add("E_MISSING_FILE", "manifest.json is missing", MANIFEST);
  } else {
    const parsed = parseDoc(ctx, manifestBytes, MANIFEST, "manifest");
    if (parsed !== undefined) {
      if (isObject(parsed)) {
        if (typeof parsed.format === "string") report.format = parsed.format;
        if (typeof parsed.format_version === "string") report.format_version = parsed.format_version;
      }
      // E_UNKNOWN_VERSION is decided before the schema, for a format_version that is a string other
      // than "0.1" and "0.2" ("1.0", "0.3", "0.1.0", ...). A missing or non-string format_version is
      // left to the schema (E_SCHEMA): the verification-codes table's "unknown format_version
      // shape" is read as an unknown string shape, which is what the Rust verifier does.
      if (isObject(parsed) && typeof parsed.format_version === "string" && !KNOWN_VERSIONS.has(parsed.format_version)) {
        unknownVersion = true;
        ctx.add("E_UNKNOWN_VERSION", `format_version ${JSON.stringify(parsed.format_version)} is not implemented (0.1, 0.2)`, MANIFEST);
      } else if (schemaFindings(ctx, "manifest", parsed, MANIFEST, "manifest") && isObject(parsed)) {
        if (manifestRules(ctx, parsed)) manifest = parsed;
      }
    }
  }
  if (manifest) {
    format = manifest.format as string;
    const j = manifest.journal as JsonObject;
    report.summary = {
      entries: j.count,
      first_seq: j.first_seq,
      last_seq: j.last_seq,
      journal_head: j.head,
      merkle_root: (manifest.merkle as JsonObject).root,
      entries_root: j.entries_root,
      files: (manifest.files as Json[]).length,
      external_artifacts: (manifest.external_artifacts as Json[]).length,
    };
    (report as unknown as Record<string, unknown>).bundle_id = manifest.bundle_id;
    (report as unknown as Record<string, unknown>).created_at = manifest.created_at;
  }

  // §5: the attestation.
  const att = await checkAttestation(ctx, files.read(ATTESTATION), opts, threshold);
  if (att.signers) report.summary.signers = att.signers;
  if (att.payload) {
    checkStatement(ctx, att.payload, {
      manifestBytes,
      manifest,
      unknownVersion,
      report,
    });
  }

  if (manifest) {
    const j = manifest.journal as JsonObject;
    const fileEntries = manifest.files as JsonObject[];
    const refs = manifest.external_artifacts as JsonObject[];
    // Files: sizes and digests, then unlisted files.
    const listed = new Set<string>();
    const sizeDigestOk = new Set<string>();
    for (const f of fileEntries) {
      const path = f.path as string;
      listed.add(path);
      const size = files.size(path);
      if (size === undefined) {
        ctx.add("E_MISSING_FILE", `${path} is listed but not in the bundle`, path);
      } else if (size !== f.size) {
        ctx.add("E_SIZE_MISMATCH", `${path} has ${size} bytes, the manifest says ${f.size}`, path);
      } else if (sha256Hex(files.read(path)!) !== f.sha256) {
        ctx.add("E_DIGEST_MISMATCH", `${path} has another sha256 than the manifest says`, path);
      } else {
        sizeDigestOk.add(path);
      }
    }
    for (const path of files.names().sort(compareUtf8)) {
      if (path === MANIFEST || path === ATTESTATION || listed.has(path)) continue;
      ctx.add("E_UNLISTED_FILE", `${path} is not listed in the manifest`, path);
    }
    // §4.1 Merkle root.
    const leaves = [...fileEntries, ...refs].map((e) => canonicalBytes(e));
    const root = sha256HexOf(merkleRoot(leaves));
    const m = manifest.merkle as JsonObject;
    if (m.tree_size !== leaves.length || m.root !== root) {
      ctx.add("E_MERKLE_ROOT", `merkle root/tree_size is ${m.root}/${m.tree_size}, the entries give ${root}/${leaves.length}`, MANIFEST);
    }
    // §6 journal.
    const jpath = j.path as string;
    const jbytes = files.read(jpath);
    let journal: JournalResult | null = null;
    if (jbytes !== undefined) journal = checkJournal(ctx, jbytes, j, jpath);
    // §6.2 checkpoint and inclusion proofs.
    const cp = manifest.checkpoint;
    if (isObject(cp) && journal && journal.allUsable) {
      const notePath = cp.note as string;
      const proofsPath = cp.proofs as string;
      if (sizeDigestOk.has(notePath) && sizeDigestOk.has(proofsPath)) {
        await checkCheckpoint(ctx, files.read(notePath)!, files.read(proofsPath)!, journal, opts, notePath, proofsPath);
      }
    }
    // §7 external artifacts.
    for (const r of refs) {
      const name = r.name as string;
      if (!opts.artifacts) {
        ctx.add("W_ARTIFACT_NOT_CHECKED", `external artifact ${name} was not checked: no artifacts directory given`, name);
        continue;
      }
      const got = await opts.artifacts.read(name);
      if (got instanceof Uint8Array) {
        if (got.length !== r.size) ctx.add("E_ARTIFACT_MISMATCH", `artifact ${name} has ${got.length} bytes, the reference says ${r.size}`, name);
        else if (sha256Hex(got) !== r.sha256) ctx.add("E_ARTIFACT_MISMATCH", `artifact ${name} has another sha256 than its reference`, name);
      } else if ("notRegular" in got) {
        ctx.add("E_ARTIFACT_MISMATCH", `artifact ${name}: ${got.notRegular}`, name);
      } else {
        ctx.add("W_ARTIFACT_NOT_CHECKED", `external artifact ${name} was not checked: ${got.absent}`, name);
      }
    }
  }
  return finish(report);
}

function finish(report: Report): Report {
  report.verdict = report.findings.some((f) => f.code.startsWith("E_")) ? "invalid" : "valid";
  return report;
}

function sha256HexOf(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

/** Strict JSON (E_JSON, then nothing) and canonical form (E_NOT_CANONICAL, checking goes on). */
function parseDoc(ctx: Ctx, bytes: Uint8Array, path: string, what: string): Json | undefined {
  let v: Json;
  try {
    v = parseStrictBytes(bytes);
  } catch (e) {
    if (e instanceof JsonError) {
      ctx.add("E_JSON", `${what} is not strict JSON: ${e.message}`, path);
      return undefined;
    }
    throw e;
  }
  if (!bytesEqual(canonicalBytes(v), bytes)) ctx.add("E_NOT_CANONICAL", `${what} is not canonical JSON (RFC 8785)`, path);
  return v;
}

/** bundle.md §4 rules a schema cannot express. Returns whether the manifest is usable. */
function manifestRules(ctx: Ctx, m: JsonObject): boolean {
  let ok = true;
  const files = m.files as JsonObject[];
  const refs = m.external_artifacts as JsonObject[];
  const hasCp = "checkpoint" in m;
  const j = m.journal as JsonObject;
  const paths = files.map((f) => f.path as string);
  for (let i = 0; i < files.length; i++) {
    const p = paths[i]!;
    const why = unsafePathReason(p);
    if (why !== null) {
      ctx.add("E_UNSAFE_PATH", `files[${i}].path ${JSON.stringify(p)}: ${why}`, p);
      ok = false;
      continue;
    }
    const allowed = p === "journal.ndjson" || p.startsWith("artifacts/") || (hasCp && (p === "checkpoint.note" || p === "proofs.json"));
    if (!allowed) {
      ctx.add("E_SCHEMA", `files[${i}].path ${JSON.stringify(p)} is not a path a bundle may list`, MANIFEST);
      ok = false;
    }
    if (i > 0 && compareUtf8(paths[i - 1]!, p) >= 0) {
      ctx.add("E_SCHEMA", `files not strictly sorted by path at ${JSON.stringify(p)}`, MANIFEST);
      ok = false;
    }
    if (!MEDIA_TYPE_RE.test(files[i]!.media_type as string)) {
      ctx.add("E_SCHEMA", `files[${i}].media_type is not type/subtype`, MANIFEST);
      ok = false;
    }
  }
  const need = [j.path as string, ...(hasCp ? ["checkpoint.note", "proofs.json"] : [])];
  for (const n of need) {
    if (!paths.includes(n)) {
      ctx.add("E_SCHEMA", `files does not list ${n}`, MANIFEST);
      ok = false;
    }
  }
  for (let i = 0; i < refs.length; i++) {
    const name = refs[i]!.name as string;
    const why = unsafePathReason(name) ?? (name.includes("/") ? "not a single path segment" : null);
    if (why !== null) {
      ctx.add("E_UNSAFE_PATH", `external_artifacts[${i}].name ${JSON.stringify(name)}: ${why}`, name);
      ok = false;
    }
    if (i > 0 && compareUtf8(refs[i - 1]!.name as string, name) >= 0) {
      ctx.add("E_SCHEMA", `external_artifacts not strictly sorted by name at ${JSON.stringify(name)}`, MANIFEST);
      ok = false;
    }
    if (!MEDIA_TYPE_RE.test(refs[i]!.media_type as string)) {
      ctx.add("E_SCHEMA", `external_artifacts[${i}].media_type is not type/subtype`, MANIFEST);
      ok = false;
    }
    if ((refs[i]!.uri as string).length === 0) {
      ctx.add("E_SCHEMA", `external_artifacts[${i}].uri is empty`, MANIFEST);
      ok = false;
    }
  }
  return ok;
}

// ---------------------------------------------------------------------------------------------
// §5 attestation

function pae(type: Uint8Array, body: Uint8Array): Uint8Array {
  const enc = (s: string) => utf8Encode(s);
  return concatBytes(enc(`DSSEv1 ${type.length} `), type, enc(` ${body.length} `), body);
}

interface AttResult {
  payload?: Uint8Array;
  signers?: string[];
}

async function checkAttestation(ctx: Ctx, bytes: Uint8Array | undefined, opts: VerifyOptions, threshold: number): Promise<AttResult> {
  const P = ATTESTATION;
  if (bytes === undefined) {
    ctx.add("E_MISSING_FILE", "attestation.dsse.json is missing", P);
    return {};
  }
  if (threshold < 1) {
    ctx.add("E_THRESHOLD", `threshold ${threshold} is below 1`, P);
    return {};
  }
  let env: Json;
  try {
    env = parseStrictBytes(bytes);
  } catch (e) {
    if (e instanceof JsonError) {
      ctx.add("E_JSON", `envelope is not strict JSON: ${e.message}`, P);
      return {};
    }
    throw e;
  }
  // Envelope shape: exactly payload, payloadType, signatures; each signature sig and optional keyid.
  const shapeOk =
    isObject(env) &&
    sameKeys(env, ["payload", "payloadType", "signatures"], []) &&
    typeof env.payload === "string" &&
    typeof env.payloadType === "string" &&
    Array.isArray(env.signatures) &&
    env.signatures.every((s) => isObject(s) && sameKeys(s, ["sig"], ["keyid"]) && typeof s.sig === "string" && (!("keyid" in s) || typeof s.keyid === "string"));
  if (!shapeOk || !isObject(env)) {
    ctx.add("E_SCHEMA", "envelope must have exactly payload, payloadType and signatures (keyid, sig)", P);
    return {};
  }
  const payloadB64 = env.payload as string;
  const payloadType = env.payloadType as string;
  const sigObjs = env.signatures as JsonObject[];
  const payload = base64DecodeLenient(payloadB64);
  const sigs = sigObjs.map((s) => base64DecodeLenient(s.sig as string));
  if (payload === null || sigs.some((s) => s === null)) {
    ctx.add("E_SIGNATURE", "payload or signature is not valid base64", P);
    return {};
  }
  // Canonical: the JCS bytes, and standard padded base64 in every encoded member.
  const b64Canonical = base64Encode(payload) === payloadB64 && sigs.every((s, i) => base64Encode(s!) === sigObjs[i]!.sig);
  if (!bytesEqual(canonicalBytes(env), bytes) || !b64Canonical) ctx.add("E_NOT_CANONICAL", "envelope is not canonical (JSON or base64)", P);

  const message = pae(utf8Encode(payloadType), payload);
  const trustIds = new Set(opts.trust.map((k) => k.keyid));
  // verified[i] = keyids under which signature i verifies (any validity).
  const verified: Set<string>[] = [];
  for (let i = 0; i < sigs.length; i++) {
    const set = new Set<string>();
    const hint = sigObjs[i]!.keyid;
    // keyid only orders the attempts: the hinted key first, then every other.
    const order = [...opts.trust].sort((a, b) => Number(b.keyid === hint) - Number(a.keyid === hint));
    for (const k of order) if (await verifySig(k, sigs[i]!, message)) set.add(k.keyid);
    verified.push(set);
  }
  const counted = new Set<string>();
  let expiredVerify = false;
  for (const set of verified)
    for (const id of set) {
      const k = opts.trust.find((t) => t.keyid === id)!;
      if (keyValidAt(k, opts.at)) counted.add(id);
      else expiredVerify = true;
    }
  if (counted.size < threshold) {
    if (counted.size > 0) ctx.add("E_THRESHOLD", `${counted.size} distinct trusted key(s) signed, ${threshold} required`, P);
    else if (expiredVerify) ctx.add("E_KEY_EXPIRED", "the signature verifies only under a trusted key outside its validity window", P);
    else if (sigObjs.some((s) => !(typeof s.keyid === "string" && trustIds.has(s.keyid))))
      ctx.add("E_KEY_NOT_TRUSTED", "a signature's keyid names no key of the trust file", P);
    else ctx.add("E_SIGNATURE", "no signature verifies under a trusted key", P);
    return {};
  }
  if (payloadType !== IN_TOTO) {
    ctx.add("E_PAYLOAD_TYPE", `payloadType ${JSON.stringify(payloadType)} is not ${IN_TOTO}`, P);
    return { signers: [...counted].sort() };
  }
  // The closed attestation: once the threshold is met, every signature must hold. Checked in
  // order; a signature's first failing check is its finding and its later checks are skipped. The
  // order check compares with the keyid of the last signature that passed it (bundle.md §5).
  let closedOk = true;
  let previous: string | null = null;
  for (let i = 0; i < sigObjs.length; i++) {
    const kid = sigObjs[i]!.keyid;
    if (typeof kid !== "string" || !DIGEST_RE.test(kid)) {
      ctx.add("E_SIGNATURE", `signature ${i} has no keyid that is a key id`, P);
      closedOk = false;
      continue;
    }
    if (previous !== null && !(previous < kid)) {
      ctx.add("E_SIGNATURE", `signatures are not sorted by keyid, or a key signed twice (signature ${i})`, P);
      closedOk = false;
      continue;
    }
    previous = kid;
    const k = opts.trust.find((t) => t.keyid === kid);
    if (!k) {
      ctx.add("E_KEY_NOT_TRUSTED", `signature ${i}: key ${kid} is not in the trust file`, P);
      closedOk = false;
      continue;
    }
    if (!verified[i]!.has(kid)) {
      ctx.add("E_SIGNATURE", `signature ${i} does not verify under the key it names`, P);
      closedOk = false;
      continue;
    }
    if (!keyValidAt(k, opts.at)) {
      ctx.add("E_KEY_EXPIRED", `signature ${i}: key ${kid} is outside its validity window`, P);
      closedOk = false;
      continue;
    }
    if (k.algorithm === "ecdsa-sha2-256-nistp256" && isHighS(sigs[i]!)) {
      ctx.add("E_SIGNATURE", `signature ${i}: ECDSA signature with high s`, P);
      closedOk = false;
    }
  }
  void closedOk; // the statement is read from the verified payload either way (findings explain the rest)
  return { payload, signers: [...counted].sort() };
}

function sameKeys(o: JsonObject, required: string[], optional: string[]): boolean {
  const keys = Object.keys(o);
  for (const r of required) if (!keys.includes(r)) return false;
  return keys.every((k) => required.includes(k) || optional.includes(k));
}

// ---------------------------------------------------------------------------------------------
// Statement and predicate

interface StatementCtx {
  manifestBytes: Uint8Array | undefined;
  manifest: JsonObject | null;
  unknownVersion: boolean;
  report: Report;
}

function checkStatement(ctx: Ctx, payload: Uint8Array, s: StatementCtx): void {
  const P = ATTESTATION;
  const st = parseDoc(ctx, payload, P, "statement payload");
  if (st === undefined) return;
  if (!schemaFindings(ctx, "statement", st, P, "statement") || !isObject(st)) return;
  const subjects = st.subject as JsonObject[];
  const predicateType = st.predicateType as string;
  s.report.summary.predicate_type = predicateType;
  // Subjects: exactly manifest.json then merkle-root, each with one sha256 digest.
  const names = subjects.map((x) => x.name);
  if (subjects.length !== 2 || names[0] !== "manifest.json" || names[1] !== "merkle-root") {
    ctx.add("E_SUBJECT_MISMATCH", `subjects are ${JSON.stringify(names)}, not ["manifest.json","merkle-root"]`, P);
  } else {
    const d0 = (subjects[0]!.digest as JsonObject).sha256;
    const d1 = (subjects[1]!.digest as JsonObject).sha256;
    if (s.manifestBytes !== undefined && d0 !== sha256Hex(s.manifestBytes))
      ctx.add("E_SUBJECT_MISMATCH", "the manifest.json subject is not the digest of the manifest's bytes", P);
    if (s.manifest && d1 !== (s.manifest.merkle as JsonObject).root)
      ctx.add("E_SUBJECT_MISMATCH", "the merkle-root subject is not the manifest's merkle.root", P);
  }
  if (s.unknownVersion) return; // the predicate's shape depends on the version
  // Which predicate schema: the manifest's format when the manifest is usable, else the type's own.
  let schema: SchemaId | null = null;
  if (s.manifest) {
    const want = PREDICATE_TYPES[s.manifest.format as string];
    if (predicateType !== want) {
      ctx.add("E_SUBJECT_MISMATCH", `predicateType ${predicateType} is not ${want}, which format ${s.manifest.format} requires`, P);
      return;
    }
  }
  if (predicateType === PREDICATE_TYPES["clyra-def"]) schema = "defPredicate";
  else if (predicateType === PREDICATE_TYPES["clyra-pef"]) schema = "pefPredicate";
  else {
    ctx.add("E_SUBJECT_MISMATCH", `predicateType ${predicateType} is not a Clyra predicate type`, P);
    return;
  }
  const pred = st.predicate as Json;
  if (!schemaFindings(ctx, schema, pred, P, "predicate") || !isObject(pred)) return;
  predicateRules(ctx, pred, schema, s.manifest, s.report);
}

function lookupMetric(metrics: JsonObject, name: string): Json | undefined {
  let cur: Json | undefined = metrics;
  for (const part of name.split(".")) {
    if (!isObject(cur) || !Object.prototype.hasOwnProperty.call(cur, part)) return undefined;
    cur = cur[part];
  }
  return cur;
}

function predicateRules(ctx: Ctx, pred: JsonObject, schema: SchemaId, manifest: JsonObject | null, report: Report): void {
  const P = ATTESTATION;
  const metrics = pred.metrics as JsonObject;
  const sla = pred.sla as JsonObject[];
  sla.forEach((item, i) => {
    const value = item.value as number;
    const threshold = item.threshold as number;
    const met = item.op === "<=" ? value <= threshold : value >= threshold;
    if (met !== item.met) ctx.add("E_SCHEMA", `sla[${i}] says met ${item.met}, but ${value} ${item.op} ${threshold} is ${met}`, P);
    const m = lookupMetric(metrics, item.metric as string);
    if (typeof m === "number" && m !== value) ctx.add("E_SCHEMA", `sla[${i}].value ${value} is not metrics.${item.metric} ${m}`, P);
  });
  if (schema === "defPredicate") report.summary.anchors = (pred.anchors as Json[]).length;
  else {
    report.summary.tool_calls = (pred.tool_calls as Json[]).length;
    report.summary.approvals = (pred.approvals as Json[]).length;
  }
  if (!manifest) return;
  const j = manifest.journal as JsonObject;
  if (metrics.entries !== j.count) ctx.add("E_SCHEMA", `metrics.entries ${metrics.entries} is not journal.count ${j.count}`, P);
  const sum = (manifest.files as JsonObject[]).reduce((a, f) => a + (f.size as number), 0);
  if (metrics.payload_bytes !== sum) ctx.add("E_SCHEMA", `metrics.payload_bytes ${metrics.payload_bytes} is not the sum of the file sizes ${sum}`, P);
  // seq references lie within the segment; not range-checked in run mode (§6.1).
  if (j.chain === "run") return;
  const lo = j.first_seq as number;
  const hi = j.last_seq as number;
  const refs: [string, Json[]][] =
    schema === "defPredicate"
      ? [["anchors", pred.anchors as Json[]]]
      : [
          ["tool_calls", pred.tool_calls as Json[]],
          ["approvals", pred.approvals as Json[]],
          ["receipts", (pred.receipts as Json[] | undefined) ?? []],
        ];
  for (const [name, arr] of refs)
    arr.forEach((x, i) => {
      if (isObject(x) && typeof x.seq === "number" && (x.seq < lo || x.seq > hi))
        ctx.add("E_SCHEMA", `${name}[${i}].seq ${x.seq} lies outside the journal segment ${lo}..${hi}`, P);
    });
}

// ---------------------------------------------------------------------------------------------
// §6 journal

/**
 * What the chain, the entries root and §6.2 need of a line. Neither the parsed entry nor its
 * strings are kept (a string read from a line can hold on to the whole line's text): links are
 * compared as lines are read, and values are kept only where a message names them.
 */
interface Line {
  seq: number;
  /** Hex SHA-256 of the line's canonical bytes. */
  digest: string;
  /** Its link (prev, or run_prev in run mode) is the digest of the line read before it. */
  linked: boolean;
  /** The first line's link value (compared with first_prev); undefined on the others. */
  first: Json | undefined;
  /** Run mode: run_seq, whether run is the manifest's (and run when it is not), run_prev usable. */
  runSeq: Json | undefined;
  runOk: boolean;
  run: Json | undefined;
  runPrevUsable: boolean;
}
interface JournalResult {
  /** Every line was strict JSON with a usable seq (precondition of §6.2). */
  allUsable: boolean;
  lines: Line[];
  /** RFC 9162 leaf hashes of the lines' canonical bytes, 32 bytes each, in the order of `lines`. */
  leaves: Uint8Array;
}

function isSafeInt(v: Json | undefined): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= Number.MAX_SAFE_INTEGER;
}

function checkJournal(ctx: Ctx, bytes: Uint8Array, j: JsonObject, path: string): JournalResult {
  // One finding per code, naming the first line and counting the others.
  const first = new Map<Code, { msg: string; n: number }>();
  const note = (code: Code, msg: string) => {
    const f = first.get(code);
    if (f) f.n++;
    else first.set(code, { msg, n: 1 });
  };
  const flush = () => {
    for (const [code, { msg, n }] of first) ctx.add(code, n > 1 ? `${msg} (and ${n - 1} more)` : msg, path);
  };

  const lines: Line[] = [];
  let leaves = new Uint8Array(32 * 1024);
  let chainCheckable = true;
  let allUsable = true;
  let tooLarge = false;
  const runMode = j.chain === "run";
  let start = 0;
  let lineNo = 0;
  while (start < bytes.length) {
    lineNo++;
    let end = bytes.indexOf(0x0a, start);
    const terminated = end >= 0;
    if (!terminated) end = bytes.length;
    if (end - start > MAX_LINE) {
      ctx.add("E_TOO_LARGE", `journal line ${lineNo} is longer than 16 MiB`, path);
      tooLarge = true;
      break;
    }
    const raw = bytes.subarray(start, end);
    start = end + 1;
    // A missing final LF is E_JSON, and the unterminated line is still read and checked like any
    // other (bundle.md §6): its content, its link, the Merkle root and §6.2 all use it.
    if (!terminated) note("E_JSON", `journal line ${lineNo} does not end with LF`);
    if (raw.length === 0) {
      note("E_JSON", `journal line ${lineNo} is blank`);
      chainCheckable = false;
      allUsable = false;
      continue;
    }
    const text = decodeUtf8(raw);
    let v: Json;
    let canonical: boolean;
    try {
      if (text === null) throw new JsonError("invalid UTF-8", 0);
      ({ value: v, canonical } = parseStrictChecked(text));
    } catch (e) {
      if (!(e instanceof JsonError)) throw e;
      note("E_JSON", `journal line ${lineNo} is not strict JSON: ${e.message}`);
      chainCheckable = false;
      allUsable = false;
      continue;
    }
    // A canonical line's bytes are its canonical bytes (the parser saw it was canonical, and UTF-8
    // is one-to-one), so only a line that is not is canonicalized and encoded again.
    let canon = raw;
    if (!canonical) {
      const canonText = canonicalize(v);
      if (canonText !== text) canon = utf8Encode(canonText);
    }
    if (canon !== raw) note("E_NOT_CANONICAL", `journal line ${lineNo} is not canonical JSON`);
    const issues = validate("journalEntry", v);
    if (issues.length) note("E_SCHEMA", `journal line ${lineNo}${issues[0]!.pointer ? " at " + issues[0]!.pointer : ""}: ${issues[0]!.message}`);
    if (!isObject(v) || !isSafeInt(v.seq)) {
      chainCheckable = false;
      allUsable = false;
      continue;
    }
    const link = runMode ? v.run_prev : v.prev;
    const before = lines[lines.length - 1];
    // A link equal to the digest before it is a digest: the pattern is tested only otherwise.
    const linked = before !== undefined && link === before.digest;
    const linkUsable = linked || (typeof link === "string" && DIGEST_RE.test(link));
    // In run mode the links are run_seq/run_prev (§6.1): an unusable tenant prev is E_SCHEMA only.
    if (!runMode && !linkUsable) chainCheckable = false;
    const runOk = !runMode || v.run === j.run;
    if (32 * (lines.length + 1) > leaves.length) {
      const grown = new Uint8Array(2 * leaves.length);
      grown.set(leaves);
      leaves = grown;
    }
    leafHashInto(leaves, 32 * lines.length, canon);
    lines.push({
      seq: v.seq,
      digest: sha256Hex(canon),
      linked,
      first: before === undefined ? link : undefined,
      runSeq: runMode ? v.run_seq : undefined,
      runOk,
      run: runOk ? undefined : v.run,
      runPrevUsable: !runMode || linkUsable,
    });
  }
  if (tooLarge) {
    flush();
    return { allUsable: false, lines, leaves };
  }
  if (chainCheckable) {
    const broken = runMode ? checkRunChain(lines, j) : checkSeqChain(lines, j);
    if (broken) note("E_CHAIN_BROKEN", `chain broken: ${broken}`);
    const root = sha256HexOf(rootOfPackedHashes(leaves, lines.length));
    if (root !== j.entries_root) note("E_MERKLE_ROOT", `entries_root is ${j.entries_root}, the entries give ${root}`);
  }
  flush();
  return { allUsable, lines, leaves };
}

function checkSeqChain(lines: Line[], j: JsonObject): string | null {
  if (j.first_seq === 0 && j.first_prev !== ZERO_DIGEST) return "first_seq is 0 but first_prev is not 64 zeros";
  return linkCheck(lines, j, (l) => l.seq);
}

/** The links over seq/prev, or run_seq/run_prev (which Line.linked and Line.first hold). */
function linkCheck(lines: Line[], j: JsonObject, seqOf: (l: Line) => number): string | null {
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    const sq = seqOf(l);
    if (i === 0) {
      if (sq !== j.first_seq) return `first entry has seq ${sq}, first_seq is ${j.first_seq}`;
      if (l.first !== j.first_prev) return `first entry (seq ${sq}) has prev ${String(l.first)}, first_prev is ${j.first_prev}`;
    } else {
      const p = lines[i - 1]!;
      if (sq !== seqOf(p) + 1) return `seq ${sq} follows seq ${seqOf(p)}`;
      if (!l.linked) return `broken link at seq ${sq}`;
    }
  }
  if (lines.length !== j.count) return `${lines.length} entries, count is ${j.count}`;
  const last = lines[lines.length - 1];
  if (!last) return "no entries";
  if (seqOf(last) !== j.last_seq) return `last entry has seq ${seqOf(last)}, last_seq is ${j.last_seq}`;
  if (last.digest !== j.head) return `last entry's digest is not head`;
  return null;
}

function checkRunChain(lines: Line[], j: JsonObject): string | null {
  for (let i = 0; i < lines.length; i++) {
    const v = lines[i]!;
    if (!v.runOk) return `line ${i + 1} (seq ${v.seq}) belongs to run ${JSON.stringify(v.run)}, not ${JSON.stringify(j.run)}`;
    if (!isSafeInt(v.runSeq)) return `line ${i + 1} (seq ${v.seq}) has no usable run_seq`;
    if (!v.runPrevUsable) return `line ${i + 1} (seq ${v.seq}) has no usable run_prev`;
    if (i > 0 && !(lines[i]!.seq > lines[i - 1]!.seq)) return `seq ${lines[i]!.seq} does not increase`;
  }
  if (j.first_seq === 0 && j.first_prev !== ZERO_DIGEST) return "first_seq is 0 but first_prev is not 64 zeros";
  return linkCheck(lines, j, (l) => l.runSeq as number);
}

// ---------------------------------------------------------------------------------------------
// §6.2 checkpoint and inclusion proofs

async function checkCheckpoint(
  ctx: Ctx,
  noteBytes: Uint8Array,
  proofsBytes: Uint8Array,
  journal: JournalResult,
  opts: VerifyOptions,
  notePath: string,
  proofsPath: string,
): Promise<void> {
  // Note syntax.
  let note;
  try {
    note = parseSignedNote(noteBytes);
  } catch (e) {
    if (!(e instanceof NoteError)) throw e;
    ctx.add("E_CHECKPOINT", `checkpoint.note is not a signed note: ${e.message}`, notePath);
    return;
  }
  // Body syntax is part of the note's syntax (spec §6.2): checked before the signature, but
  // nothing in it is used until a trusted signature verified.
  let cp: Checkpoint;
  try {
    cp = parseCheckpointBody(note.body, (t) => parseTime(t) !== null);
  } catch (e) {
    if (!(e instanceof NoteError)) throw e;
    ctx.add("E_CHECKPOINT", `checkpoint body: ${e.message}`, notePath);
    return;
  }
  // Signature: Ed25519 trust keys valid at the verification time.
  const keys = opts.trust.filter((k) => k.algorithm === "ed25519" && keyValidAt(k, opts.at));
  let verifiedAny = false;
  let failedLine = false;
  for (const s of note.sigs) {
    const candidates = keys.filter((k) => bytesEqual(ed25519NoteKeyId(s.name, k.raw), s.keyId));
    if (candidates.length === 0) continue;
    let ok = false;
    for (const k of candidates) if (await verifySig(k, s.sig, note.bodyBytes)) ok = true;
    if (ok) verifiedAny = true;
    else failedLine = true;
  }
  if (failedLine || !verifiedAny) {
    ctx.add("E_CHECKPOINT_SIGNATURE", failedLine ? "a checkpoint signature line matching a trusted key does not verify" : "no checkpoint signature verifies under a trusted Ed25519 key", notePath);
    return;
  }
  // Size and head.
  const last = journal.lines[journal.lines.length - 1];
  if (!last) return;
  if (!(cp.size > BigInt(last.seq))) {
    ctx.add("E_CHECKPOINT", `checkpoint size ${cp.size} is not greater than the last line's seq ${last.seq}`, notePath);
    return;
  }
  if (cp.size === BigInt(last.seq) + 1n && cp.head !== last.digest) ctx.add("E_CHECKPOINT", "checkpoint head is not the last line's digest", notePath);
  // Proofs file.
  if (proofsBytes.length > MAX_DOC) {
    ctx.add("E_TOO_LARGE", "proofs.json is larger than 16 MiB", proofsPath);
    return;
  }
  let pv: Json;
  try {
    pv = parseStrictBytes(proofsBytes);
  } catch (e) {
    if (!(e instanceof JsonError)) throw e;
    ctx.add("E_CHECKPOINT", `proofs.json is not strict JSON: ${e.message}`, proofsPath);
    return;
  }
  const shape =
    isObject(pv) &&
    sameKeys(pv, ["tree_size", "root", "proofs"], []) &&
    isSafeInt(pv.tree_size) &&
    typeof pv.root === "string" &&
    DIGEST_RE.test(pv.root) &&
    Array.isArray(pv.proofs) &&
    pv.proofs.every(
      (p) => isObject(p) && sameKeys(p, ["index", "hashes"], []) && isSafeInt(p.index) && Array.isArray(p.hashes) && p.hashes.every((h) => typeof h === "string" && DIGEST_RE.test(h)),
    );
  if (!shape || !isObject(pv) || !bytesEqual(canonicalBytes(pv), proofsBytes)) {
    ctx.add("E_CHECKPOINT", "proofs.json is not canonical JSON {tree_size, root, proofs: [{index, hashes}]}", proofsPath);
    return;
  }
  const rootHex = sha256HexOf(cp.root);
  if (BigInt(pv.tree_size as number) !== cp.size || pv.root !== rootHex) {
    ctx.add("E_CHECKPOINT", "proofs.json tree_size/root are not the checkpoint's size/root", proofsPath);
    return;
  }
  // Proofs.
  const proofs = pv.proofs as JsonObject[];
  const size = pv.tree_size as number;
  if (proofs.length !== journal.lines.length) {
    ctx.add("E_INCLUSION_PROOF", `${proofs.length} proofs for ${journal.lines.length} journal lines`, proofsPath);
    return;
  }
  for (let i = 0; i < proofs.length; i++) {
    const p = proofs[i]!;
    const line = journal.lines[i]!;
    const hashes = (p.hashes as string[]).map((h) => hexToBytesStrict(h)!);
    if (p.index !== line.seq || !verifyInclusionHash(line.seq, size, journal.leaves.subarray(32 * i, 32 * i + 32), hashes, cp.root)) {
      ctx.add("E_INCLUSION_PROOF", `proof ${i} does not prove the line with seq ${line.seq} in the checkpoint`, proofsPath);
      return;
    }
  }
}

export { canonicalize, decodeUtf8 };
