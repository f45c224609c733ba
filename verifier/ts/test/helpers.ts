import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
// dist/test/helpers.js -> verifier/ts
export const PKG = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const SPEC = join(PKG, "..", "..", "spec");
export const VEC = join(PKG, "test", "vectors");
