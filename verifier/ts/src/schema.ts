// JSON Schema validation with the spec's schema files, unmodified (verification-codes.md, "How
// the two verifiers must agree"): draft 2020-12, defs.schema.json registered under its $id,
// `format` asserted (date-time checked), all errors collected.
import Ajv2020Module from "ajv/dist/2020.js";
import type { ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import * as S from "./schemas.generated.js";

// ajv and ajv-formats are CommonJS; under NodeNext their default export arrives as a namespace.
const Ajv2020 = ((Ajv2020Module as any).default ?? Ajv2020Module) as typeof Ajv2020Module.default;
const addFormats = ((addFormatsModule as any).default ?? addFormatsModule) as typeof addFormatsModule.default;

export type SchemaId = "manifest" | "statement" | "journalEntry" | "trust" | "defPredicate" | "pefPredicate";

let compiled: Record<SchemaId, ValidateFunction> | null = null;

function build(): Record<SchemaId, ValidateFunction> {
  const ajv = new Ajv2020({
    allErrors: true,
    strict: false,
    validateFormats: true,
    // Objects from the strict parser have a null prototype; ownProperties makes ajv consult only
    // own members either way, so a member named "toString" is never taken as present.
    ownProperties: true,
  });
  // ajv-formats' date-time requires a time zone (RFC 3339 full form), as the spec's timestamps do.
  addFormats(ajv, ["date-time"]);
  ajv.addSchema(S.defs as object);
  const c = (s: unknown) => ajv.compile(s as object);
  return {
    manifest: c(S.manifest),
    statement: c(S.statement),
    journalEntry: c(S.journalEntry),
    trust: c(S.trust),
    defPredicate: c(S.defPredicate),
    pefPredicate: c(S.pefPredicate),
  };
}

export interface SchemaIssue {
  pointer: string;
  message: string;
}

/** Validate; returns [] when valid. A missing or disallowed member is located at that member. */
export function validate(id: SchemaId, value: unknown): SchemaIssue[] {
  compiled ??= build();
  const v = compiled[id];
  if (v(value)) return [];
  return (v.errors ?? []).map((e) => {
    let pointer = e.instancePath;
    const p = e.params as Record<string, unknown>;
    if (e.keyword === "required" && typeof p.missingProperty === "string") pointer += "/" + esc(p.missingProperty);
    else if (e.keyword === "additionalProperties" && typeof p.additionalProperty === "string")
      pointer += "/" + esc(p.additionalProperty);
    return { pointer, message: `${e.keyword}: ${e.message ?? ""}` };
  });
}

function esc(s: string): string {
  return s.replace(/~/g, "~0").replace(/\//g, "~1");
}
