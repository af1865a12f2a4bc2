// gen/openapi.json (OpenAPI 3.1) and gen/docs.html from the descriptor set
// `make generate` writes (gen/aviary.binpb) — the file Envoy's transcoder
// loads, so the document describes exactly the REST surface the edge serves.
//
// - one operation per google.api.http rule (additional_bindings included),
//   operationId `Service_Method`, one tag per service;
// - summaries/descriptions from the proto comments (buf build keeps source info);
// - component schemas in the proto3 JSON mapping (lowerCamel or explicit json
//   names, 64-bit integers as strings, enums as strings, well-known types as
//   their JSON forms), with the aviary.validate.v1 field rules as JSON Schema;
// - bearer JWT on every operation except the edge's public methods
//   (deploy/envoy/routes.ts, itself tested equal to the auth service's list);
// - errors as google.rpc.Status JSON (what the edge answers).
//
// Options: --descriptors FILE (default gen/aviary.binpb), --out DIR (default gen/),
// --check (exit 1 when the committed files differ from a fresh render).
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { createFileRegistry, fromBinary, getExtension, hasExtension, ScalarType } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import type { DescEnum, DescField, DescFile, DescMessage, DescMethod, DescOneof, DescService } from "@bufbuild/protobuf";
import { http } from "@aviary/gen/google/api/annotations_pb";
import type { HttpRule } from "@aviary/gen/google/api/http_pb";
import { field_behavior, FieldBehavior } from "@aviary/gen/google/api/field_behavior_pb";
import { field as fieldRules, oneof as oneofRules, Format } from "@aviary/gen/aviary/validate/v1/validate_pb";
import { edgeRoutes } from "../../deploy/envoy/routes.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

export const STATUS_SCHEMA = "google.rpc.Status";
export const ERROR_RESPONSES: Record<string, string> = {
  "400": "INVALID_ARGUMENT / FAILED_PRECONDITION / OUT_OF_RANGE: the request was rejected (google.rpc.BadRequest details name the fields); nothing was written.",
  "401": "UNAUTHENTICATED: missing, invalid, expired or revoked access token.",
  "403": "PERMISSION_DENIED: the token is valid but may not do this.",
  "404": "NOT_FOUND: no such resource, or no route for this method and path.",
  "409": "ALREADY_EXISTS / ABORTED: conflicts with the current state.",
  "429": "RESOURCE_EXHAUSTED: a rate limit; google.rpc.RetryInfo and a retry-after header say when to retry.",
  "503": "UNAVAILABLE: the service (or one of its dependencies) is down; retry with backoff.",
};
/** Error responses a public operation can return (no token is checked, so no 401/403). */
const PUBLIC_ERRORS = ["400", "404", "409", "429", "503"];
const PROTECTED_ERRORS = ["400", "401", "403", "404", "409", "429", "503"];

export interface OpenApiOptions {
  descriptorSet: string;
  /** Fully qualified method names (`pkg.Service/Method`) callable without a token. */
  publicMethods: ReadonlySet<string>;
}

export function publicMethodsFromRoutes(): Set<string> {
  return new Set(edgeRoutes.flatMap((route) => route.publicMethods.map((m) => `${route.service}/${m}`)));
}

// --- comments --------------------------------------------------------------

function sourcePath(desc: DescMessage | DescField | DescEnum | DescService | DescMethod): number[] {
  switch (desc.kind) {
    case "message":
      return desc.parent
        ? [...sourcePath(desc.parent), 3, desc.parent.proto.nestedType.indexOf(desc.proto)]
        : [4, desc.file.proto.messageType.indexOf(desc.proto)];
    case "enum":
      return desc.parent
        ? [...sourcePath(desc.parent), 4, desc.parent.proto.enumType.indexOf(desc.proto)]
        : [5, desc.file.proto.enumType.indexOf(desc.proto)];
    case "field":
      return [...sourcePath(desc.parent), 2, desc.parent.proto.field.indexOf(desc.proto)];
    case "service":
      return [6, desc.file.proto.service.indexOf(desc.proto)];
    case "rpc":
      return [...sourcePath(desc.parent), 2, desc.parent.proto.method.indexOf(desc.proto)];
  }
}

