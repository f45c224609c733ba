// Trust file keys and signature verification.
//
// Crypto choices (each pinned by the spec and docs/evidence-kernel.md):
// - Ed25519: strict verification like ed25519-dalek `verify_strict`. noble's `zip215: false`
//   rejects non-canonical encodings of A and R, s >= L and small-order A; on top of that we reject
//   a small-order R and check the cofactorless equation [s]B = R + [k]A by re-encoding, which is
//   what verify_strict does (noble alone checks the cofactored equation).
// - ECDSA P-256: SHA-256 prehash, ASN.1 DER signatures only, high and low s both verify here
//   (`lowS: false`); the bundle's closed attestation (bundle.md §5) then separately requires
//   s <= n/2 (see isHighS). Public keys must be uncompressed points in canonical SPKI DER.
// - RSA-PSS (2048 verify-only, 3072, 4096): WebCrypto, MGF1-SHA-256, salt length 32.
import { ed25519 } from "@noble/curves/ed25519.js";
import { p256 } from "@noble/curves/nist.js";
import { sha512 } from "@noble/hashes/sha2.js";
import { sha256Hex, base64DecodeStrict, concatBytes } from "./util.js";
import { bytesEqual, type Json, isObject } from "./json.js";
import { validate } from "./schema.js";
import { parseTime } from "./time.js";

export type Algorithm =
  | "ed25519"
  | "ecdsa-sha2-256-nistp256"
  | "rsa-sign-pss-2048-sha256"
  | "rsa-sign-pss-3072-sha256"
  | "rsa-sign-pss-4096-sha256";

export interface TrustedKey {
  keyid: string;
  algorithm: Algorithm;
  /** Ed25519: 32 raw bytes; P-256: 65-byte uncompressed point; RSA: the SPKI DER. */
  raw: Uint8Array;
  spki: Uint8Array;
  notBefore: bigint;
  notAfter: bigint | null;
  rsaKey?: CryptoKey;
}

export class TrustError extends Error {}

const ED25519_SPKI_PREFIX = new Uint8Array([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00]);
const P256_SPKI_PREFIX = new Uint8Array([
  0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d,
  0x03, 0x01, 0x07, 0x03, 0x42, 0x00, 0x04,
]);

function pemToDer(pem: string): Uint8Array {
  const m = /^-----BEGIN PUBLIC KEY-----\r?\n([A-Za-z0-9+/=\r\n]+?)\r?\n?-----END PUBLIC KEY-----\r?\n?$/.exec(pem);
  if (!m) throw new TrustError("public_key is not a PEM PUBLIC KEY");
  const der = base64DecodeStrict(m[1]!.replace(/\r?\n/g, ""));
  if (!der) throw new TrustError("public_key PEM has invalid base64");
  return der;
}

