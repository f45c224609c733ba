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
  return parseStrictChecked(text).value;
}

/**
 * parseStrict, and whether `text` is already RFC 8785 canonical, found in the same pass: no
 * whitespace, members in canonical order, every string and number spelled as canonicalize()
 * spells it. Then canonicalize(value) === text, and a caller can skip canonicalizing (the journal
 * does, line by line). `canonical: false` means the text differs from its canonical form.
 */
export function parseStrictChecked(text: string): { value: Json; canonical: boolean } {
  const p = new Parser(text);
  p.ws();
  const value = p.value(0);
  p.ws();
  if (p.i !== text.length) p.fail("trailing characters");
  return { value, canonical: p.canonical };
}

const NUM_RE = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
// "0" or a positive integer without leading zero ("-0" is not canonical, negatives are rare).
const SAFE_INT_SPELLING = /^(?:0|[1-9][0-9]*)$/;
// A string's raw text needs the careful loop when it holds an escape, a control character or a
// surrogate (to refuse a lone one); otherwise it is the string itself.
const STRING_SLOW = /[\\\u0000-\u001f\ud800-\udfff]/;
// The escapes canonicalize() writes, by the character after the backslash: \" \\ \b \f \n \r \t
// (\u00xx is checked where it is read).
const CANONICAL_SHORT = new Set(['"', "\\", "b", "f", "n", "r", "t"]);

class Parser {
  i = 0;
  /** Still true when everything read so far is in canonical form. */
  canonical = true;
  constructor(readonly s: string) {}

  fail(msg: string): never {
    throw new JsonError(msg, this.i);
  }

  ws(): void {
    const s = this.s;
    const start = this.i;
    let c = s.charCodeAt(this.i);
    // RFC 8259 whitespace only: space, tab, LF, CR.
    while (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) c = s.charCodeAt(++this.i);
    if (this.i !== start) this.canonical = false;
  }

  value(depth: number): Json {
    const c = this.s.charCodeAt(this.i);
    switch (c) {
      case 0x7b: // {
        return this.object(depth + 1);
      case 0x5b: // [
        return this.array(depth + 1);
      case 0x22: // "
        return this.string();
      case 0x74: // t
        return this.literal("true", true);
      case 0x66: // f
        return this.literal("false", false);
      case 0x6e: // n
        return this.literal("null", null);
      default:
        if (c === 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
        return this.fail(Number.isNaN(c) ? "unexpected end of input" : `unexpected character`);
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
    // Canonical spelling: String(v). A safe integer without sign, fraction or exponent is already
    // spelled so (leading zeros were refused above), which spares most conversions.
    if (this.canonical && !(a <= MAX_SAFE && SAFE_INT_SPELLING.test(lit)) && String(v) !== lit) this.canonical = false;
    return v;
  }

  string(): string {
    const s = this.s;
    const open = this.i;
    // Fast path: no escape, control character or surrogate before the closing quote.
    const close = s.indexOf('"', open + 1);
    if (close > open) {
      const body = s.slice(open + 1, close);
      if (!STRING_SLOW.test(body)) {
        this.i = close + 1;
        return body;
      }
    }
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
      if (this.canonical && e !== undefined && e !== "u" && !CANONICAL_SHORT.has(e)) this.canonical = false;
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
          const at = this.i;
          const u = this.hex4();
          // canonicalize() writes \u00xx, lowercase, only for controls without a short escape.
          if (this.canonical && !(u < 0x20 && ESC[u] === undefined && s.slice(at, at + 4) === u.toString(16).padStart(4, "0")))
            this.canonical = false;
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
    if (this.s.charCodeAt(this.i) === 0x5d) {
      this.i++;
      return out;
    }
    for (;;) {
      this.ws();
      out.push(this.value(depth));
      this.ws();
      const c = this.s.charCodeAt(this.i);
      if (c === 0x2c) {
        this.i++;
        continue;
      }
      if (c === 0x5d) {
        this.i++;
        return out;
      }
      return this.fail("expected , or ]");
    }
  }

  object(depth: number): JsonObject {
    if (depth > MAX_DEPTH) return this.fail("nesting deeper than 128");
    this.i++;
    // Filled as an ordinary object, which V8 builds several times faster than one without a
    // prototype, then given a null prototype (no inherited names) before anyone sees it. While it
    // is filled, duplicates are found with hasOwn (not `in`, which would see inherited names) and
    // "__proto__" is defined as an ordinary member (assignment would set the prototype).
    const out = {} as JsonObject;
    this.ws();
    if (this.s.charCodeAt(this.i) === 0x7d) {
      this.i++;
      return Object.setPrototypeOf(out, null) as JsonObject;
    }
    let previous: string | null = null;
    let ordered = true;
    for (;;) {
      this.ws();
      if (this.s.charCodeAt(this.i) !== 0x22) return this.fail("expected member name");
      const at = this.i;
      const k = this.string();
      // Canonical order is by UTF-16 code units, which is how JS compares strings.
      if (ordered && previous !== null && !(previous < k)) {
        ordered = false;
        this.canonical = false;
      }
      previous = k;
      // Duplicate member names are refused (I-JSON RFC 7493 §2.3). While the names come in
      // strictly increasing order (always, in canonical input) a name cannot repeat an earlier one.
      if (!ordered && Object.hasOwn(out, k)) {
        this.i = at;
        return this.fail("duplicate member name");
      }
      this.ws();
      if (this.s.charCodeAt(this.i) !== 0x3a) return this.fail("expected :");
      this.i++;
      this.ws();
      const v = this.value(depth);
      if (k === "__proto__") Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
      else out[k] = v;
      this.ws();
      const c = this.s.charCodeAt(this.i);
      if (c === 0x2c) {
        this.i++;
        continue;
      }
      if (c === 0x7d) {
        this.i++;
        return Object.setPrototypeOf(out, null) as JsonObject;
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
    case "object": {
      if (v === null) return "null";
      if (Array.isArray(v)) {
        let out = "[";
        for (let i = 0; i < v.length; i++) out += (i ? "," : "") + canonicalize(v[i] as Json);
        return out + "]";
      }
      // Default sort compares UTF-16 code units, which is RFC 8785 §3.2.3's order.
      const keys = Object.keys(v).sort();
      let out = "{";
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i]!;
        out += (i ? "," : "") + quote(k) + ":" + canonicalize(v[k] as Json);
      }
      return out + "}";
    }
  }
  throw new Error("not JSON");
}

const ESC: Record<number, string> = { 8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r", 0x22: '\\"', 0x5c: "\\\\" };
// Anything quote() must look at: characters it escapes, and surrogates (to refuse lone ones).
const NEEDS_WORK = /[\u0000-\u001f"\\\ud800-\udfff]/;

function quote(s: string): string {
  if (!NEEDS_WORK.test(s)) return '"' + s + '"';
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
