// Canonical stored-only ZIP reader (bundle.md §2.2). Every rule is enforced byte by byte; the first
// container finding is fatal and the only one reported.
import { decodeUtf8 } from "./json.js";
import { unsafePathReason } from "./paths.js";
import type { Finding } from "./report.js";

export const MAX_ENTRIES = 10_000;
export const MAX_ENTRY = 1024 ** 3; // 1 GiB
export const MAX_TOTAL = 4 * 1024 ** 3; // 4 GiB (a total of 4 GiB or more is refused)
export const MAX_DOC = 16 * 1024 ** 2; // manifest.json, attestation.dsse.json

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const CANON_EXTERNAL = (0o100644 << 16) >>> 0;

/**
 * The files of a bundle. `size` comes from the container's directory; `read` may throw
 * ContainerFatal: a ZIP entry's local header and CRC-32 are checked only when the entry is read
 * (bundle.md §2.2, "a local header found wrong only once an entry is read"), and the verifier
 * reads exactly manifest.json, attestation.dsse.json, journal.ndjson and each listed file whose
 * size matches its entry (the others are already findings: unlisted, or a size mismatch).
 */
export interface BundleFiles {
  names(): string[];
  size(name: string): number | undefined;
  read(name: string): Uint8Array | undefined;
}

export class ContainerFatal extends Error {
  constructor(readonly finding: Finding) {
    super(finding.message);
  }
}

export function filesFromMap(m: Map<string, Uint8Array>): BundleFiles {
  return { names: () => [...m.keys()], size: (n) => m.get(n)?.length, read: (n) => m.get(n) };
}

export type ContainerResult = { files: BundleFiles } | { fatal: Finding[] };

let crcTable: Uint32Array | null = null;
let crc32Impl: ((b: Uint8Array) => number) | null = null;

/** Lets the host supply a native CRC-32 (node.ts passes zlib's); null restores the table below. */
export function useCrc32(impl: ((b: Uint8Array) => number) | null): void {
  crc32Impl = impl;
}

