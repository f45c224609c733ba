// Strict JSON (bundle.md §1, docs/evidence-kernel.md "strict profile") and RFC 8785 canonical JSON.
//
// Why our own parser: JSON.parse silently keeps the last of duplicate member names, rounds
// integers beyond 2^53, and accepts lone surrogate escapes. Any of those would let two verifiers
// read two different documents from the same bytes, so the profile rejects all of them here,
// scanning the raw text.

export type Json = null | boolean | number | string | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json;
}

export class JsonError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(`${message} at offset ${offset}`);
  }
}

/** Maximum nesting of arrays and objects (bundle.md §1: "nesting at most 128"). */
export const MAX_DEPTH = 128;
const MAX_SAFE = 9007199254740991;

// fatal: invalid UTF-8, overlong forms and encoded surrogates throw (RFC 8259 §8.1).
// ignoreBOM: keep a BOM as U+FEFF so the parser rejects it (a BOM is not JSON).
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export function decodeUtf8(bytes: Uint8Array): string | null {
  try {
    return utf8.decode(bytes);
  } catch {
    return null;
  }
}

/** Parse bytes under the strict profile. Objects have a null prototype (no inherited names). */
export function parseStrictBytes(bytes: Uint8Array): Json {
  const text = decodeUtf8(bytes);
  if (text === null) throw new JsonError("invalid UTF-8", 0);
  return parseStrict(text);
}

export function parseStrict(text: string): Json {
  const p = new Parser(text);
  p.ws();
  const v = p.value(0);
  p.ws();
  if (p.i !== text.length) p.fail("trailing characters");
  return v;
}

const NUM_RE = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;

class Parser {
  i = 0;
  constructor(readonly s: string) {}

  fail(msg: string): never {
    throw new JsonError(msg, this.i);
  }

  ws(): void {
    const s = this.s;
    let c = s.charCodeAt(this.i);
    // RFC 8259 whitespace only: space, tab, LF, CR.
    while (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) c = s.charCodeAt(++this.i);
  }

  value(depth: number): Json {
    const c = this.s[this.i];
    switch (c) {
      case "{":
        return this.object(depth + 1);
      case "[":
        return this.array(depth + 1);
      case '"':
        return this.string();
      case "t":
        return this.literal("true", true);
      case "f":
        return this.literal("false", false);
      case "n":
        return this.literal("null", null);
      default:
        if (c === "-" || (c !== undefined && c >= "0" && c <= "9")) return this.number();
        return this.fail(c === undefined ? "unexpected end of input" : `unexpected character`);
    }
  }

  literal<T extends Json>(word: string, v: T): T {
    if (this.s.startsWith(word, this.i)) {
      this.i += word.length;
      return v;
    }
    return this.fail("invalid literal");
  }

  number(): number {
    NUM_RE.lastIndex = this.i;
    const m = NUM_RE.exec(this.s);
    if (!m) return this.fail("invalid number");
    const lit = m[0];
    const start = this.i;
    this.i += lit.length;
    // A digit right after "0" ("01") is a leading zero: the regex stopped at "0", and the next
    // character would otherwise be taken as trailing garbage or a separator error. Report it here.
    const next = this.s.charCodeAt(this.i);
    if (next >= 0x30 && next <= 0x39) {
      this.i = start;
      return this.fail("leading zero");
    }
    const v = Number(lit);
    if (!Number.isFinite(v)) {
      this.i = start;
      return this.fail("number overflows to infinity");
    }
    // Strictness choice: the rule is judged on the IEEE double the literal denotes (every double of
    // magnitude >= 2^53 is an integer). "9007199254740993", "1.2e17" and "9007199254740991.9" (which
    // rounds to 2^53) are all rejected; 1e21 and above are allowed because RFC 8785 prints them in
    // exponent form, which no parser confuses with an exact integer. This way every canonical
    // output re-parses under the profile (docs/evidence-kernel.md).
    const a = Math.abs(v);
    if (a > MAX_SAFE && a < 1e21 && Number.isInteger(v)) {
      this.i = start;
      return this.fail("integer beyond 2^53-1");
    }
    return v;
  }

