import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { parseStrict, parseStrictBytes, parseStrictChecked, canonicalize, canonicalBytes, JsonError } from "../src/json.js";
import { VEC } from "./helpers.js";

const JCS = join(VEC, "jcs");

for (const f of readdirSync(join(JCS, "input"))) {
  test(`RFC 8785 vector ${f}`, () => {
    const input = readFileSync(join(JCS, "input", f));
    const want = readFileSync(join(JCS, "output", f));
    assert.deepEqual(Buffer.from(canonicalBytes(parseStrictBytes(input))), want);
  });
}

test("ES6 number formatting, 10,000 vectors", () => {
  const lines = readFileSync(join(JCS, "numbers", "es6testfile10k.txt"), "utf8").trim().split("\n");
  assert.equal(lines.length, 10000);
  const dv = new DataView(new ArrayBuffer(8));
  for (const line of lines) {
    const [hex, want] = line.split(",") as [string, string];
    dv.setBigUint64(0, BigInt("0x" + hex));
    const x = dv.getFloat64(0);
    if (!Number.isFinite(x)) continue;
    assert.equal(canonicalize(x), want, hex);
    // A canonical number re-parses to the same value, unless the strict profile refuses it.
    try {
      assert.equal(parseStrict(want), x === 0 ? 0 : x);
    } catch (e) {
      assert.ok(e instanceof JsonError);
      assert.ok(Math.abs(x) > 2 ** 53 - 1 && Math.abs(x) < 1e21, want);
    }
  }
});

const rejects: [string, string][] = [
  ['{"a":1,"a":2}', "duplicate member"],
  ['{"a":{"b":1,"b":1}}', "nested duplicate"],
  ['"\\ud800"', "lone high surrogate"],
  ['"\\udc00"', "lone low surrogate"],
  ['"\\ud800\\u0041"', "high surrogate then non-low"],
  ["9007199254740992", "2^53"],
  ["-9007199254740992", "-2^53"],
  ["9007199254740993", "2^53+1"],
  ["1.2e17", "integer in exponent form"],
  ["9007199254740991.9", "rounds to 2^53"],
  ["1e400", "overflow"],
  ["-1e400", "negative overflow"],
  ["NaN", "NaN"],
  ["Infinity", "Infinity"],
  ["01", "leading zero"],
  ["-01", "negative leading zero"],
  ["1.", "bare fraction point"],
  [".5", "no integer part"],
  ["+1", "plus sign"],
  ["[1,]", "trailing comma"],
  ['{"a":1,}', "trailing comma in object"],
  ['"\t"', "raw tab in string"],
  ['"\\x"', "bad escape"],
  ["\ufeff{}", "byte order mark"],
  ["{} {}", "two documents"],
  ["", "empty"],
  ["[" .repeat(129) + "]".repeat(129), "nesting 129"],
  ["{'a':1}", "single quotes"],
  ["tru", "truncated literal"],
];
for (const [text, why] of rejects) {
  test(`strict profile rejects ${why}`, () => {
    assert.throws(() => parseStrict(text), JsonError);
  });
}

const accepts: [string, unknown][] = [
  ["9007199254740991", 9007199254740991],
  ["-9007199254740991", -9007199254740991],
  ["1e21", 1e21],
  ["1.5", 1.5],
  ["-0", -0],
  ["4.0", 4],
  ["4e0", 4],
  ['"\\ud83d\\ude00"', "😀"],
  ["[" .repeat(128) + "]".repeat(128), undefined],
  [' \t\r\n{"__proto__":1} ', undefined],
];
for (const [text, want] of accepts) {
  test(`strict profile accepts ${JSON.stringify(text).slice(0, 40)}`, () => {
    const v = parseStrict(text);
    if (want !== undefined) assert.deepEqual(v, want);
  });
}

test("strict profile rejects invalid UTF-8", () => {
  for (const bytes of [[0x22, 0xc0, 0xaf, 0x22], [0x22, 0xed, 0xa0, 0x80, 0x22], [0x22, 0xff, 0x22], [0x22, 0xe2, 0x82, 0x22]]) {
    assert.throws(() => parseStrictBytes(new Uint8Array(bytes)), JsonError);
  }
});

