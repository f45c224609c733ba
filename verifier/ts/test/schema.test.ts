// The build-time (ajv standalone) validators must report exactly what ajv reports when it compiles
// the same schema files at run time with the same options: same verdict, and the same error
// objects (instancePath, schemaPath, keyword, params, message), in the same order. The corpus is
// every document in the golden vectors and spec examples, plus mutants of each (a member removed,
// an unknown member added, a value replaced by one of every other JSON type, a bad timestamp).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, readdirSync, existsSync } from "node:fs";
import { join } from "node:path";
import Ajv2020Module from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import { validators, AJV_OPTIONS, type SchemaId } from "../src/validators.generated.js";
import { validate } from "../src/schema.js";
import { parseStrict, parseStrictBytes, isObject, decodeUtf8, type Json } from "../src/json.js";
import { base64DecodeLenient } from "../src/util.js";
import { loadBundle } from "../src/node.js";
import { SPEC } from "./helpers.js";

// ajv and ajv-formats are CommonJS; under NodeNext their default export arrives as a namespace.
const Ajv2020 = ((Ajv2020Module as any).default ?? Ajv2020Module) as typeof Ajv2020Module.default;
const addFormats = ((addFormatsModule as any).default ?? addFormatsModule) as typeof addFormatsModule.default;

const schemaFile: Record<SchemaId, string> = {
  manifest: "common/manifest.schema.json",
  statement: "common/statement.schema.json",
  journalEntry: "common/journal-entry.schema.json",
  trust: "common/trust.schema.json",
  defPredicate: "def/predicate.schema.json",
  pefPredicate: "pef/predicate.schema.json",
};
const readSchema = (rel: string) => JSON.parse(readFileSync(join(SPEC, rel), "utf8"));

function runtimeValidators() {
  const ajv = new Ajv2020({ ...AJV_OPTIONS });
  addFormats(ajv, ["date-time"]);
  ajv.addSchema(readSchema("common/defs.schema.json"));
  const out = {} as Record<SchemaId, ReturnType<typeof ajv.compile>>;
  for (const [id, rel] of Object.entries(schemaFile)) out[id as SchemaId] = ajv.compile(readSchema(rel));
  return out;
}

/** The shape of a document: its structure with every scalar replaced by its type. */
const shape = (v: Json) => JSON.stringify(v, (_k, x) => (x !== null && typeof x === "object" ? x : typeof x));

/** Documents from the vectors and examples, by the schema they are meant for, one per shape. */
function corpus(): Map<SchemaId, Map<string, Json>> {
  const docs = new Map<SchemaId, Map<string, Json>>();
  for (const id of Object.keys(schemaFile) as SchemaId[]) docs.set(id, new Map());
  const add = (id: SchemaId, bytes: Uint8Array | string | undefined) => {
    if (bytes === undefined) return;
    try {
      const v = typeof bytes === "string" ? parseStrict(bytes) : parseStrictBytes(bytes);
      const m = docs.get(id)!;
      if (!m.has(shape(v))) m.set(shape(v), v);
    } catch {
      // not strict JSON: the verifier never validates it
    }
  };
  const ex = (rel: string) => readFileSync(join(SPEC, rel), "utf8");
  add("manifest", ex("common/examples/manifest.def.json"));
  add("manifest", ex("common/examples/manifest.pef.json"));
  add("statement", ex("common/examples/statement.def.json"));
  add("journalEntry", ex("common/examples/journal-entry.json"));
  add("trust", ex("common/examples/trust.json"));
  add("defPredicate", ex("def/examples/predicate.json"));
  add("pefPredicate", ex("pef/examples/predicate.json"));
  for (const fmt of ["def", "pef"]) {
    for (const rel of [`${fmt}/examples/journal.ndjson`]) for (const l of ex(rel).split("\n")) if (l) add("journalEntry", l);
    const dir = join(SPEC, fmt, "test-vectors");
    for (const name of readdirSync(dir)) {
      const c = join(dir, name);
      add("trust", readFileSync(join(c, "trust.json")));
      const bundle = existsSync(join(c, "bundle")) ? join(c, "bundle") : join(c, "bundle.zip");
      let container;
      try {
        container = loadBundle(bundle);
      } catch {
        continue;
      }
      if ("fatal" in container) continue;
      const f = container.files;
      const safeRead = (n: string) => {
        try {
          return f.read(n);
        } catch {
          return undefined; // a ZIP entry found bad when read
        }
      };
      add("manifest", safeRead("manifest.json"));
      const journal = safeRead("journal.ndjson");
      if (journal) for (const l of (decodeUtf8(journal) ?? "").split("\n")) if (l) add("journalEntry", l);
      const env = safeRead("attestation.dsse.json");
      try {
        const e = env && parseStrictBytes(env);
        const payload = isObject(e) && typeof e.payload === "string" ? base64DecodeLenient(e.payload) : null;
        if (payload) {
          add("statement", payload);
          const st = parseStrictBytes(payload);
          if (isObject(st) && "predicate" in st) {
            const pid: SchemaId = fmt === "def" ? "defPredicate" : "pefPredicate";
            add(pid, JSON.stringify(st.predicate));
          }
        }
      } catch {
        // not strict JSON
      }
    }
  }
  return docs;
}