  string(): string {
    const s = this.s;
    this.i++; // opening quote
    let out = "";
    let run = this.i;
    for (;;) {
      const c = s.charCodeAt(this.i);
      if (Number.isNaN(c)) return this.fail("unterminated string");
      if (c === 0x22) {
        out += s.slice(run, this.i);
        this.i++;
        return out;
      }
      if (c < 0x20) return this.fail("control character in string");
      if (c >= 0xd800 && c <= 0xdfff) {
        // Raw surrogates only come from a JS string input (bytes were decoded as valid UTF-8,
        // which has no lone surrogates); still refuse an unpaired one.
        if (c <= 0xdbff) {
          const d = s.charCodeAt(this.i + 1);
          if (d >= 0xdc00 && d <= 0xdfff) {
            this.i += 2;
            continue;
          }
        }
        return this.fail("lone surrogate");
      }
      if (c !== 0x5c) {
        this.i++;
        continue;
      }
      out += s.slice(run, this.i);
      const e = s[this.i + 1];
      this.i += 2;
      switch (e) {
        case '"':
          out += '"';
          break;
        case "\\":
          out += "\\";
          break;
        case "/":
          out += "/";
          break;
        case "b":
          out += "\b";
          break;
        case "f":
          out += "\f";
          break;
        case "n":
          out += "\n";
          break;
        case "r":
          out += "\r";
          break;
        case "t":
          out += "\t";
          break;
        case "u": {
          const u = this.hex4();
          if (u >= 0xd800 && u <= 0xdbff) {
            // A high surrogate must be followed by an escaped low surrogate (I-JSON §2.1).
            if (s[this.i] !== "\\" || s[this.i + 1] !== "u") return this.fail("lone surrogate");
            this.i += 2;
            const l = this.hex4();
            if (l < 0xdc00 || l > 0xdfff) return this.fail("lone surrogate");
            out += String.fromCharCode(u, l);
          } else if (u >= 0xdc00 && u <= 0xdfff) {
            return this.fail("lone surrogate");
          } else {
            out += String.fromCharCode(u);
          }
          break;
        }
        default:
          this.i -= 2;
          return this.fail("invalid escape");
      }
      run = this.i;
    }
  }

  hex4(): number {
    const h = this.s.slice(this.i, this.i + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(h)) return this.fail("invalid \\u escape");
    this.i += 4;
    return parseInt(h, 16);
  }

  array(depth: number): Json[] {
    if (depth > MAX_DEPTH) return this.fail("nesting deeper than 128");
    this.i++;
    const out: Json[] = [];
    this.ws();
    if (this.s[this.i] === "]") {
      this.i++;
      return out;
    }
    for (;;) {
      this.ws();
      out.push(this.value(depth));
      this.ws();
      const c = this.s[this.i];
      if (c === ",") {
        this.i++;
        continue;
      }
      if (c === "]") {
        this.i++;
        return out;
      }
      return this.fail("expected , or ]");
    }
  }

  object(depth: number): JsonObject {
    if (depth > MAX_DEPTH) return this.fail("nesting deeper than 128");
    this.i++;
    const out = Object.create(null) as JsonObject;
    this.ws();
    if (this.s[this.i] === "}") {
      this.i++;
      return out;
    }
    for (;;) {
      this.ws();
      if (this.s[this.i] !== '"') return this.fail("expected member name");
      const at = this.i;
      const k = this.string();
      // Duplicate member names are refused (I-JSON RFC 7493 §2.3).
      if (Object.prototype.hasOwnProperty.call(out, k)) {
        this.i = at;
        return this.fail("duplicate member name");
      }
      this.ws();
      if (this.s[this.i] !== ":") return this.fail("expected :");
      this.i++;
      this.ws();
      const v = this.value(depth);
      // defineProperty: "__proto__" is an ordinary member name here.
      Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
      this.ws();
      const c = this.s[this.i];
      if (c === ",") {
        this.i++;
        continue;
      }
      if (c === "}") {
        this.i++;
        return out;
      }
      return this.fail("expected , or }");
    }
  }
}

export function isObject(v: Json | undefined): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

// ---------------------------------------------------------------------------------------------
// RFC 8785 (JCS)

/** RFC 8785 canonical text of a value (a JS string; encode as UTF-8 for the bytes). */
export function canonicalize(v: Json): string {
  switch (typeof v) {
    case "boolean":
      return v ? "true" : "false";
    case "number":
      // ECMAScript Number::toString is exactly RFC 8785 §3.2.2.3; String(-0) is "0".
      if (!Number.isFinite(v)) throw new Error("non-finite number");
      return String(v);
    case "string":
      return quote(v);
    case "object":
      if (v === null) return "null";
      if (Array.isArray(v)) return "[" + v.map(canonicalize).join(",") + "]";
      // Default sort compares UTF-16 code units, which is RFC 8785 §3.2.3's order.
      return (
        "{" +
        Object.keys(v)
          .sort()
          .map((k) => quote(k) + ":" + canonicalize(v[k] as Json))
          .join(",") +
        "}"
      );
  }
  throw new Error("not JSON");
}

const ESC: Record<number, string> = { 8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r", 0x22: '\\"', 0x5c: "\\\\" };

function quote(s: string): string {
  let out = '"';
  let run = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x22 || c === 0x5c) {
      out += s.slice(run, i) + (ESC[c] ?? "\\u" + c.toString(16).padStart(4, "0"));
      run = i + 1;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const d = s.charCodeAt(i + 1);
      if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) i++;
      else throw new Error("lone surrogate");
    }
  }
  return out + s.slice(run) + '"';
}

const enc = new TextEncoder();
export function canonicalBytes(v: Json): Uint8Array {
  return enc.encode(canonicalize(v));
}
export function utf8Encode(s: string): Uint8Array {
  return enc.encode(s);
}

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
