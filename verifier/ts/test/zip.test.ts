import { test } from "node:test";
import assert from "node:assert/strict";
import { readZip, crc32, ContainerFatal } from "../src/zip.js";

interface E { name: string; data: string; crc?: number; mode?: number; time?: number }
function zip(entries: E[]): Uint8Array {
  const enc = new TextEncoder();
  const parts: number[] = [];
  const cd: number[] = [];
  const u16 = (a: number[], v: number) => a.push(v & 0xff, (v >> 8) & 0xff);
  const u32 = (a: number[], v: number) => a.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff);
  for (const e of entries) {
    const n = enc.encode(e.name);
    const d = enc.encode(e.data);
    const crc = e.crc ?? crc32(d);
    const off = parts.length;
    u32(parts, 0x04034b50); u16(parts, 20); u16(parts, 0x0800); u16(parts, 0); u16(parts, e.time ?? 0); u16(parts, 0x21);
    u32(parts, crc); u32(parts, d.length); u32(parts, d.length); u16(parts, n.length); u16(parts, 0);
    parts.push(...n, ...d);
    u32(cd, 0x02014b50); u16(cd, 0x0314); u16(cd, 20); u16(cd, 0x0800); u16(cd, 0); u16(cd, e.time ?? 0); u16(cd, 0x21);
    u32(cd, crc); u32(cd, d.length); u32(cd, d.length); u16(cd, n.length); u16(cd, 0); u16(cd, 0); u16(cd, 0); u16(cd, 0);
    u32(cd, ((e.mode ?? 0o100644) << 16) >>> 0); u32(cd, off);
    cd.push(...n);
  }
  const cdOff = parts.length;
  const eocd: number[] = [];
  u32(eocd, 0x06054b50); u16(eocd, 0); u16(eocd, 0); u16(eocd, entries.length); u16(eocd, entries.length);
  u32(eocd, cd.length); u32(eocd, cdOff); u16(eocd, 0);
  return Uint8Array.from([...parts, ...cd, ...eocd]);
}

const codeOf = (b: Uint8Array) => {
  const r = readZip(b);
  return "fatal" in r ? r.fatal[0]!.code : "ok";
};

test("canonical ZIP round trip", () => {
  const r = readZip(zip([{ name: "a.txt", data: "hello" }, { name: "b/c", data: "" }]));
  assert.ok("files" in r);
  assert.deepEqual(r.files.names(), ["a.txt", "b/c"]);
  assert.equal(new TextDecoder().decode(r.files.read("a.txt")), "hello");
});

test("container faults", () => {
  const good = zip([{ name: "a", data: "x" }]);
  assert.equal(codeOf(Uint8Array.from([...good, 0])), "E_ARCHIVE"); // trailing data
  assert.equal(codeOf(zip([{ name: "b", data: "x" }, { name: "a", data: "y" }])), "E_ARCHIVE"); // unsorted
  assert.equal(codeOf(zip([{ name: "a", data: "x" }, { name: "a", data: "y" }])), "E_ARCHIVE"); // duplicate
  assert.equal(codeOf(zip([{ name: "a", data: "x", time: 1 }])), "E_ARCHIVE");
  assert.equal(codeOf(zip([{ name: "a", data: "x", mode: 0o120777 }])), "E_LINK_ENTRY");
  assert.equal(codeOf(zip([{ name: "a", data: "x", mode: 0o100755 }])), "E_ARCHIVE");
  assert.equal(codeOf(zip([{ name: "../a", data: "x" }])), "E_UNSAFE_PATH");
  assert.equal(codeOf(zip([{ name: "C:/a", data: "x" }])), "E_UNSAFE_PATH");
  assert.equal(codeOf(zip([{ name: "a/", data: "" }])), "E_UNSAFE_PATH");
  assert.equal(codeOf(new Uint8Array(10)), "E_ARCHIVE");
});

test("a bad CRC-32 is found when the entry is read, not before", () => {
  const r = readZip(zip([{ name: "a", data: "x", crc: 1 }, { name: "b", data: "y" }]));
  assert.ok("files" in r);
  assert.equal(r.files.size("a"), 1);
  assert.equal(new TextDecoder().decode(r.files.read("b")), "y");
  assert.throws(() => r.files.read("a"), (e: unknown) => e instanceof ContainerFatal && e.finding.code === "E_ARCHIVE");
});
