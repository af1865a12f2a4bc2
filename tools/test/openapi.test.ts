// gen/openapi.json against the descriptor set it is generated from: one
// operation per google.api.http binding, the edge's auth rules, the field
// rules, the proto3 JSON names, and a byte-stable render.
import test from "ava";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { publicProcedures } from "@aviary/auth";
import { clientFacingServices, readDescriptorSet } from "../edge/descriptors.ts";
import { docsTemplatePath, renderFiles } from "../openapi/generate-openapi.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const descriptorSet = path.join(repoRoot, "gen/aviary.binpb");
const committed = readFileSync(path.join(repoRoot, "gen/openapi.json"), "utf8");

type Schema = Record<string, any>;
const spec = JSON.parse(committed) as Schema;
const VERBS = ["get", "put", "post", "delete", "patch"] as const;

interface Op {
  path: string;
  verb: string;
  op: Schema;
}
const operations: Op[] = Object.entries(spec["paths"] as Record<string, Schema>).flatMap(([p, item]) =>
  VERBS.filter((v) => item[v]).map((verb) => ({ path: p, verb, op: item[verb] as Schema })),
);
const schemas = spec["components"]["schemas"] as Record<string, Schema>;

function deref(schema: Schema): Schema {
  const r = schema["$ref"];
  if (typeof r !== "string") return schema;
  const target = schemas[r.replace("#/components/schemas/", "")];
  if (!target) throw new Error(`dangling ${r}`);
  return target;
}

function opFor(grpcMethod: string): Op[] {
  return operations.filter((o) => o.op["x-grpc-method"] === `/${grpcMethod}`);
}

test("the committed document is what the generator writes, and rendering twice gives identical bytes", (t) => {
  const first = renderFiles(descriptorSet);
  const second = renderFiles(descriptorSet);
  t.is(first.openapi, second.openapi);
  t.is(first.docs, second.docs);
  t.is(first.openapi, committed, "gen/openapi.json is stale: run 'make openapi'");
  t.is(first.docs, readFileSync(path.join(repoRoot, "gen/docs.html"), "utf8"), "gen/docs.html is stale: run 'make openapi'");
});

test("OpenAPI 3.1 structure basics", (t) => {
  t.is(spec["openapi"], "3.1.0");
  t.truthy(spec["info"]["title"]);
  t.truthy(spec["info"]["version"]);
  const ids = operations.map((o) => o.op["operationId"] as string);
  t.is(new Set(ids).size, ids.length, "operationIds are unique");
  for (const { path: p, verb, op } of operations) {
    t.true(p.startsWith("/"), p);
    t.truthy(op["responses"]["200"], `${verb} ${p} has a 200`);
    t.true(Array.isArray(op["tags"]) && op["tags"].length === 1);
  }
  // Every $ref resolves.
  const text = JSON.stringify(spec);
  for (const match of text.matchAll(/"\$ref":"#\/components\/(schemas|responses)\/([^"]+)"/g)) {
    t.truthy(spec["components"][match[1]!][match[2]!], `dangling ${match[0]}`);
  }
  const tagNames = new Set((spec["tags"] as Schema[]).map((tag) => tag["name"]));
  for (const { op } of operations) t.true(tagNames.has(op["tags"][0]));
});

test("every annotated RPC has exactly one operation per binding, with its method and path, and nothing else exists", (t) => {
  const services = clientFacingServices(readDescriptorSet(descriptorSet));
  t.true(services.length > 0);
  let bindings = 0;
  for (const service of services) {
    for (const method of service.methods) {
      const ops = opFor(`${service.typeName}/${method.name}`);
      t.is(ops.length, method.rest.length, `${method.grpcPath}`);
      for (const binding of method.rest) {
        bindings += 1;
        const p = binding.template.replace(/\{([^}=]+)(=[^}]*)?\}/g, "{$1}");
        const found = ops.filter((o) => o.verb === binding.verb.toLowerCase() && o.path === p);
        t.is(found.length, 1, `${binding.verb} ${p} for ${method.grpcPath}`);
        if (method.rest.length === 1) t.is(found[0]?.op["operationId"], `${service.typeName.split(".").pop()}_${method.name}`);
      }
    }
  }
  t.is(operations.length, bindings, "no operation without a binding");
});

test("path parameters are declared, required, and typed from the request field", (t) => {
  for (const { path: p, verb, op } of operations) {
    const names = [...p.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]);
    const declared = (op["parameters"] as Schema[]).filter((x) => x["in"] === "path");
    t.deepEqual(declared.map((x) => x["name"]).sort(), [...names].sort(), `${verb} ${p}`);
    for (const param of declared) t.true(param["required"]);
  }
  const [revoke] = opFor("aviary.auth.v1.AuthService/RevokeSession");
  t.is(revoke?.verb, "delete");
  t.is(revoke?.path, "/v1/auth/sessions/{session_id}");
  const param = (revoke?.op["parameters"] as Schema[])[0]!;
  t.like(param, { name: "session_id", in: "path", required: true, schema: { type: "string", format: "uuid" } });
  t.is(revoke?.op["requestBody"], undefined);
});

