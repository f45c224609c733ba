// JSON Schema validation with the spec's schema files, unmodified (verification-codes.md, "How
// the two verifiers must agree"): draft 2020-12, defs.schema.json registered under its $id,
// `format` asserted (date-time checked), all errors collected.
//
// The validators are ajv standalone code generated at build time by scripts/gen-schemas.mjs
// (src/validators.generated.ts), so nothing is compiled at run time: no start-up cost and no
// `new Function`, which lets the core run under a page CSP without 'unsafe-eval'.
import { validators, type SchemaId } from "./validators.generated.js";

export type { SchemaId };

export interface SchemaIssue {
  pointer: string;
  message: string;
}

/** Validate; returns [] when valid. A missing or disallowed member is located at that member. */
export function validate(id: SchemaId, value: unknown): SchemaIssue[] {
  const v = validators[id];
  if (v(value)) return [];
  return (v.errors ?? []).map((e) => {
    let pointer = e.instancePath;
    const p = e.params;
    if (e.keyword === "required" && typeof p.missingProperty === "string") pointer += "/" + esc(p.missingProperty);
    else if (e.keyword === "additionalProperties" && typeof p.additionalProperty === "string")
      pointer += "/" + esc(p.additionalProperty);
    return { pointer, message: `${e.keyword}: ${e.message ?? ""}` };
  });
}

function esc(s: string): string {
  return s.replace(/~/g, "~0").replace(/\//g, "~1");
}