export function crc32(b: Uint8Array): number {
  if (crc32Impl !== null) return crc32Impl(b) >>> 0;
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = crcTable[(c ^ b[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

interface CdEntry {
  name: string;
  nameBytes: Uint8Array;
  crc: number;
  size: number;
  offset: number;
}

const Fatal = ContainerFatal;
const archive = (message: string, path?: string) => new Fatal({ code: "E_ARCHIVE", message, ...(path !== undefined ? { path } : {}) });

export function readZip(buf: Uint8Array): ContainerResult {
  try {
    return { files: readZipInner(buf) };
  } catch (e) {
    if (e instanceof Fatal) return { fatal: [e.finding] };
    throw e;
  }
}

function readZipInner(buf: Uint8Array): BundleFiles {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const u16 = (o: number) => dv.getUint16(o, true);
  const u32 = (o: number) => dv.getUint32(o, true);
  const n = buf.length;
  if (n < 22) throw archive("not a ZIP archive (too short)");
  // The end-of-central-directory record is exactly the last 22 bytes: no comment, no trailing data.
  const eocd = n - 22;
  if (u32(eocd) !== 0x06054b50) throw archive("no end-of-central-directory record in the last 22 bytes (trailing data, a comment, or not a ZIP)");
  if (u16(eocd + 4) !== 0 || u16(eocd + 6) !== 0) throw archive("multi-disk archive");
  const countDisk = u16(eocd + 8);
  const count = u16(eocd + 10);
  const cdSize = u32(eocd + 12);
  const cdOffset = u32(eocd + 16);
  if (u16(eocd + 20) !== 0) throw archive("archive comment");
  if (countDisk !== count) throw archive("entry counts disagree");
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) throw archive("ZIP64 is not allowed");
  if (count > MAX_ENTRIES) throw new Fatal({ code: "E_TOO_LARGE", message: `${count} entries (limit ${MAX_ENTRIES})` });
  if (cdOffset + cdSize !== eocd) throw archive("central directory does not end where the end record starts");

  const entries: CdEntry[] = [];
  let p = cdOffset;
  let total = 0;
  for (let i = 0; i < count; i++) {
    if (p + 46 > eocd) throw archive("truncated central directory");
    if (u32(p) !== 0x02014b50) throw archive("bad central directory signature");
    const madeBy = u16(p + 4);
    const needed = u16(p + 6);
    const flags = u16(p + 8);
    const method = u16(p + 10);
    const time = u16(p + 12);
    const date = u16(p + 14);
    const crc = u32(p + 16);
    const csize = u32(p + 20);
    const usize = u32(p + 24);
    const nameLen = u16(p + 28);
    const extraLen = u16(p + 30);
    const commentLen = u16(p + 32);
    const disk = u16(p + 34);
    const internal = u16(p + 36);
    const external = u32(p + 38);
    const offset = u32(p + 42);
    if (p + 46 + nameLen + extraLen + commentLen > eocd) throw archive("truncated central directory");
    const nameBytes = buf.subarray(p + 46, p + 46 + nameLen);
    const name = decodeUtf8(nameBytes);
    const shown = name ?? "(not UTF-8)";
    // Limits first, on the declared size, as each entry is read and before the layout is checked.
    // The size an entry declares is its uncompressed size; a compressed size that differs from it
    // is a non-canonical field (E_ARCHIVE, below), whatever its value (bundle.md §2.2).
    if (usize > MAX_ENTRY)
      throw new Fatal({ code: "E_TOO_LARGE", path: shown, message: `entry declares ${usize} bytes (limit 1 GiB)` });
    total += usize;
    if (total >= MAX_TOTAL) throw new Fatal({ code: "E_TOO_LARGE", message: "entries add up to 4 GiB or more" });
    if (name === null || (flags & 0x0800) === 0 && /[^\x00-\x7f]/.test(name)) throw archive("entry name is not UTF-8");
    const why = unsafePathReason(name);
    if (why !== null) throw new Fatal({ code: "E_UNSAFE_PATH", path: name, message: `unsafe entry name: ${why}` });
    if ((name === "manifest.json" || name === "attestation.dsse.json") && usize > MAX_DOC)
      throw new Fatal({ code: "E_TOO_LARGE", path: name, message: `${name} is larger than 16 MiB` });
    // A symbolic link or other non-regular file is named as such before the canonical attribute check.
    const mode = external >>> 16;
    if ((mode & S_IFMT) !== S_IFREG) throw new Fatal({ code: "E_LINK_ENTRY", path: name, message: `entry is not a regular file (mode 0${mode.toString(8)})` });
    if (madeBy !== 0x0314) throw archive("version made by is not 0x0314", name);
    if (needed !== 20) throw archive("version needed to extract is not 20", name);
    if (flags !== 0x0800) throw archive(`general-purpose flags 0x${flags.toString(16)} (only 0x0800 allowed)`, name);
    if (method !== 0) throw archive(`compression method ${method} (only stored)`, name);
    if (time !== 0 || date !== 0x0021) throw archive("modification time is not 1980-01-01 00:00:00", name);
    if (csize !== usize) throw archive("stored entry with different sizes", name);
    if (extraLen !== 0) throw archive("extra field", name);
    if (commentLen !== 0) throw archive("file comment", name);
    if (disk !== 0) throw archive("disk number", name);
    if (internal !== 0) throw archive("internal attributes", name);
    if (external >>> 0 !== CANON_EXTERNAL) throw archive("external attributes are not a 0644 regular file", name);
    entries.push({ name, nameBytes, crc, size: usize, offset });
    p += 46 + nameLen;
  }
  if (p !== eocd) throw archive("central directory size mismatch");

  // Layout: sorted by UTF-8 bytes, no duplicates, contiguous from offset 0, CD right after data.
  let expect = 0;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    if (i > 0 && cmpBytes(entries[i - 1]!.nameBytes, e.nameBytes) >= 0) throw archive("entries not sorted by path or duplicated", e.name);
    if (e.offset !== expect) throw archive("entries are not contiguous", e.name);
    expect = e.offset + 30 + e.nameBytes.length + e.size;
    if (expect > cdOffset) throw archive("entry data overlaps the central directory", e.name);
  }
  if (expect !== cdOffset) throw archive("central directory does not follow the last entry");

  const byName = new Map(entries.map((e) => [e.name, e]));
  const checked = new Map<string, Uint8Array>();
  const read = (name: string): Uint8Array | undefined => {
    const e = byName.get(name);
    if (!e) return undefined;
    const done = checked.get(name);
    if (done) return done;
    const o = e.offset;
    if (u32(o) !== 0x04034b50) throw archive("bad local header signature", e.name);
    const ok =
      u16(o + 4) === 20 &&
      u16(o + 6) === 0x0800 &&
      u16(o + 8) === 0 &&
      u16(o + 10) === 0 &&
      u16(o + 12) === 0x0021 &&
      u32(o + 14) === e.crc &&
      u32(o + 18) === e.size &&
      u32(o + 22) === e.size &&
      u16(o + 26) === e.nameBytes.length &&
      u16(o + 28) === 0 &&
      cmpBytes(buf.subarray(o + 30, o + 30 + e.nameBytes.length), e.nameBytes) === 0;
    if (!ok) throw archive("local header differs from the central directory", e.name);
    const data = buf.subarray(o + 30 + e.nameBytes.length, o + 30 + e.nameBytes.length + e.size);
    if (crc32(data) !== e.crc) throw archive("CRC-32 mismatch", e.name);
    checked.set(name, data);
    return data;
  };
  return { names: () => entries.map((e) => e.name), size: (n) => byName.get(n)?.size, read };
}

function cmpBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}
