export type Code =
  | "E_ARCHIVE" | "E_LINK_ENTRY" | "E_UNSAFE_PATH" | "E_TOO_LARGE" | "E_MISSING_FILE" | "E_UNLISTED_FILE"
  | "E_JSON" | "E_NOT_CANONICAL" | "E_UNKNOWN_VERSION" | "E_SCHEMA"
  | "E_SIGNATURE" | "E_KEY_NOT_TRUSTED" | "E_KEY_EXPIRED" | "E_THRESHOLD" | "E_PAYLOAD_TYPE" | "E_SUBJECT_MISMATCH"
  | "E_DIGEST_MISMATCH" | "E_SIZE_MISMATCH" | "E_MERKLE_ROOT" | "E_CHAIN_BROKEN" | "E_ARTIFACT_MISMATCH"
  | "W_ARTIFACT_NOT_CHECKED"
  | "E_CHECKPOINT" | "E_CHECKPOINT_SIGNATURE" | "E_INCLUSION_PROOF";

export interface Finding {
  code: Code;
  path?: string;
  message: string;
}

export interface Report {
  verdict: "valid" | "invalid";
  bundle?: string;
  format?: string;
  format_version?: string;
  checked_at: string;
  findings: Finding[];
  summary: Record<string, unknown>;
}
