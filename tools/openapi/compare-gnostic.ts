// Compares gen/openapi.json (our generator) with what gnostic's
// protoc-gen-openapi writes from the same protos, on what the REST contract
// and the fuzzer rely on: every annotated operation, field rules as JSON
// Schema, oneof constraints, which operations need a token, error responses
// per code, and server-streaming routes. `make openapi-compare` runs the
// plugin first; the figures are recorded in docs/decisions.md ("## Clients").
import { readFileSync } from "node:fs";
import { parse } from "yaml";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Document = { paths?: Record<string, Record<string, { security?: Json[]; responses?: Record<string, Json> } | Json>>; components?: { securitySchemes?: Record<string, Json> }; security?: Json[] };

const METHODS = new Set(["get", "post", "put", "patch", "delete"]);
const RULES = ["minLength", "maxLength", "pattern", "format", "minimum", "maximum", "minItems", "maxItems", "oneOf", "required"];

function count(value: Json | undefined, key: string): number {
  if (value === null || typeof value !== "object") return 0;
  if (Array.isArray(value)) return value.reduce((n: number, v) => n + count(v, key), 0);
  return Object.entries(value).reduce((n, [k, v]) => n + (k === key ? 1 : 0) + count(v, key), 0);
}

function summarise(doc: Document) {
  const operations = Object.values(doc.paths ?? {}).flatMap((item) =>
    Object.entries(item)
      .filter(([method]) => METHODS.has(method))
      .map(([, op]) => op as { security?: Json[]; responses?: Record<string, Json> }),
  );
  const public_ = operations.filter((op) => Array.isArray(op.security) && op.security.length === 0).length;
  const errorCodes = new Set(operations.flatMap((op) => Object.keys(op.responses ?? {}).filter((c) => /^[45]\d\d$/.test(c))));
  // The edge writes server streams newline-delimited: does the 200 response say so?
  const stream = ((doc.paths?.["/v1/realtime/stream"]?.["get"] as { responses?: Record<string, Json> } | undefined)?.responses?.["200"] ?? {}) as Json;
  return {
    operations: operations.length,
    ...Object.fromEntries(RULES.map((rule) => [rule, count(doc as unknown as Json, rule)])),
    securitySchemes: Object.keys(doc.components?.securitySchemes ?? {}).length,
    publicOperations: public_,
    errorCodes: [...errorCodes].sort().join(" ") || "(default only)",
    streamAsNewlineDelimited: /newline-delimited/i.test(JSON.stringify(stream)),
  };
}

const ours = summarise(JSON.parse(readFileSync("gen/openapi.json", "utf8")) as Document);
const gnostic = summarise(parse(readFileSync("build/openapi-compare/gnostic/openapi.yaml", "utf8")) as Document);
console.log("| | ours (gen/openapi.json) | gnostic protoc-gen-openapi |");
console.log("|---|---|---|");
for (const key of Object.keys(ours) as (keyof typeof ours)[]) console.log(`| ${key} | ${String(ours[key])} | ${String(gnostic[key])} |`);
