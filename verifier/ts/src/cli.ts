// clyra-verify BUNDLE --trust trust.json [--at RFC3339] [--artifacts DIR] [--threshold N] [--json]
// Argument parsing and output; the file-system side is node.ts. Exit: 0 valid, 2 invalid, 1 error.
import { verifyCaseFiles, errorJson } from "./node.js";
import type { Report } from "./report.js";

const USAGE = "usage: clyra-verify BUNDLE --trust trust.json [--at RFC3339] [--artifacts DIR] [--threshold N] [--json]";

class UsageError extends Error {}

interface Args {
  bundle: string;
  trust: string;
  at: string | null;
  artifacts: string | null;
  threshold: number;
  json: boolean;
}

function parseArgs(argv: string[]): Args {
  let bundle: string | null = null;
  let trust: string | null = null;
  let at: string | null = null;
  let artifacts: string | null = null;
  let threshold = 1;
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const val = () => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value`);
      return v;
    };
    if (a === "--trust") trust = val();
    else if (a === "--at") at = val();
    else if (a === "--artifacts") artifacts = val();
    else if (a === "--threshold") {
      const v = val();
      if (!/^[0-9]+$/.test(v)) throw new UsageError(`--threshold ${v} is not a number`);
      threshold = Number(v);
      if (threshold < 1) throw new UsageError("--threshold must be at least 1");
    } else if (a === "--json" || a === "--format=json") json = true;
    else if (a === "--format") {
      const v = val();
      if (v !== "json" && v !== "text") throw new UsageError(`--format ${v}`);
      json = v === "json";
    } else if (a === "-h" || a === "--help") throw new UsageError(USAGE);
    else if (a.startsWith("-")) throw new UsageError(`unknown option ${a}\n${USAGE}`);
    else if (bundle === null) bundle = a;
    else throw new UsageError(`unexpected argument ${a}\n${USAGE}`);
  }
  if (bundle === null || trust === null) throw new UsageError(USAGE);
  return { bundle, trust, at, artifacts, threshold, json };
}

function render(r: Report): string {
  const lines = [`${r.verdict.toUpperCase()}: ${r.bundle ?? ""}`];
  for (const f of r.findings) lines.push(`  ${f.code}${f.path ? ` ${f.path}` : ""}: ${f.message}`);
  return lines.join("\n") + "\n";
}

export async function main(argv: string[]): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    return 1;
  }
  const outcome = await verifyCaseFiles(args);
  if (outcome.status === 1) {
    if (args.json) process.stdout.write(JSON.stringify(errorJson(outcome.error), null, 2) + "\n");
    process.stderr.write(`error: ${outcome.error}\n`);
    return 1;
  }
  process.stdout.write(args.json ? JSON.stringify(outcome.report, null, 2) + "\n" : render(outcome.report));
  return outcome.status;
}
