import { test } from "node:test";
import assert from "node:assert/strict";
import { base64DecodeLenient } from "../src/util.js";

// bundle.md §5: standard or URL-safe (not mixed), complete, partial or no padding but never more
// than the length needs, zero unused bits. Found by the cross-verifier mutants (a dropped `=`).
test("lenient DSSE base64", () => {
  const hex = (s: string) => {
    const b = base64DecodeLenient(s);
    return b === null ? null : Buffer.from(b).toString("hex");
  };
  for (const [s, want] of [
    ["", ""],
    ["QQ==", "41"],
    ["QQ=", "41"],
    ["QQ", "41"],
    ["QUJDRA=", "41424344"],
    ["QUJD", "414243"],
    ["AAA=", "0000"],
    ["+/8", "fbff"],
    ["-_8=", "fbff"],
  ] as const)
    assert.equal(hex(s), want, s);
  for (const s of ["Q", "=", "==", "QQ===", "QUFB=", "QQ=A", "QR==", "QR", "+/9", "AAB=", "+-8=", "QQ ==", "Q\nQ=="]) assert.equal(hex(s), null, s);
});
