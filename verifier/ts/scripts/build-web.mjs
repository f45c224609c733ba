// Builds dist/web/clyra-verify.html: the offline verification page as ONE self-contained file.
// esbuild bundles web/main.ts with the core (src/) into a single script, which is inlined with
// web/style.css into web/index.html. The page loads nothing: its CSP (in index.html) is
// default-src 'none' with inline script and style only, and no 'unsafe-eval' (the schema
// validators are precompiled, see gen-schemas.mjs). Run by `npm run build` and `npm run build:web`.
import { readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const web = join(root, "web");
const outFile = join(root, "dist", "web", "clyra-verify.html");
const { version } = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));

const result = await build({
  entryPoints: [join(web, "main.ts")],
  bundle: true,
  write: false,
  format: "iife",
  platform: "browser",
  target: "es2022",
  charset: "utf8",
  legalComments: "inline", // the libraries' license notices stay in the page
  // Readable, not minified: an auditor can read what the page runs with View Source.
  minify: false,
  logLevel: "warning",
});
let script = result.outputFiles[0].text;

// The script goes inside <script>...</script>: it must not close the element or open an HTML
// comment there. esbuild escapes "</script" in strings; check rather than trust.
if (/<\/script|<!--/i.test(script)) throw new Error("build-web: the bundled script contains </script or <!--");
// A cheap guard against network code creeping into the bundle (the CSP would block it anyway).
for (const api of ["fetch(", "XMLHttpRequest", "WebSocket", "EventSource", "sendBeacon", "importScripts"])
  if (script.includes(api)) throw new Error(`build-web: the bundled script uses ${api}`);
// And against run-time code generation, which the CSP forbids.
if (/new Function\s*\(|\beval\s*\(/.test(script)) throw new Error("build-web: the bundled script evaluates code");

const css = readFileSync(join(web, "style.css"), "utf8");
if (/<\/style/i.test(css)) throw new Error("build-web: style.css contains </style");
const banner = `/* @clyra/verify ${version}: the offline verification page, built from verifier/ts (web/main.ts and src/) by scripts/build-web.mjs. */\n`;
// Functions as replacements, so "$&" and the like in the code are not replacement patterns.
const html = readFileSync(join(web, "index.html"), "utf8")
  .replaceAll("__VERSION__", () => version)
  .replace("/*__STYLE__*/", () => css)
  .replace("/*__SCRIPT__*/", () => banner + script);

mkdirSync(dirname(outFile), { recursive: true });
writeFileSync(outFile, html);
console.log(`build-web: ${outFile.slice(root.length + 1)} (${(html.length / 1024).toFixed(0)} KiB)`);
