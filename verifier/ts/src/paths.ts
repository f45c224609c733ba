// Path safety (bundle.md §2.1).
const enc = new TextEncoder();

/** Returns why a path is unsafe, or null when it is safe. */
export function unsafePathReason(p: string): string | null {
  if (p.length === 0) return "empty path";
  if (enc.encode(p).length > 1024) return "longer than 1024 bytes";
  if (p.startsWith("/")) return "absolute path";
  if (p.includes("\\")) return "backslash";
  // NUL and other control characters: C0, DEL and C1.
  if (/[\u0000-\u001f\u007f-\u009f]/.test(p)) return "control character";
  if (/^[A-Za-z]:/.test(p)) return "drive prefix";
  for (const seg of p.split("/")) {
    if (seg === "") return "empty segment";
    if (seg === "." || seg === "..") return `segment ${seg}`;
  }
  // Lone surrogates cannot be UTF-8.
  if (/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(p)) return "not UTF-8";
  return null;
}