const commentCache = new Map<DescFile, Map<string, string>>();

/** The leading comment (or the trailing one), trimmed, paragraphs kept. */
function commentOf(desc: DescMessage | DescField | DescEnum | DescService | DescMethod): string | undefined {
  const file = desc.kind === "field" || desc.kind === "rpc" ? desc.parent.file : desc.file;
  let byPath = commentCache.get(file);
  if (!byPath) {
    byPath = new Map();
    for (const location of file.proto.sourceCodeInfo?.location ?? []) {
      const text = location.leadingComments || location.trailingComments;
      if (text) byPath.set(location.path.join("."), text);
    }
    commentCache.set(file, byPath);
  }
  const raw = byPath.get(sourcePath(desc).join("."));
  if (!raw) return undefined;
  const text = raw
    .split("\n")
    .map((line) => line.replace(/^ /, "").trimEnd())
    .join("\n")
    .replace(/([^\n])\n(?!\n)/g, "$1 ")
    .trim();
  return text || undefined;
}

/** The first sentence (or line) of a comment. */
function summaryOf(text: string | undefined): string | undefined {
  if (!text) return undefined;
  const firstParagraph = text.split("\n\n")[0] ?? text;
  const match = /^(.*?\.)(\s|$)/s.exec(firstParagraph);
  return (match?.[1] ?? firstParagraph).trim();
}

// --- schemas ---------------------------------------------------------------

const INT64_TYPES = new Set([ScalarType.INT64, ScalarType.UINT64, ScalarType.SINT64, ScalarType.FIXED64, ScalarType.SFIXED64]);

function scalarSchema(scalar: ScalarType): JsonObject {
  switch (scalar) {
    case ScalarType.STRING:
      return { type: "string" };
    case ScalarType.BYTES:
      return { type: "string", contentEncoding: "base64" };
    case ScalarType.BOOL:
      return { type: "boolean" };
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return { type: "integer", format: "int32" };
    case ScalarType.UINT32:
    case ScalarType.FIXED32:
      return { type: "integer", format: "int64", minimum: 0, maximum: 4294967295 };
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      // proto3 JSON writes 64-bit integers as strings (and accepts numbers).
      return { type: "string", format: "int64", pattern: "^-?[0-9]+$" };
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return { type: "string", format: "uint64", pattern: "^[0-9]+$" };
    case ScalarType.DOUBLE:
      return { type: "number", format: "double" };
    case ScalarType.FLOAT:
      return { type: "number", format: "float" };
  }
}

/** Well-known types have their own JSON forms; null when `typeName` is an ordinary message. */
function wellKnownSchema(typeName: string): JsonObject | null {
  switch (typeName) {
    case "google.protobuf.Timestamp":
      return { type: "string", format: "date-time", description: "RFC 3339, UTC (\"2026-01-02T03:04:05.678Z\")." };
    case "google.protobuf.Duration":
      return { type: "string", pattern: "^-?[0-9]+(\\.[0-9]{1,9})?s$", description: "Seconds with an `s` suffix (\"1.5s\")." };
    case "google.protobuf.Empty":
      return { type: "object", additionalProperties: false };
    case "google.protobuf.FieldMask":
      return { type: "string", description: "Comma-separated lowerCamel field paths." };
    case "google.protobuf.Struct":
      return { type: "object" };
    case "google.protobuf.Value":
      return {};
    case "google.protobuf.ListValue":
      return { type: "array" };
    case "google.protobuf.Any":
      return {
        type: "object",
        properties: { "@type": { type: "string", description: "type.googleapis.com/<message type>" } },
        required: ["@type"],
        additionalProperties: true,
      };
    case "google.protobuf.BoolValue":
      return { type: ["boolean", "null"] };
    case "google.protobuf.StringValue":
      return { type: ["string", "null"] };
    case "google.protobuf.BytesValue":
      return { type: ["string", "null"], contentEncoding: "base64" };
    case "google.protobuf.Int32Value":
    case "google.protobuf.UInt32Value":
      return { type: ["integer", "null"] };
    case "google.protobuf.Int64Value":
    case "google.protobuf.UInt64Value":
      return { type: ["string", "null"], pattern: "^-?[0-9]+$" };
    case "google.protobuf.DoubleValue":
    case "google.protobuf.FloatValue":
      return { type: ["number", "null"] };
    default:
      return null;
  }
}

