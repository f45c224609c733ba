// Small byte helpers shared by the core (no Node APIs: the core must run in a browser).
import { sha256 as nobleSha256 } from "@noble/hashes/sha2.js";
import { bytesToHex } from "@noble/hashes/utils.js";

/** SHA-256 of the concatenation of one to three byte strings (no copy is made to join them). */
export type Sha256 = (a: Uint8Array, b?: Uint8Array, c?: Uint8Array) => Uint8Array;

const nobleImpl: Sha256 = (a, b, c) => {
  if (b === undefined) return nobleSha256(a);
  const h = nobleSha256.create().update(a).update(b);
  if (c !== undefined) h.update(c);
  return h.digest();
};
let sha256Impl: Sha256 = nobleImpl;
let sha256HexImpl: ((b: Uint8Array) => string) | null = null;

export function sha256(a: Uint8Array, b?: Uint8Array, c?: Uint8Array): Uint8Array {
  return sha256Impl(a, b, c);
}

/**
 * Lets the host supply a native SHA-256 (node.ts passes node:crypto's, several times faster than
 * pure JS on large bundles), optionally with a direct hex form; null restores the portable
 * implementation (@noble/hashes), which the core uses by default, so a browser needs nothing.
 */
export function useSha256(impl: Sha256 | null, hexImpl: ((b: Uint8Array) => string) | null = null): void {
  sha256Impl = impl ?? nobleImpl;
  sha256HexImpl = impl === null ? null : hexImpl;
}

/** Writes SHA-256(a || b) to out[at..at+32]; a and b may overlap out (they are read first). */
export type Sha256Into = (out: Uint8Array, at: number, a: Uint8Array, b?: Uint8Array) => void;
const portableInto: Sha256Into = (out, at, a, b) => out.set(sha256(a, b), at);
let sha256IntoImpl: Sha256Into = portableInto;

export function sha256Into(out: Uint8Array, at: number, a: Uint8Array, b?: Uint8Array): void {
  sha256IntoImpl(out, at, a, b);
}

/** The host's native form of sha256Into (it allocates nothing per hash); null restores the default. */
export function useSha256Into(impl: Sha256Into | null): void {
  sha256IntoImpl = impl ?? portableInto;
}

export function sha256Hex(b: Uint8Array): string {
  return sha256HexImpl !== null ? sha256HexImpl(b) : bytesToHex(sha256(b));
}
export { bytesToHex };

export const ZERO_DIGEST = "0".repeat(64);
export const DIGEST_RE = /^[0-9a-f]{64}$/;

export function hexToBytesStrict(h: string): Uint8Array | null {
  if (!/^(?:[0-9a-f]{2})*$/.test(h)) return null;
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Standard, padded base64 (RFC 4648 §4): the only canonical encoding (bundle.md §5). */
export function base64Encode(b: Uint8Array): string {
  let out = "";
  let i = 0;
  for (; i + 2 < b.length; i += 3) {
    const n = (b[i]! << 16) | (b[i + 1]! << 8) | b[i + 2]!;
    out += B64[n >> 18]! + B64[(n >> 12) & 63]! + B64[(n >> 6) & 63]! + B64[n & 63]!;
  }
  const r = b.length - i;
  if (r === 1) {
    const n = b[i]! << 16;
    out += B64[n >> 18]! + B64[(n >> 12) & 63]! + "==";
  } else if (r === 2) {
    const n = (b[i]! << 16) | (b[i + 1]! << 8);
    out += B64[n >> 18]! + B64[(n >> 12) & 63]! + B64[(n >> 6) & 63]! + "=";
  }
  return out;
}

/**
 * Lenient DSSE decoding (bundle.md §5, docs/evidence-kernel.md: "both standard and URL-safe base64
 * are accepted (padded or not)"). Alphabets are not mixed. Padding may be complete, partial or
 * absent (`QQ==`, `QQ=`, `QQ`) but never more than the length needs; the unused low bits of the
 * last character must be zero (`QR==` is invalid). Anything else is null (E_SIGNATURE). Every
 * spelling but standard padded base64 is then E_NOT_CANONICAL (re-encode and compare).
 */
export function base64DecodeLenient(s: string): Uint8Array | null {
  let alpha: string;
  if (/^[A-Za-z0-9+/]*={0,2}$/.test(s)) alpha = B64;
  else if (/^[A-Za-z0-9\-_]*={0,2}$/.test(s)) alpha = B64.slice(0, 62) + "-_";
  else return null;
  const body = s.replace(/=+$/, "");
  const pad = s.length - body.length;
  const rem = body.length % 4;
  if (rem === 1 || pad > (4 - rem) % 4) return null;
  // 2 leftover characters carry 12 bits for one byte, 3 carry 18 for two: 4 or 2 unused bits.
  const unused = rem === 2 ? 4 : rem === 3 ? 2 : 0;
  if (unused && (alpha.indexOf(body[body.length - 1]!) & ((1 << unused) - 1)) !== 0) return null;
  return decodeWith(body, alpha);
}

/** Strict standard padded base64 with zero trailing bits (signed notes, bundle.md §6.2). */
export function base64DecodeStrict(s: string): Uint8Array | null {
  if (s.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(s)) return null;
  const body = s.replace(/=+$/, "");
  const out = decodeWith(body, B64);
  if (out === null || base64Encode(out) !== s) return null;
  return out;
}

function decodeWith(body: string, alpha: string): Uint8Array | null {
  const out = new Uint8Array(Math.floor((body.length * 3) / 4));
  let acc = 0;
  let bits = 0;
  let o = 0;
  for (let i = 0; i < body.length; i++) {
    const v = alpha.indexOf(body[i]!);
    if (v < 0) return null;
    acc = ((acc << 6) | v) & 0xffffff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (acc >> bits) & 0xff;
    }
  }
  return out.subarray(0, o);
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Compare two strings as UTF-8 byte sequences (the spec's sort order for paths and names). */
export function compareUtf8(a: string, b: string): number {
  // Code point order equals UTF-8 byte order; UTF-16 code-unit order does not (astral vs U+E000+).
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done) return y.done ? 0 : -1;
    if (y.done) return 1;
    const cx = x.value.codePointAt(0)!;
    const cy = y.value.codePointAt(0)!;
    if (cx !== cy) return cx < cy ? -1 : 1;
  }
}
