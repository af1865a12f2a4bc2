// Builds the web app into one directory of three files the edge serves
// (index.html, app.js, app.css): `node clients/web/build.ts [--out DIR]`,
// default build/web. `make dev` and the browser test call `buildWebApp`.
import { copyFile, mkdir, stat } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { build } from "esbuild";
import { MAX_DOCS_BYTES } from "../../tools/edge/envoy-config.ts";

const here = import.meta.dirname;
export const defaultWebAppDir = path.resolve(here, "../../build/web");

export async function buildWebApp(outDir = defaultWebAppDir): Promise<string> {
  await mkdir(outDir, { recursive: true });
  await build({
    entryPoints: [path.join(here, "src/main.ts")],
    outfile: path.join(outDir, "app.js"),
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    legalComments: "none",
    logLevel: "warning",
  });
  await copyFile(path.join(here, "index.html"), path.join(outDir, "index.html"));
  await copyFile(path.join(here, "app.css"), path.join(outDir, "app.css"));
  // Envoy answers these from files and refuses a config naming a larger one.
  const { size } = await stat(path.join(outDir, "app.js"));
  if (size > MAX_DOCS_BYTES) throw new Error(`app.js is ${size} bytes, above the edge's ${MAX_DOCS_BYTES}-byte direct response limit`);
  return outDir;
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { out: { type: "string" } } });
  const dir = await buildWebApp(values.out ? path.resolve(values.out) : undefined);
  console.log(`built the web app into ${path.relative(process.cwd(), dir) || "."}`);
}
