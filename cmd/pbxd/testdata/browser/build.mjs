// Build step of the browser pages: JsSIP 3.13 ships CommonJS only, so it is
// bundled with esbuild into one IIFE that defines the global JsSIP. SIP.js
// is ESM with relative imports and needs no build: the page server serves
// node_modules/sip.js/lib as it is.
//
// bundle() returns the built files in memory (run.mjs serves them from
// there); `node build.mjs [outdir]` writes them to outdir (default dist/)
// to look at.

import * as esbuild from "esbuild";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const here = dirname(fileURLToPath(import.meta.url));

// bundle returns a map from URL path ("/build/jssip.js") to contents.
export async function bundle() {
  const res = await esbuild.build({
    entryPoints: [join(here, "node_modules", "jssip", "lib", "JsSIP.js")],
    bundle: true,
    format: "iife",
    globalName: "JsSIP",
    platform: "browser",
    target: "chrome120",
    write: false,
    outfile: "jssip.js",
    logLevel: "warning",
    legalComments: "inline",
  });
  const out = new Map();
  for (const f of res.outputFiles) {
    out.set("/build/" + f.path.split("/").pop(), f.contents);
  }
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const dir = process.argv[2] || join(here, "dist");
  mkdirSync(dir, { recursive: true });
  for (const [path, contents] of await bundle()) {
    const file = join(dir, path.replace(/^\/build\//, ""));
    writeFileSync(file, contents);
    console.log(`${file}: ${contents.length} bytes`);
  }
}
