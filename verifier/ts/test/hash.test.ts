// The Node accelerators (node.ts: node:crypto SHA-256, zlib CRC-32) give the portable
// implementations' results, and the packed Merkle root equals the list one.
import { test } from "node:test";
import assert from "node:assert/strict";
import "../src/node.js"; // installs the accelerators
import { sha256, sha256Hex, sha256Into, useSha256, useSha256Into } from "../src/util.js";
import { crc32, useCrc32 } from "../src/zip.js";
import { leafHash, leafHashInto, rootOfHashes, rootOfPackedHashes } from "../src/merkle.js";

function bytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function sample() {
  const inputs = [0, 1, 31, 32, 55, 56, 63, 64, 65, 1000, 5000].map((n, i) => bytes(n, i + 1));
  const out: unknown[] = [];
  for (const a of inputs) {
    out.push(sha256Hex(a), sha256(a), sha256(a, a), sha256(a, inputs[3]!, a), crc32(a));
    const into = new Uint8Array(40);
    sha256Into(into, 5, inputs[1]!, a);
    out.push(into);
  }
  return out;
}

test("node:crypto and zlib give the portable results", () => {
  const fast = sample();
  useSha256(null);
  useSha256Into(null);
  useCrc32(null);
  const portable = sample();
  assert.deepEqual(fast.map((x) => (x instanceof Uint8Array ? Buffer.from(x).toString("hex") : x)), portable.map((x) => (x instanceof Uint8Array ? Buffer.from(x).toString("hex") : x)));
});

test("sha256Into reads its input before writing over it", () => {
  const buf = bytes(96, 7);
  const want = sha256(new Uint8Array([1]), buf.subarray(0, 64));
  sha256Into(buf, 0, new Uint8Array([1]), buf.subarray(0, 64));
  assert.deepEqual(buf.subarray(0, 32), want);
});

test("the packed Merkle root equals the list root for every size up to 70", () => {
  for (let n = 0; n <= 70; n++) {
    const leaves = Array.from({ length: n }, (_, i) => bytes(1 + (i % 9), i + 100));
    const packed = new Uint8Array(32 * n + 64); // room to spare: only the first n are used
    leaves.forEach((l, i) => leafHashInto(packed, 32 * i, l));
    const copy = packed.slice();
    assert.deepEqual(rootOfPackedHashes(packed, n), rootOfHashes(leaves.map(leafHash)), `n = ${n}`);
    assert.deepEqual(packed, copy, "the leaves are left as they were");
  }
});