test("__proto__ is an ordinary member and canonicalizes", () => {
  const v = parseStrict('{"b":1,"__proto__":{"x":1},"a":2}');
  assert.equal(canonicalize(v), '{"__proto__":{"x":1},"a":2,"b":1}');
  assert.equal(Object.getPrototypeOf(v), null);
});

test("canonical strings escape minimally", () => {
  assert.equal(canonicalize("\u0000\u001f\u007f\u2028\"\\/\b\f\n\r\t"), '"\\u0000\\u001f\u007f\u2028\\"\\\\/\\b\\f\\n\\r\\t"');
  assert.equal(canonicalize(-0), "0");
  assert.equal(canonicalize({ "\u{1f602}": 1, "\ufb33": 2 }), '{"\u{1f602}":1,"\ufb33":2}');
});

test("objects have no prototype, nested and empty ones too, and inherited names are ordinary members", () => {
  const get = (o: unknown, k: string) => (o as Record<string, unknown>)[k];
  const v = parseStrict('{"constructor":1,"toString":{"hasOwnProperty":{}},"e":{},"__proto__":[]}');
  for (const o of [v, get(v, "toString"), get(get(v, "toString"), "hasOwnProperty"), get(v, "e")]) assert.equal(Object.getPrototypeOf(o), null);
  assert.deepEqual(Object.keys(v as object), ["constructor", "toString", "e", "__proto__"]);
  assert.ok(Array.isArray(get(v, "__proto__")));
  assert.throws(() => parseStrict('{"constructor":1,"constructor":2}'), JsonError);
  assert.throws(() => parseStrict('{"b":1,"a":2,"b":3}'), JsonError, "a repeat after the order broke");
  assert.throws(() => parseStrict('{"__proto__":1,"__proto__":2}'), JsonError);
});

// parseStrictChecked's canonical flag lets the journal skip canonicalization: it must be true
// exactly when the text is its own canonical form.
test("parseStrictChecked: canonical exactly when the text is canonical", () => {
  const texts = [
    '{"a":1,"b":[true,null,"x"]}', '{"b":1,"a":2}', '{"a":1, "b":2}', " 1", "1 ", "-0", "0", "1.0", "1e+21", "1e21", "100", "1.5", "-1.5",
    "0.000001", "1e-7", "1E-7", '"\\u001f"', '"\\u001F"', '"\\u0041"', '"A"', '"\\/"', '"/"', '"\\n"', '"\\u000a"', '"\\b\\f\\n\\r\\t\\"\\\\"',
    '"\\u00e9"', '"é"', '"\\ud83d\\ude00"', '"😀"', '{"\\ud83d\\ude02":1,"\\ufb33":2}', '{"😂":1,"דּ":2}', '{"דּ":1,"😂":2}', "[]", "{}", "[ ]",
    '{"a":{}}', '{"":0,"a":0}', '{"a":0,"":0}', "9007199254740991", "-9007199254740991", "123456789012", "1.2345678901234567e+25",
  ];
  for (const f of readdirSync(join(JCS, "input"))) texts.push(readFileSync(join(JCS, "input", f), "utf8"), readFileSync(join(JCS, "output", f), "utf8"));
  for (const line of readFileSync(join(JCS, "numbers", "es6testfile10k.txt"), "utf8").trim().split("\n").slice(0, 2000)) texts.push(line.split(",")[1]!);
  let canonicalSeen = 0;
  for (const text of texts) {
    let checked;
    try {
      checked = parseStrictChecked(text);
    } catch (e) {
      assert.ok(e instanceof JsonError, text);
      continue;
    }
    const isCanonical = canonicalize(checked.value) === text;
    assert.equal(checked.canonical, isCanonical, text);
    if (isCanonical) canonicalSeen++;
  }
  assert.ok(canonicalSeen > 1000, `${canonicalSeen}`);
});