function ref(typeName: string): JsonObject {
  return { $ref: `#/components/schemas/${typeName}` };
}

class SchemaBuilder {
  readonly schemas = new Map<string, JsonObject>();

  /** Registers a message (and everything it reaches); returns the schema to use where it is referenced. */
  message(message: DescMessage): JsonObject {
    const wkt = wellKnownSchema(message.typeName);
    if (wkt) return wkt;
    if (!this.schemas.has(message.typeName)) {
      this.schemas.set(message.typeName, {}); // placeholder: recursion
      this.schemas.set(message.typeName, this.messageSchema(message));
    }
    return ref(message.typeName);
  }

  /** The message's schema as a request body whose `fromPath` fields (proto names) come from the path: not required in the body. */
  bodyOf(message: DescMessage, fromPath: ReadonlySet<string>): JsonObject {
    const reference = this.message(message);
    const schema = this.schemas.get(message.typeName);
    const pathJsonNames = new Set(message.fields.filter((f) => fromPath.has(f.name)).map((f) => f.jsonName));
    const required = Array.isArray(schema?.["required"]) ? schema["required"] : [];
    if (!schema || !required.some((name) => typeof name === "string" && pathJsonNames.has(name))) return reference;
    const rest = required.filter((name) => typeof name !== "string" || !pathJsonNames.has(name));
    const { required: _, ...body } = schema;
    return rest.length > 0 ? { ...body, required: rest } : body;
  }

  enumRef(desc: DescEnum): JsonObject {
    if (desc.typeName === "google.protobuf.NullValue") return { type: "null" };
    if (!this.schemas.has(desc.typeName)) {
      const schema: JsonObject = { type: "string", enum: desc.values.map((v) => v.name) };
      const description = commentOf(desc);
      if (description) schema["description"] = description;
      this.schemas.set(desc.typeName, schema);
    }
    return ref(desc.typeName);
  }

  private messageSchema(message: DescMessage): JsonObject {
    const properties: JsonObject = {};
    const required: string[] = [];
    for (const f of message.fields) {
      properties[f.jsonName] = this.fieldSchema(f);
      if (isRequired(f)) required.push(f.jsonName);
    }
    const schema: JsonObject = { type: "object", properties };
    if (required.length > 0) schema["required"] = required;
    const notes: string[] = [];
    const oneOfGroups: Json[] = [];
    for (const o of message.oneofs) {
      const members = o.fields.map((f) => f.jsonName);
      const mustSet = mustBeSet(o);
      notes.push(`\`${o.name}\` is a oneof: set ${mustSet ? "exactly" : "at most"} one of ${members.map((m) => `\`${m}\``).join(", ")}.`);
      if (mustSet) oneOfGroups.push({ oneOf: members.map((m) => ({ required: [m] })) });
    }
    if (oneOfGroups.length === 1) Object.assign(schema, oneOfGroups[0] as JsonObject);
    else if (oneOfGroups.length > 1) schema["allOf"] = oneOfGroups;
    const description = [commentOf(message), ...notes].filter(Boolean).join("\n\n");
    if (description) schema["description"] = description;
    return schema;
  }

  fieldSchema(f: DescField): JsonObject {
    let schema: JsonObject;
    switch (f.fieldKind) {
      case "scalar":
        schema = scalarSchema(f.scalar);
        break;
      case "enum":
        schema = this.enumRef(f.enum);
        break;
      case "message":
        schema = this.message(f.message);
        break;
      case "list": {
        const items = f.listKind === "scalar" ? scalarSchema(f.scalar) : f.listKind === "enum" ? this.enumRef(f.enum) : this.message(f.message);
        schema = { type: "array", items };
        break;
      }
      case "map": {
        const values = f.mapKind === "scalar" ? scalarSchema(f.scalar) : f.mapKind === "enum" ? this.enumRef(f.enum) : this.message(f.message);
        schema = { type: "object", additionalProperties: values };
        break;
      }
    }
    schema = { ...schema };
    const notes: string[] = [];
    const comment = commentOf(f);
    if (comment) notes.push(comment);
    if (f.oneof) notes.push(`Member of the oneof \`${f.oneof.name}\`.`);
    applyRules(f, schema, notes);
    if (behaviors(f).includes(FieldBehavior.OUTPUT_ONLY)) schema["readOnly"] = true;
    if (notes.length > 0) schema["description"] = notes.join(" ");
    return schema;
  }
}

