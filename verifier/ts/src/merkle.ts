// RFC 9162 §2.1 Merkle Tree Hash and inclusion-proof verification.
import { sha256, sha256Into } from "./util.js";

const LEAF = new Uint8Array([0]);
const NODE = new Uint8Array([1]);

export function leafHash(data: Uint8Array): Uint8Array {
  return sha256(LEAF, data);
}
export function nodeHash(l: Uint8Array, r: Uint8Array): Uint8Array {
  return sha256(NODE, l, r);
}

/** Writes the leaf hash of `data` to out[at..at+32]. */
export function leafHashInto(out: Uint8Array, at: number, data: Uint8Array): void {
  sha256Into(out, at, LEAF, data);
}

/**
 * The root over n leaf hashes packed in `packed` (32 bytes each), as rootOfHashes computes it,
 * one level at a time in a copy: each node's two children are adjacent, so it is one hash of
 * 0x01 followed by 64 bytes, written over the level below, and nothing is allocated per node.
 */
export function rootOfPackedHashes(packed: Uint8Array, n: number): Uint8Array {
  if (n === 0) return sha256(new Uint8Array(0));
  const buf = packed.slice(0, 32 * n);
  let m = n;
  while (m > 1) {
    const half = m >> 1;
    for (let k = 0; k < half; k++) sha256Into(buf, 32 * k, NODE, buf.subarray(64 * k, 64 * k + 64));
    if (m % 2 === 1) buf.copyWithin(32 * half, 32 * (m - 1), 32 * m);
    m = half + (m % 2);
  }
  return buf.slice(0, 32);
}

/** MTH over leaf data; empty tree is SHA-256(""). Odd nodes are carried up, never duplicated. */
export function merkleRoot(leaves: Uint8Array[]): Uint8Array {
  return rootOfHashes(leaves.map(leafHash));
}

export function rootOfHashes(hashes: Uint8Array[]): Uint8Array {
  if (hashes.length === 0) return sha256(new Uint8Array(0));
  // Bottom-up pairing carrying the odd node gives the same tree as the "largest power of two
  // smaller than n" recursion of RFC 9162.
  let level = hashes;
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i + 1 < level.length; i += 2) next.push(nodeHash(level[i]!, level[i + 1]!));
    if (level.length % 2 === 1) next.push(level[level.length - 1]!);
    level = next;
  }
  return level[0]!;
}

/** RFC 9162 §2.1.3.2. Proofs longer than 64 hashes are refused before hashing. */
export function verifyInclusion(
  index: number,
  size: number,
  leaf: Uint8Array,
  proof: Uint8Array[],
  root: Uint8Array,
): boolean {
  return verifyInclusionHash(index, size, leafHash(leaf), proof, root);
}

export function verifyInclusionHash(
  index: number,
  size: number,
  leafHashBytes: Uint8Array,
  proof: Uint8Array[],
  root: Uint8Array,
): boolean {
  if (!(Number.isSafeInteger(index) && Number.isSafeInteger(size) && index >= 0 && index < size) || proof.length > 64) return false;
  if (leafHashBytes.length !== 32 || root.length !== 32) return false;
  let fn = BigInt(index);
  let sn = BigInt(size - 1);
  let r = leafHashBytes;
  for (const p of proof) {
    if (p.length !== 32) return false;
    if (sn === 0n) return false;
    if ((fn & 1n) === 1n || fn === sn) {
      r = nodeHash(p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  if (sn !== 0n) return false;
  return ctEqual(r, root);
}

export function ctEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}
