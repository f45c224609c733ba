import { test } from "node:test";
import assert from "node:assert/strict";
import { parseSignedNote, parseCheckpointBody, ed25519NoteKeyId, NoteError } from "../src/note.js";
import { ed25519VerifyStrict } from "../src/keys.js";
import { readZip } from "../src/zip.js";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { SPEC } from "./helpers.js";
import { base64DecodeStrict } from "../src/util.js";

const enc = (s: string) => new TextEncoder().encode(s);
const TRUSTED_PUB = base64DecodeStrict("MCowBQYDK2VwAyEAp0gvIIq2NqddqVbIGTukAk1eRTmDwsdzkQC4BtC/Z48=")!.slice(12);

function vectorNote(): Uint8Array {
  const z = readZip(new Uint8Array(readFileSync(join(SPEC, "def/test-vectors/run_chain_checkpoint/bundle.zip"))));
  assert.ok("files" in z);
  return z.files.read("checkpoint.note")!;
}

test("the vector checkpoint parses, its key ID matches and its signature verifies", () => {
  const note = parseSignedNote(vectorNote());
  assert.equal(note.sigs.length, 1);
  const s = note.sigs[0]!;
  assert.equal(s.name, "clyra.example/acme");
  assert.deepEqual(ed25519NoteKeyId(s.name, TRUSTED_PUB), s.keyId);
  assert.ok(ed25519VerifyStrict(s.sig, note.bodyBytes, TRUSTED_PUB));
  const cp = parseCheckpointBody(note.body, () => true);
  assert.equal(cp.origin, "clyra.example/acme");
  assert.equal(cp.size, 12n);
  assert.equal(cp.time, "2026-11-24T09:59:00Z");
});

test("the body is split at the last blank line", () => {
  const sig = "— a " + Buffer.from(new Uint8Array(68)).toString("base64") + "\n";
  const n = parseSignedNote(enc("x\n\ny\n\n" + sig));
  assert.equal(n.body, "x\n\ny\n");
});

const SIG = Buffer.from(new Uint8Array(68).fill(7)).toString("base64");
const bad: [string, string][] = [
  ["body\n" + `— a ${SIG}\n`, "no blank line"],
  ["body\n\n", "no signature lines"],
  [`body\n\n— a ${SIG}`, "no final newline"],
  [`body\n\n- a ${SIG}\n`, "hyphen instead of em dash"],
  [`body\n\n— a b ${SIG}\n`, "space in name"],
  [`body\n\n— a+b ${SIG}\n`, "plus in name"],
  [`body\n\n—  ${SIG}\n`, "empty name"],
  [`body\n\n— a ${SIG.replace(/=*$/, "")}\n`, "unpadded base64"],
  [`body\n\n— a ${SIG.replace(/\+/g, "-").replace(/\//g, "_")}x\n`, "url-safe base64"],
  [`bo\tdy\n\n— a ${SIG}\n`, "control character"],
  [`body\r\n\n— a ${SIG}\n`, "carriage return"],
  [`body\n\n— a AAAA\n`, "signature shorter than a key ID and one byte"],
  [`body\n\n` + `— a ${SIG}\n`.repeat(101), "101 signature lines"],
];
for (const [text, why] of bad) {
  test(`signed note rejects: ${why}`, () => {
    assert.throws(() => parseSignedNote(enc(text)), NoteError);
  });
}

test("signed note base64 must have zero trailing bits", () => {
  // "AB==" decodes to one byte with non-zero trailing bits; the canonical form is "AA==".
  const raw = Buffer.from(new Uint8Array(67).fill(1)).toString("base64"); // 67 bytes -> ends with "="? ensure padding
  assert.ok(raw.endsWith("="));
  const tweaked = raw.slice(0, -2) + (raw[raw.length - 2] === "B" ? "C" : "B") + "=";
  assert.notEqual(tweaked, raw);
  assert.throws(() => parseSignedNote(enc(`body\n\n— a ${tweaked}\n`)), NoteError);
});

test("signed note of 100 lines and over 1 MiB", () => {
  parseSignedNote(enc(`body\n\n` + `— a ${SIG}\n`.repeat(100)));
  assert.throws(() => parseSignedNote(enc("x".repeat(1024 * 1024) + `\n\n— a ${SIG}\n`)), NoteError);
});

const goodBody = "o\n12\n" + Buffer.alloc(32).toString("base64") + "\ntime 2026-11-24T09:59:00Z\nhead " + "0".repeat(64) + "\n";
test("checkpoint body parses", () => {
  assert.equal(parseCheckpointBody(goodBody, () => true).size, 12n);
});
const badBodies: [string, string][] = [
  [goodBody.replace("\n12\n", "\n012\n"), "leading zero size"],
  [goodBody.replace("\n12\n", "\n-1\n"), "negative size"],
  [goodBody.replace("time ", "tim "), "no time line"],
  [goodBody.replace("head " + "0".repeat(64), "head " + "0".repeat(63)), "short head"],
  [goodBody.replace("2026-11-24T09:59:00Z", "2026-11-24T09:59:00+00:00"), "offset instead of Z"],
  [goodBody + "extra\n", "a third extension line"],
  [goodBody.replace(Buffer.alloc(32).toString("base64"), Buffer.alloc(31).toString("base64")), "31-byte root"],
  ["\n" + goodBody.slice(goodBody.indexOf("\n") + 1), "empty origin"],
];
for (const [body, why] of badBodies) {
  test(`checkpoint body rejects: ${why}`, () => {
    assert.throws(() => parseCheckpointBody(body, () => true), NoteError);
  });
}
