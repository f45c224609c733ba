// @clyra/verify: the browser-safe core. File access lives in cli.ts only.
export { verifyBundle, type VerifyOptions, type ArtifactSource } from "./verify.js";
export { readZip, type ContainerResult } from "./zip.js";
export { loadTrust, TrustError, type TrustedKey } from "./keys.js";
export { parseStrict, parseStrictBytes, canonicalize, canonicalBytes, JsonError, type Json } from "./json.js";
export { merkleRoot, verifyInclusion } from "./merkle.js";
export { parseSignedNote, parseCheckpointBody, ed25519NoteKeyId } from "./note.js";
export { parseTime } from "./time.js";
export { unsafePathReason } from "./paths.js";
export type { Finding, Report, Code } from "./report.js";
export { inspectBundle, digestHex, type BundleContents, type EntryInfo, type SignatureInfo, type CheckpointInfo } from "./inspect.js";
