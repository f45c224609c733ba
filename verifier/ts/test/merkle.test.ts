import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { merkleRoot, verifyInclusionHash, verifyInclusion, leafHash } from "../src/merkle.js";
import { bytesToHex } from "../src/util.js";
import { VEC } from "./helpers.js";

const LEAVES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"].map((h) =>
  Uint8Array.from(Buffer.from(h, "hex")),
);
const ROOTS = [
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
  "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
  "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
  "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
  "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
  "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
  "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

test("RFC 6962 reference roots for sizes 0..8", () => {
  for (let n = 0; n <= 8; n++) assert.equal(bytesToHex(merkleRoot(LEAVES.slice(0, n))), ROOTS[n], `size ${n}`);
});

const b64 = (s: string) => Uint8Array.from(Buffer.from(s, "base64"));

function* probes(dir: string): Generator<string> {
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) yield* probes(p);
    else if (f.endsWith(".json")) yield p;
  }
}

test("transparency-dev inclusion probes", () => {
  let n = 0;
  for (const p of probes(join(VEC, "rfc6962", "inclusion"))) {
    const v = JSON.parse(readFileSync(p, "utf8"));
    const ok = verifyInclusionHash(v.leafIdx, v.treeSize, b64(v.leafHash ?? ""), (v.proof ?? []).map(b64), b64(v.root ?? ""));
    assert.equal(ok, !v.wantErr, `${p}: ${v.desc}`);
    n++;
  }
  assert.ok(n > 50, `${n} probes`);
});

test("inclusion of every leaf of trees up to 8, proofs built by hand", () => {
  // Build audit paths with RFC 9162 §2.1.3.1 PATH(m, D[n]) and check verification.
  const path = (m: number, d: Uint8Array[]): Uint8Array[] => {
    if (d.length <= 1) return [];
    let k = 1;
    while (k * 2 < d.length) k *= 2;
    return m < k ? [...path(m, d.slice(0, k)), merkleRoot(d.slice(k))] : [...path(m - k, d.slice(k)), merkleRoot(d.slice(0, k))];
  };
  for (let n = 1; n <= 8; n++) {
    const d = LEAVES.slice(0, n);
    const root = merkleRoot(d);
    for (let m = 0; m < n; m++) {
      assert.ok(verifyInclusion(m, n, d[m]!, path(m, d), root), `leaf ${m} of ${n}`);
      if (n > 1) assert.ok(!verifyInclusion((m + 1) % n, n, d[m]!, path(m, d), root), `leaf ${m} of ${n} at the wrong index`);
    }
  }
  assert.equal(bytesToHex(leafHash(new Uint8Array())), "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
});