function behaviors(f: DescField): FieldBehavior[] {
  return f.proto.options && hasExtension(f.proto.options, field_behavior) ? getExtension(f.proto.options, field_behavior) : [];
}

function isRequired(f: DescField): boolean {
  if (behaviors(f).includes(FieldBehavior.REQUIRED)) return true;
  return f.proto.options !== undefined && hasExtension(f.proto.options, fieldRules) && getExtension(f.proto.options, fieldRules).required;
}

/** Whether the empty message would be rejected: a required field (other than those the path sets) or a oneof that must be set. */
function hasRequiredFields(message: DescMessage, fromPath: ReadonlySet<string>): boolean {
  if (message.fields.some((f) => isRequired(f) && !fromPath.has(f.name))) return true;
  return message.oneofs.some(mustBeSet);
}

function mustBeSet(o: DescOneof): boolean {
  return o.proto.options !== undefined && hasExtension(o.proto.options, oneofRules) && getExtension(o.proto.options, oneofRules).required;
}

/** aviary.validate.v1 rules as JSON Schema keywords (what JSON Schema cannot say goes into x-aviary-* and the description). */
function applyRules(f: DescField, schema: JsonObject, notes: string[]): void {
  if (!f.proto.options || !hasExtension(f.proto.options, fieldRules)) return;
  const rules = getExtension(f.proto.options, fieldRules);
  const isString = f.fieldKind === "scalar" && f.scalar === ScalarType.STRING;
  const isInt64 = f.fieldKind === "scalar" && INT64_TYPES.has(f.scalar);
  if (rules.required) {
    if (isString && rules.minLen === undefined) schema["minLength"] = 1;
    if (f.fieldKind === "list" && rules.maxItems !== 0) schema["minItems"] = 1;
  }
  if (rules.minLen !== undefined) schema["minLength"] = rules.minLen;
  if (rules.maxLen !== undefined) schema["maxLength"] = rules.maxLen;
  if (rules.maxBytes !== undefined) {
    schema["x-aviary-max-bytes"] = rules.maxBytes;
    notes.push(`At most ${rules.maxBytes} bytes (UTF-8).`);
  }
  if (rules.pattern) schema["pattern"] = rules.pattern;
  switch (rules.format) {
    case Format.EMAIL:
      schema["format"] = "email";
      break;
    case Format.UUID:
      schema["format"] = "uuid";
      break;
    case Format.PHONE:
      schema["x-aviary-format"] = "phone";
      notes.push("A phone number; normalised to E.164 (+ and 8 to 15 digits).");
      break;
    default:
      break;
  }
  if (rules.min !== undefined) {
    if (isInt64) schema["x-aviary-minimum"] = rules.min.toString();
    else schema["minimum"] = Number(rules.min);
  }
  if (rules.max !== undefined) {
    if (isInt64) schema["x-aviary-maximum"] = rules.max.toString();
    else schema["maximum"] = Number(rules.max);
  }
  if (rules.maxItems !== undefined) schema["maxItems"] = rules.maxItems;
  if (rules.definedEnum && f.fieldKind === "enum") {
    const zero = f.enum.values.find((v) => v.number === 0);
    if (zero) schema["not"] = { const: zero.name };
    notes.push("Must be a declared value other than the zero value.");
  }
}

