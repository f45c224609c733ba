// C2SP signed notes (https://c2sp.org/signed-note) and Clyra's tlog checkpoint body
// (https://c2sp.org/tlog-checkpoint plus exactly the `time` and `head` extension lines), bundle.md §6.2.
import { base64DecodeStrict, sha256, concatBytes, DIGEST_RE } from "./util.js";
import { decodeUtf8, utf8Encode } from "./json.js";

export const MAX_NOTE = 1024 * 1024;
const EM_DASH = "\u2014";

export interface NoteSignature {
  name: string;
  keyId: Uint8Array; // 4 bytes
  sig: Uint8Array;
}
export interface SignedNote {
  /** The signed text: the body including its final LF. */
  body: string;
  bodyBytes: Uint8Array;
  sigs: NoteSignature[];
}

export class NoteError extends Error {}

/**
 * Strictness choices: "no control characters but LF" is taken as Unicode general category Cc
 * (C0, DEL, C1) other than U+000A; "whitespace" in names as JavaScript's \s (Unicode White_Space);
 * a signature's decoded bytes must hold at least the 4-byte key ID and one byte.
 */
export function parseSignedNote(bytes: Uint8Array): SignedNote {
  if (bytes.length > MAX_NOTE) throw new NoteError("note larger than 1 MiB");
  const text = decodeUtf8(bytes);
  if (text === null) throw new NoteError("note is not UTF-8");
  if (/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/.test(text)) throw new NoteError("control character in note");
  if (text.charCodeAt(0) === 0xfeff) throw new NoteError("byte order mark");
  const split = text.lastIndexOf("\n\n");
  if (split < 0) throw new NoteError("no blank line before the signatures");
  const body = text.slice(0, split + 1);
  const sigText = text.slice(split + 2);
  if (body.length === 0 || body === "\n") throw new NoteError("empty body");
  if (!sigText.endsWith("\n")) throw new NoteError("signature block does not end with a newline");
  const lines = sigText.slice(0, -1).split("\n");
  if (lines.length < 1 || lines.length > 100) throw new NoteError(`${lines.length} signature lines (1 to 100 allowed)`);
  const sigs: NoteSignature[] = [];
  for (const line of lines) {
    if (!line.startsWith(EM_DASH + " ")) throw new NoteError("signature line does not start with an em dash and a space");
    const rest = line.slice(2);
    const sp = rest.indexOf(" ");
    if (sp < 0) throw new NoteError("signature line has no name and signature");
    const name = rest.slice(0, sp);
    const b64 = rest.slice(sp + 1);
    if (name.length === 0 || /\s/.test(name) || name.includes("+")) throw new NoteError("invalid signer name");
    const raw = base64DecodeStrict(b64);
    if (raw === null) throw new NoteError("signature is not standard padded base64");
    if (raw.length < 5) throw new NoteError("signature too short");
    sigs.push({ name, keyId: raw.slice(0, 4), sig: raw.slice(4) });
  }
  return { body, bodyBytes: utf8Encode(body), sigs };
}

/** Key ID of an Ed25519 note key: SHA-256(name || 0x0A || 0x01 || 32-byte key)[:4]. */
export function ed25519NoteKeyId(name: string, pub: Uint8Array): Uint8Array {
  return sha256(concatBytes(utf8Encode(name), new Uint8Array([0x0a, 0x01]), pub)).slice(0, 4);
}

export interface Checkpoint {
  origin: string;
  size: bigint;
  root: Uint8Array;
  time: string;
  head: string;
}

const TIMESTAMP_RE = /^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?Z$/;

export function parseCheckpointBody(body: string, validDate: (s: string) => boolean): Checkpoint {
  if (!body.endsWith("\n")) throw new NoteError("checkpoint body does not end with a newline");
  const lines = body.slice(0, -1).split("\n");
  if (lines.length !== 5) throw new NoteError(`checkpoint has ${lines.length} lines (origin, size, root, time, head expected)`);
  const [origin, sizeS, rootS, timeL, headL] = lines as [string, string, string, string, string];
  if (origin.length === 0) throw new NoteError("empty origin");
  if (!/^(0|[1-9][0-9]*)$/.test(sizeS)) throw new NoteError("size is not a decimal without leading zeros");
  const root = base64DecodeStrict(rootS);
  if (root === null || root.length !== 32) throw new NoteError("root is not base64 of 32 bytes");
  if (!timeL.startsWith("time ")) throw new NoteError("missing time line");
  const time = timeL.slice(5);
  if (!TIMESTAMP_RE.test(time) || !validDate(time)) throw new NoteError("time is not a timestamp");
  if (!headL.startsWith("head ")) throw new NoteError("missing head line");
  const head = headL.slice(5);
  if (!DIGEST_RE.test(head)) throw new NoteError("head is not a digest");
  return { origin, size: BigInt(sizeS), root, time, head };
}
