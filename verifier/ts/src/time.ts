// RFC 3339 instants as nanoseconds since the epoch (BigInt: no precision lost to Date's ms).
const RE = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

export function parseTime(s: string): bigint | null {
  const m = RE.exec(s);
  if (!m) return null;
  const [y, mo, d, h, mi, se] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || se > 59) return null;
  const dim = [31, (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0 ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][mo - 1]!;
  if (d > dim) return null;
  let secs = BigInt(Date.UTC(y, mo - 1, d, h, mi, se) / 1000);
  if (y < 100) secs = BigInt(Math.floor(new Date(Date.UTC(2000, mo - 1, d, h, mi, se)).setUTCFullYear(y) / 1000));
  const tz = m[8]!;
  if (tz !== "Z" && tz !== "z") {
    const oh = Number(tz.slice(1, 3));
    const om = Number(tz.slice(4, 6));
    if (oh > 23 || om > 59) return null;
    const off = BigInt(oh * 3600 + om * 60);
    secs = tz[0] === "+" ? secs - off : secs + off;
  }
  const frac = BigInt((m[7] ?? ".").slice(1).padEnd(9, "0") || "0");
  return secs * 1_000_000_000n + frac;
}