// --- operations ------------------------------------------------------------

type Verb = "get" | "post" | "put" | "patch" | "delete";

interface Binding {
  verb: Verb;
  template: string;
  body: string;
  responseBody: string;
}

function bindings(method: DescMethod): Binding[] {
  if (!method.proto.options || !hasExtension(method.proto.options, http)) return [];
  const rule = getExtension(method.proto.options, http);
  return [rule, ...rule.additionalBindings].map((r: HttpRule) => {
    const p = r.pattern;
    if (p.case === "get" || p.case === "post" || p.case === "put" || p.case === "patch" || p.case === "delete") {
      return { verb: p.case, template: p.value, body: r.body, responseBody: r.responseBody };
    }
    throw new Error(`${method.parent.typeName}/${method.name}: unsupported google.api.http pattern ${String(p.case)}`);
  });
}

/** `/v1/things/{thing_id=things/*}` → path `/v1/things/{thing_id}` and variables [`thing_id`]. */
export function parseTemplate(template: string): { path: string; variables: string[] } {
  const variables: string[] = [];
  const pathText = template.replace(/\{([^}=]+)(=[^}]*)?\}/g, (_m, name: string) => {
    variables.push(name);
    return `{${name}}`;
  });
  return { path: pathText, variables };
}

function fieldByPath(message: DescMessage, fieldPath: string): DescField {
  let current = message;
  const parts = fieldPath.split(".");
  for (const [i, part] of parts.entries()) {
    const f = current.fields.find((x) => x.name === part);
    if (!f) throw new Error(`${message.typeName} has no field ${fieldPath}`);
    if (i === parts.length - 1) return f;
    if (f.fieldKind !== "message") throw new Error(`${message.typeName}.${fieldPath}: ${part} is not a message`);
    current = f.message;
  }
  throw new Error(`empty field path in ${message.typeName}`);
}

function isQueryable(f: DescField): boolean {
  if (f.fieldKind === "scalar" || f.fieldKind === "enum") return true;
  if (f.fieldKind === "list") return f.listKind !== "message";
  if (f.fieldKind === "message") return wellKnownSchema(f.message.typeName) !== null && f.message.typeName !== "google.protobuf.Any";
  return false;
}

function parameter(name: string, where: "path" | "query", f: DescField, builder: SchemaBuilder): JsonObject {
  const schema = builder.fieldSchema(f);
  const description = schema["description"];
  delete schema["description"];
  const param: JsonObject = { name, in: where, required: where === "path" || isRequired(f), schema };
  if (typeof description === "string") param["description"] = description;
  if (f.fieldKind === "list") {
    param["style"] = "form";
    param["explode"] = true;
  }
  return param;
}

function responseSet(codes: string[]): JsonObject {
  const responses: JsonObject = {};
  for (const code of codes) responses[code] = { $ref: `#/components/responses/Error${code}` };
  responses["default"] = { $ref: "#/components/responses/Error" };
  return responses;
}