const OTHERS: Json[] = [null, true, 1.5, 7, -1, "", "x", "2026-02-30T00:00:00Z", [], [1], {}];

/** The document and mutants of it: at every node, each member removed, one added, every value swapped. */
function mutants(doc: Json): Json[] {
  const out: Json[] = [doc];
  const clone = () => JSON.parse(JSON.stringify(doc));
  const walk = (v: Json, path: (string | number)[]) => {
    if (path.length > 6) return;
    const at = (root: any) => path.reduce((o, k) => o[k], root);
    if (Array.isArray(v)) {
      v.forEach((x, i) => walk(x, [...path, i]));
      if (v.length) {
        const c = clone();
        at(c).pop();
        out.push(c);
      }
    } else if (v !== null && typeof v === "object") {
      for (const k of Object.keys(v)) {
        const c = clone();
        delete at(c)[k];
        out.push(c);
        for (const o of OTHERS) {
          const d = clone();
          at(d)[k] = o;
          out.push(d);
        }
        walk((v as Record<string, Json>)[k]!, [...path, k]);
      }
      const c = clone();
      at(c)["x_unknown"] = 1;
      out.push(c);
    }
  };
  walk(doc, []);
  // Back through the strict parser, so objects have a null prototype as in the verifier.
  return out.map((m) => parseStrict(JSON.stringify(m)));
}

test("standalone validators report exactly what run-time ajv reports", () => {
  const rt = runtimeValidators();
  let checked = 0;
  let invalid = 0;
  for (const [id, docs] of corpus()) {
    assert.ok(docs.size > 0, `no ${id} documents in the corpus`);
    for (const doc of docs.values())
      for (const m of mutants(doc)) {
        const a = rt[id](m);
        const b = validators[id](m);
        assert.equal(b, a, `${id}: verdict differs for ${JSON.stringify(m).slice(0, 200)}`);
        assert.deepEqual(validators[id].errors ?? null, rt[id].errors ?? null, `${id}: errors differ`);
        checked++;
        if (!a) invalid++;
      }
  }
  console.log(`${checked} documents compared, ${invalid} of them invalid`);
  assert.ok(checked > 5000 && invalid > 4000, `corpus too small: ${checked} documents compared, ${invalid} of them invalid`);
});

test("validate() locates a missing or unknown member at that member", () => {
  const issues = validate("trust", parseStrict('{"keys":[{"keyid":"ab","x/y":1}],"version":1}'));
  const pointers = issues.map((i) => i.pointer);
  assert.ok(pointers.includes("/keys/0/algorithm"), JSON.stringify(issues));
  assert.ok(pointers.includes("/keys/0/x~1y"), JSON.stringify(issues));
  assert.ok(issues.every((i) => /^[a-zA-Z]+: /.test(i.message)));
});

test("the generated validators compile nothing at run time", () => {
  const src = readFileSync(new URL("../src/validators.generated.js", import.meta.url), "utf8");
  assert.doesNotMatch(src, /new Function|\beval\(|\brequire\(/);
});