/** Parse and check a trust file (trust.schema.json plus the rules its description lists). */
export async function loadTrust(doc: Json): Promise<TrustedKey[]> {
  const issues = validate("trust", doc);
  if (issues.length) throw new TrustError(`trust file does not match its schema: ${issues.map((i) => `${i.pointer} ${i.message}`).join("; ")}`);
  if (!isObject(doc) || !Array.isArray(doc.keys)) throw new TrustError("trust file is not an object");
  const out: TrustedKey[] = [];
  const seen = new Set<string>();
  for (const k of doc.keys) {
    if (!isObject(k)) throw new TrustError("key is not an object");
    const keyid = k.keyid as string;
    const alg = k.algorithm as Algorithm;
    const spki = pemToDer(k.public_key as string);
    if (sha256Hex(spki) !== keyid) throw new TrustError(`keyid ${keyid} is not the SHA-256 of its public key`);
    if (seen.has(keyid)) throw new TrustError(`keyid ${keyid} listed twice`);
    seen.add(keyid);
    const notBefore = parseTime(k.not_before as string);
    const notAfter = typeof k.not_after === "string" ? parseTime(k.not_after) : null;
    if (notBefore === null || (typeof k.not_after === "string" && notAfter === null)) throw new TrustError(`key ${keyid}: bad validity time`);
    if (notAfter !== null && !(notBefore < notAfter)) throw new TrustError(`key ${keyid}: not_before is not before not_after`);
    const key: TrustedKey = { keyid, algorithm: alg, raw: spki, spki, notBefore, notAfter };
    if (alg === "ed25519") {
      if (spki.length !== 44 || !bytesEqual(spki.subarray(0, 12), ED25519_SPKI_PREFIX)) throw new TrustError(`key ${keyid} is not an Ed25519 key`);
      key.raw = spki.slice(12);
    } else if (alg === "ecdsa-sha2-256-nistp256") {
      if (spki.length !== 91 || !bytesEqual(spki.subarray(0, 27), P256_SPKI_PREFIX)) throw new TrustError(`key ${keyid} is not an uncompressed P-256 key`);
      key.raw = spki.slice(26);
      try {
        p256.Point.fromBytes(key.raw).assertValidity();
      } catch {
        throw new TrustError(`key ${keyid} is not a P-256 point`);
      }
    } else {
      const bits = Number(alg.split("-")[3]);
      let ck: CryptoKey;
      try {
        ck = await globalThis.crypto.subtle.importKey("spki", spki as BufferSource, { name: "RSA-PSS", hash: "SHA-256" }, false, ["verify"]);
      } catch {
        throw new TrustError(`key ${keyid} is not an RSA key`);
      }
      const ml = (ck.algorithm as RsaHashedKeyAlgorithm).modulusLength;
      if (ml !== bits) throw new TrustError(`key ${keyid}: RSA modulus of ${ml} bits, algorithm says ${bits}`);
      key.rsaKey = ck;
    }
    out.push(key);
  }
  return out;
}

/** not_before <= t < not_after (docs/evidence-kernel.md "The trust file"). */
export function keyValidAt(k: TrustedKey, t: bigint): boolean {
  return k.notBefore <= t && (k.notAfter === null || t < k.notAfter);
}

const L = 2n ** 252n + 27742317777372353535851937790883648493n;

function bytesToNumberLE(b: Uint8Array): bigint {
  let n = 0n;
  for (let i = b.length - 1; i >= 0; i--) n = (n << 8n) | BigInt(b[i]!);
  return n;
}

export function ed25519VerifyStrict(sig: Uint8Array, msg: Uint8Array, pub: Uint8Array): boolean {
  if (sig.length !== 64 || pub.length !== 32) return false;
  try {
    if (!ed25519.verify(sig, msg, pub, { zip215: false })) return false;
    const Point = ed25519.Point;
    const R = Point.fromBytes(sig.subarray(0, 32), false);
    if (R.isSmallOrder()) return false;
    const A = Point.fromBytes(pub, false);
    const s = bytesToNumberLE(sig.subarray(32));
    const k = bytesToNumberLE(sha512(concatBytes(sig.subarray(0, 32), pub, msg))) % L;
    const Rp = Point.BASE.multiplyUnsafe(s).subtract(A.multiplyUnsafe(k));
    return bytesEqual(Rp.toBytes(), sig.subarray(0, 32));
  } catch {
    return false;
  }
}

export function p256Verify(sig: Uint8Array, msg: Uint8Array, pub: Uint8Array): boolean {
  try {
    return p256.verify(sig, msg, pub, { prehash: true, lowS: false, format: "der" });
  } catch {
    return false;
  }
}

const P256_HALF_N = p256.Point.Fn.ORDER >> 1n;
/** bundle.md §5: an ECDSA P-256 signature in a bundle must have s <= n/2. */
export function isHighS(sig: Uint8Array): boolean {
  try {
    return p256.Signature.fromBytes(sig, "der").s > P256_HALF_N;
  } catch {
    return true;
  }
}

export async function verifySig(k: TrustedKey, sig: Uint8Array, msg: Uint8Array): Promise<boolean> {
  switch (k.algorithm) {
    case "ed25519":
      return ed25519VerifyStrict(sig, msg, k.raw);
    case "ecdsa-sha2-256-nistp256":
      return p256Verify(sig, msg, k.raw);
    default:
      try {
        return await globalThis.crypto.subtle.verify({ name: "RSA-PSS", saltLength: 32 }, k.rsaKey!, sig as BufferSource, msg as BufferSource);
      } catch {
        return false;
      }
  }
}