function operation(method: DescMethod, binding: Binding, isPublic: boolean, builder: SchemaBuilder, multiple: boolean, index: number): JsonObject {
  const service = method.parent;
  const { variables } = parseTemplate(binding.template);
  const parameters: Json[] = [];
  const bound = new Set<string>();
  for (const variable of variables) {
    parameters.push(parameter(variable, "path", fieldByPath(method.input, variable), builder));
    bound.add(variable.split(".")[0]!);
  }
  let requestBody: JsonObject | undefined;
  if (binding.body === "*") {
    // The transcoder reads a missing body as the empty message, so the body is only required when that would be
    // rejected; fields bound from the path are set by the path, so the body need not repeat them.
    const fromPath = new Set(variables.map((v) => v.split(".")[0]!));
    const schema = variables.length > 0 ? builder.bodyOf(method.input, fromPath) : builder.message(method.input);
    requestBody = { required: hasRequiredFields(method.input, fromPath), content: { "application/json": { schema } } };
    if (variables.length > 0) {
      requestBody["description"] = `The path parameters (${variables.join(", ")}) take precedence over the same fields in the body.`;
    }
  } else {
    if (binding.body) {
      const bodyField = fieldByPath(method.input, binding.body);
      requestBody = { required: isRequired(bodyField), content: { "application/json": { schema: builder.fieldSchema(bodyField) } } };
      bound.add(bodyField.name);
    }
    for (const f of method.input.fields) {
      if (bound.has(f.name) || !isQueryable(f)) continue;
      parameters.push(parameter(f.name, "query", f, builder));
    }
  }
  let responseSchema = builder.message(method.output);
  if (binding.responseBody) responseSchema = builder.fieldSchema(fieldByPath(method.output, binding.responseBody));
  const streaming = method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming";
  const description = commentOf(method);
  const op: JsonObject = {
    operationId: multiple ? `${service.name}_${method.name}_${index}` : `${service.name}_${method.name}`,
    tags: [service.name],
    "x-grpc-method": `/${service.typeName}/${method.name}`,
    parameters,
    responses: {
      "200": {
        // The edge's transcoder writes a server stream newline-delimited
        // (stream_newline_delimited in tools/edge/envoy-config.ts): each line
        // is one message, so the schema is the message's, not an array's.
        description: streaming ? "A stream of response messages: newline-delimited JSON, one message a line, written as they arrive." : "OK",
        content: { "application/json": { schema: responseSchema, ...(streaming ? { "x-aviary-stream": "newline-delimited" } : {}) } },
      },
      ...responseSet(isPublic ? PUBLIC_ERRORS : PROTECTED_ERRORS),
    },
    security: isPublic ? [] : [{ bearerAuth: [] }],
  };
  const summary = summaryOf(description);
  if (summary) op["summary"] = summary;
  if (description) op["description"] = description;
  if (requestBody) op["requestBody"] = requestBody;
  return op;
}

// --- links -----------------------------------------------------------------

/**
 * Where an operation's response carries each id, by proto field name: its own
 * scalar fields (`/userId`) and those of its singular message fields
 * (`/post/postId`), one JSON pointer per name per message, so a link's
 * parameters all come from one resource.
 */
function idSources(output: DescMessage): Array<Map<string, string>> {
  const scalars = (message: DescMessage, prefix: string) =>
    new Map(message.fields.filter((f) => f.fieldKind === "scalar" && f.scalar !== ScalarType.BYTES).map((f) => [f.name, `${prefix}/${f.jsonName}`] as const));
  const nested = output.fields.filter((f) => f.fieldKind === "message" && wellKnownSchema(f.message.typeName) === null);
  return [scalars(output, ""), ...nested.map((f) => scalars(f.message as DescMessage, `/${f.jsonName}`))];
}

/**
 * OpenAPI links (what stateful fuzzing follows, e.g. CreatePost → GetPost):
 * from every POST operation to every operation whose path parameters its
 * response supplies, each parameter from the response field of the same
 * proto name (`post_id` ← `post.post_id`), all from one resource.
 */