test("GET query parameters come from the remaining request fields; body:* operations take the request message", (t) => {
  const [list] = opFor("aviary.auth.v1.AuthService/ListSessions");
  const query = (list?.op["parameters"] as Schema[]).filter((x) => x["in"] === "query");
  t.deepEqual(query.map((x) => x["name"]), ["page_size", "page_token"]);
  t.like(query[0]!, { schema: { type: "integer", minimum: 0, maximum: 100 } });
  t.like(query[1]!, { schema: { type: "string", maxLength: 512 } });
  const [login] = opFor("aviary.auth.v1.AuthService/Login");
  t.is(login?.op["requestBody"]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/aviary.auth.v1.LoginRequest");
  t.deepEqual(login?.op["parameters"], []);
  t.is(login?.op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/aviary.auth.v1.LoginResponse");
});

test("a body is required only when the empty message is rejected; fields the path sets are not required in it", (t) => {
  const [login] = opFor("aviary.auth.v1.AuthService/Login");
  t.true(login?.op["requestBody"]["required"]);
  // LogoutRequest has no required field: the transcoder reads a missing body as {}.
  const [logout] = opFor("aviary.auth.v1.AuthService/Logout");
  t.false(logout?.op["requestBody"]["required"]);
  // LikePost's only required field is the path's post_id.
  const [like] = opFor("aviary.post.v1.PostService/LikePost");
  t.false(like?.op["requestBody"]["required"]);
  t.is(like?.op["requestBody"]["content"]["application/json"]["schema"]["required"], undefined);
  const [comment] = opFor("aviary.post.v1.PostService/CreateComment");
  t.true(comment?.op["requestBody"]["required"]);
  t.deepEqual(comment?.op["requestBody"]["content"]["application/json"]["schema"]["required"], ["text"]);
  // The message schema itself keeps post_id required (it is the gRPC contract).
  t.true((schemas["aviary.post.v1.CreateCommentRequest"]!["required"] as string[]).includes("postId"));
});

test("links: a POST's response feeds the path parameters of the operations on what it returned", (t) => {
  const [create] = opFor("aviary.post.v1.PostService/CreatePost");
  const links = create?.op["responses"]["200"]["links"] as Record<string, Schema>;
  t.deepEqual(links["PostService_GetPost"], { operationId: "PostService_GetPost", parameters: { post_id: "$response.body#/post/postId" } });
  t.deepEqual(links["PostService_ListPostsByAuthor"]?.["parameters"], { author_id: "$response.body#/post/authorId" });
  // Every parameter of a link comes from the same resource.
  const [comment] = opFor("aviary.post.v1.PostService/CreateComment");
  t.deepEqual(comment?.op["responses"]["200"]["links"]["PostService_DeleteComment"]["parameters"], {
    comment_id: "$response.body#/comment/commentId",
    post_id: "$response.body#/comment/postId",
  });
  // Every link names an operation that exists, with exactly its path parameters.
  for (const { op } of operations) {
    for (const link of Object.values((op["responses"]["200"]["links"] ?? {}) as Record<string, Schema>)) {
      const target = operations.find((o) => o.op["operationId"] === link["operationId"]);
      t.truthy(target, String(link["operationId"]));
      const pathParams = (target?.op["parameters"] as Schema[]).filter((x) => x["in"] === "path").map((x) => x["name"]);
      t.deepEqual(Object.keys(link["parameters"]).sort(), pathParams.sort());
    }
  }
});

test("protected operations require a bearer token; the public ones (the auth service's publicProcedures) do not", (t) => {
  t.deepEqual(spec["components"]["securitySchemes"]["bearerAuth"], {
    type: "http",
    scheme: "bearer",
    bearerFormat: "JWT",
    description: spec["components"]["securitySchemes"]["bearerAuth"]["description"],
  });
  const publicSet = new Set(publicProcedures.map((p) => `/${p}`));
  let publicCount = 0;
  for (const { path: p, verb, op } of operations) {
    if (publicSet.has(op["x-grpc-method"])) {
      publicCount += 1;
      t.deepEqual(op["security"], [], `${verb} ${p} is public`);
      t.falsy(op["responses"]["401"]);
    } else {
      t.deepEqual(op["security"], [{ bearerAuth: [] }], `${verb} ${p} needs a token`);
      t.truthy(op["responses"]["401"]);
    }
  }
  t.is(publicCount, publicProcedures.length);
  t.is(spec["security"], undefined, "no document-wide default: every operation says it");
});

test("errors are google.rpc.Status JSON for 400/401/403/404/409/429/503", (t) => {
  const status = schemas["google.rpc.Status"]!;
  t.deepEqual(Object.keys(status["properties"]), ["code", "message", "details"]);
  t.is(status["properties"]["code"]["type"], "integer");
  t.is(status["properties"]["details"]["items"]["properties"]["@type"]["type"], "string");
  for (const code of ["400", "401", "403", "404", "409", "429", "503"]) {
    const response = spec["components"]["responses"][`Error${code}`];
    t.is(response["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/google.rpc.Status", code);
  }
  t.truthy(spec["components"]["responses"]["Error429"]["headers"]["retry-after"]);
  const [me] = opFor("aviary.auth.v1.AuthService/GetMe");
  for (const code of ["400", "401", "403", "404", "409", "429", "503"]) t.truthy(me?.op["responses"][code]);
});

test("field rules become JSON Schema keywords", (t) => {
  const register = schemas["aviary.auth.v1.RegisterRequest"]!;
  t.like(register["properties"]["password"], { type: "string", minLength: 10, maxLength: 128, "x-aviary-max-bytes": 512 });
  t.deepEqual(register["required"], ["password"]);
  t.is(register["properties"]["email"]["format"], "email");
  // The required oneof: exactly one identity.
  t.deepEqual(register["oneOf"], [{ required: ["email"] }, { required: ["phone"] }]);
  const verify = schemas["aviary.auth.v1.VerifyIdentityRequest"]!;
  t.is(verify["properties"]["code"]["pattern"], "^[0-9]{6}$");
  t.like(schemas["aviary.auth.v1.LoginRequest"]!["properties"]["deviceName"], { type: "string", maxLength: 100 });
  t.like(schemas["aviary.auth.v1.RefreshRequest"]!["properties"]["refreshToken"], { type: "string", minLength: 1, maxLength: 200 });
  t.deepEqual(schemas["aviary.auth.v1.RefreshRequest"]!["required"], ["refreshToken"]);
});

test("proto3 JSON mapping: lowerCamel and explicit json names, timestamps, descriptions from comments", (t) => {
  const [jwks] = opFor("aviary.auth.v1.AuthService/GetJwks");
  t.is(jwks?.path, "/.well-known/jwks.json");
  const jwksResponse = deref(jwks?.op["responses"]["200"]["content"]["application/json"]["schema"]);
  t.is(jwksResponse["properties"]["keys"]["type"], "array");
  const jwk = deref(jwksResponse["properties"]["keys"]["items"]);
  t.deepEqual(Object.keys(jwk["properties"]), ["kty", "kid", "use", "alg", "crv", "x", "y"]);

  const [discovery] = opFor("aviary.auth.v1.AuthService/GetOpenIdConfiguration");
  t.is(discovery?.path, "/.well-known/openid-configuration");
  const doc = deref(discovery?.op["responses"]["200"]["content"]["application/json"]["schema"]);
  t.deepEqual(Object.keys(doc["properties"]), [
    "issuer",
    "jwks_uri",
    "id_token_signing_alg_values_supported",
    "response_types_supported",
    "subject_types_supported",
    "token_endpoint",
  ]);

  const tokens = schemas["aviary.auth.v1.TokenPair"]!;
  t.deepEqual(Object.keys(tokens["properties"]), ["accessToken", "tokenType", "expiresInSeconds", "refreshToken", "refreshExpiresInSeconds"]);
  t.like(tokens["properties"]["expiresInSeconds"], { type: "integer", format: "int32" });
  t.like(schemas["aviary.auth.v1.Session"]!["properties"]["lastUsedAt"], { type: "string", format: "date-time" });

  const [login] = opFor("aviary.auth.v1.AuthService/Login");
  t.is(login?.op["summary"], "Exchanges credentials for an access token and a refresh token, opening a session.");
  t.regex(String(tokens["properties"]["accessToken"]["description"]), /JWT signed/);
});

test("the docs page is self-contained: no external scripts or styles, and it fetches /openapi.json when nothing is inlined", (t) => {
  const template = readFileSync(docsTemplatePath, "utf8");
  t.notRegex(template, /<script[^>]+src=/);
  t.notRegex(template, /<link[^>]+stylesheet/);
  t.notRegex(template, /https?:\/\/(?!spec\.openapis)/);
  t.regex(template, /"\/openapi\.json"/);
  const docs = readFileSync(path.join(repoRoot, "gen/docs.html"), "utf8");
  const inline = /<script id="openapi-spec" type="application\/json">([\s\S]*?)<\/script>/.exec(docs)?.[1];
  t.truthy(inline);
  t.deepEqual(JSON.parse(inline!), spec);
});