function addLinks(paths: { [path: string]: JsonObject }, services: DescService[]): void {
  const methodsByGrpc = new Map<string, DescMethod>(services.flatMap((service) => service.methods.map((m) => [`/${service.typeName}/${m.name}`, m] as const)));
  const operations = Object.entries(paths).flatMap(([p, item]) => Object.entries(item).map(([verb, op]) => ({ path: p, verb, op: op as JsonObject })));
  for (const source of operations) {
    const method = methodsByGrpc.get(String(source.op["x-grpc-method"]));
    if (source.verb !== "post" || !method || method.methodKind !== "unary") continue;
    const sources = idSources(method.output);
    const links: JsonObject = {};
    for (const target of operations) {
      const variables = parseTemplate(target.path).variables;
      if (variables.length === 0 || target.op === source.op) continue;
      const from = sources.find((fields) => variables.every((v) => fields.has(v)));
      if (!from) continue;
      const parameters: JsonObject = {};
      for (const v of variables) parameters[v] = `$response.body#${from.get(v)}`;
      links[String(target.op["operationId"])] = { operationId: String(target.op["operationId"]), parameters };
    }
    const ok = (source.op["responses"] as JsonObject)["200"] as JsonObject;
    if (Object.keys(links).length > 0) ok["links"] = links;
  }
}

// --- document --------------------------------------------------------------

export function buildOpenApi(options: OpenApiOptions): JsonObject {
  const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, readFileSync(options.descriptorSet)));
  const services: DescService[] = [];
  for (const file of registry.files) services.push(...file.services);
  const builder = new SchemaBuilder();
  const paths: { [path: string]: JsonObject } = {};
  const tags: Json[] = [];
  for (const service of services) {
    const methods = service.methods.filter((m) => bindings(m).length > 0);
    if (methods.length === 0) continue;
    const tag: JsonObject = { name: service.name, "x-proto-service": service.typeName };
    const serviceComment = commentOf(service);
    if (serviceComment) tag["description"] = serviceComment;
    tags.push(tag);
    for (const method of methods) {
      const list = bindings(method);
      const isPublic = options.publicMethods.has(`${service.typeName}/${method.name}`);
      for (const [i, binding] of list.entries()) {
        const { path: p } = parseTemplate(binding.template);
        const item = (paths[p] ??= {});
        if (item[binding.verb]) throw new Error(`two operations for ${binding.verb.toUpperCase()} ${p}`);
        item[binding.verb] = operation(method, binding, isPublic, builder, list.length > 1, i);
      }
    }
  }
  addLinks(paths, services);
  builder.schemas.set(STATUS_SCHEMA, statusSchema(builder, registry.getMessage(STATUS_SCHEMA)));
  const responses: JsonObject = {
    Error: { description: "Any other error, as google.rpc.Status JSON.", content: { "application/json": { schema: ref(STATUS_SCHEMA) } } },
  };
  for (const [code, description] of Object.entries(ERROR_RESPONSES)) {
    const response: JsonObject = { description, content: { "application/json": { schema: ref(STATUS_SCHEMA) } } };
    if (code === "429") response["headers"] = { "retry-after": { description: "Seconds to wait before retrying.", schema: { type: "integer" } } };
    if (code === "401") response["headers"] = { "www-authenticate": { description: "The bearer challenge.", schema: { type: "string" } } };
    responses[`Error${code}`] = response;
  }
  const schemas: JsonObject = {};
  for (const [name, schema] of builder.schemas) schemas[name] = schema;
  return {
    openapi: "3.1.0",
    jsonSchemaDialect: "https://spec.openapis.org/oas/3.1/dialect/base",
    info: {
      title: "Aviary API",
      version: "v1",
      description:
        "The REST/JSON surface of the Aviary edge, transcoded from the `google.api.http` annotations of the protos " +
        "(generated from gen/aviary.binpb by tools/openapi/generate-openapi.ts — do not edit). Field names are the proto3 JSON " +
        "names; request bodies also accept the proto field names. 64-bit integers are JSON strings, enums are their value names, " +
        "timestamps RFC 3339. Query parameters use the proto field names. The same methods are reachable over gRPC, gRPC-web and Connect.",
    },
    servers: [
      { url: "/", description: "the edge serving this document" },
      { url: "http://127.0.0.1:8080", description: "make dev" },
    ],
    tags,
    paths,
    components: {
      schemas,
      responses,
      securitySchemes: {
        bearerAuth: { type: "http", scheme: "bearer", bearerFormat: "JWT", description: "An access token from Login or Refresh (ES256, 15 minutes)." },
      },
    },
  };
}

function statusSchema(builder: SchemaBuilder, message: DescMessage | undefined): JsonObject {
  let base: JsonObject | undefined;
  if (message) {
    builder.message(message);
    base = builder.schemas.get(STATUS_SCHEMA);
  }
  base ??= {
    type: "object",
    properties: { code: { type: "integer", format: "int32" }, message: { type: "string" }, details: { type: "array", items: wellKnownSchema("google.protobuf.Any") ?? {} } },
  };
  return {
    ...base,
    required: ["code"],
    description:
      "The error body of every failed call at the edge: `code` is the numeric gRPC status code (3 INVALID_ARGUMENT, 16 UNAUTHENTICATED, …), " +
      "`details` are google.rpc error details with `@type` (google.rpc.BadRequest with one field violation per broken rule, google.rpc.RetryInfo on 429).",
    example: {
      code: 3,
      message: "invalid request",
      details: [
        {
          "@type": "type.googleapis.com/google.rpc.BadRequest",
          fieldViolations: [{ field: "session_id", description: "must be a UUID", reason: "FORMAT_UUID" }],
        },
      ],
    },
  };
}

/** JSON with object keys sorted, except where order carries meaning (schema `properties`: declaration order). */
export function stableStringify(value: Json): string {
  const order = (v: Json, parentKey: string | undefined): Json => {
    if (Array.isArray(v)) return v.map((x) => order(x, undefined));
    if (v === null || typeof v !== "object") return v;
    const keys = parentKey === "properties" ? Object.keys(v) : Object.keys(v).sort();
    const out: JsonObject = {};
    for (const k of keys) out[k] = order(v[k]!, k);
    return out;
  };
  return `${JSON.stringify(order(value, undefined), null, 2)}\n`;
}

export const docsTemplatePath = path.join(repoRoot, "tools/openapi/docs.html");
const INLINE_MARKER = '<script id="openapi-spec" type="application/json"></script>';

/** The docs page with the document inlined (no fetch needed). */
export function inlineDocs(template: string, specJson: string): string {
  if (!template.includes(INLINE_MARKER)) throw new Error(`tools/openapi/docs.html lacks ${INLINE_MARKER}`);
  const safe = specJson.trimEnd().replace(/</g, "\\u003c");
  return template.replace(INLINE_MARKER, () => `<script id="openapi-spec" type="application/json">${safe}</script>`);
}

export function renderFiles(descriptorSet: string): { openapi: string; docs: string } {
  const openapi = stableStringify(buildOpenApi({ descriptorSet, publicMethods: publicMethodsFromRoutes() }));
  const docs = inlineDocs(readFileSync(docsTemplatePath, "utf8"), openapi);
  return { openapi, docs };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values } = parseArgs({ options: { descriptors: { type: "string" }, out: { type: "string" }, check: { type: "boolean", default: false } } });
  const descriptorSet = values.descriptors ?? path.join(repoRoot, "gen/aviary.binpb");
  const outDir = values.out ?? path.join(repoRoot, "gen");
  const { openapi, docs } = renderFiles(descriptorSet);
  const files = { "openapi.json": openapi, "docs.html": docs };
  let stale = false;
  for (const [name, text] of Object.entries(files)) {
    const target = path.join(outDir, name);
    if (values.check) {
      let current = "";
      try {
        current = readFileSync(target, "utf8");
      } catch {}
      if (current !== text) {
        console.error(`${path.relative(repoRoot, target)} is stale: run 'make openapi'`);
        stale = true;
      }
    } else {
      writeFileSync(target, text);
      console.log(`wrote ${path.relative(process.cwd(), target)} (${Buffer.byteLength(text)} bytes)`);
    }
  }
  if (stale) process.exit(1);
}
