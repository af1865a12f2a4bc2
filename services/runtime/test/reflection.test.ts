// gRPC server reflection as real clients use it: grpcurl (built from source by
// `infra.sh tool grpcurl`) lists, describes and calls a runtime server with no
// protoset, and a Connect client checks the v1alpha twin and the error answers.
import test from "ava";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { ServerReflection as ReflectionV1Alpha } from "@aviary/gen/grpc/reflection/v1alpha/reflection_pb";
import { infraSh } from "../test-support/infra.ts";
import { startFixture, type Fixture } from "./server-fixture.ts";

let fixture: Fixture;
let grpcurlBinary: string;

test.before(async () => {
  [fixture, grpcurlBinary] = await Promise.all([startFixture(), infraSh(["tool", "grpcurl"]).then((out) => out.trim())]);
});
test.after.always(async () => fixture?.close());

const address = () => new URL(fixture.url).host;

async function grpcurl(...args: string[]): Promise<{ ok: boolean; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(grpcurlBinary, ["-plaintext", ...args], { encoding: "utf8", timeout: 60_000 });
    return { ok: true, stdout, stderr };
  } catch (e) {
    const failed = e as { stdout?: string; stderr?: string };
    return { ok: false, stdout: failed.stdout ?? "", stderr: failed.stderr ?? "" };
  }
}

test("grpcurl list names exactly the served services, reflection included", async (t) => {
  const listed = await grpcurl(address(), "list");
  t.true(listed.ok, listed.stderr);
  t.deepEqual(listed.stdout.trim().split("\n").sort(), [
    "aviary.auth.v1.AuthService",
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
  ]);
  const methods = await grpcurl(address(), "list", "aviary.auth.v1.AuthService");
  t.true(methods.ok, methods.stderr);
  t.true(methods.stdout.split("\n").includes("aviary.auth.v1.AuthService.Login"));
});

test("grpcurl describes methods and messages, imported types resolved", async (t) => {
  const method = await grpcurl(address(), "describe", "aviary.auth.v1.AuthService.Login");
  t.true(method.ok, method.stderr);
  t.regex(method.stdout, /rpc Login \( \.aviary\.auth\.v1\.LoginRequest \) returns \( \.aviary\.auth\.v1\.LoginResponse \)/);
  // A response that embeds a google.protobuf.Timestamp: describing it needs the imported file.
  const message = await grpcurl(address(), "describe", "aviary.auth.v1.Session");
  t.true(message.ok, message.stderr);
  t.regex(message.stdout, /message Session \{/);
  t.regex(message.stdout, /\.google\.protobuf\.Timestamp/);
  const missing = await grpcurl(address(), "describe", "aviary.post.v1.PostService");
  t.false(missing.ok);
  t.regex(missing.stderr, /not found/i);
});

test("grpcurl calls through reflection alone: public answers, protected refuses without a token", async (t) => {
  const health = await grpcurl("-d", "{}", address(), "grpc.health.v1.Health/Check");
  t.true(health.ok, health.stderr);
  t.deepEqual(JSON.parse(health.stdout), { status: "SERVING" });
  const me = await grpcurl("-d", "{}", address(), "aviary.auth.v1.AuthService/GetMe");
  t.false(me.ok);
  t.regex(me.stderr, /Code: Unauthenticated/);
  const withToken = await grpcurl("-H", `authorization: Bearer ${await fixture.token({ sub: "u-reflect" })}`, "-d", "{}", address(), "aviary.auth.v1.AuthService/GetMe");
  t.true(withToken.ok, withToken.stderr);
  t.is((JSON.parse(withToken.stdout) as { userId: string }).userId, "u-reflect");
});

test("v1alpha answers the same questions, and unknown names get NOT_FOUND answers on the open stream", async (t) => {
  const client = createClient(ReflectionV1Alpha, createGrpcTransport({ baseUrl: fixture.url }));
  async function* questions() {
    yield { messageRequest: { case: "listServices" as const, value: "" } };
    yield { messageRequest: { case: "fileContainingSymbol" as const, value: "aviary.auth.v1.AuthService.Login" } };
    yield { messageRequest: { case: "fileByFilename" as const, value: "no/such/file.proto" } };
    yield { messageRequest: { case: "allExtensionNumbersOfType" as const, value: "aviary.auth.v1.LoginRequest" } };
  }
  const answers = [];
  for await (const answer of client.serverReflectionInfo(questions())) answers.push(answer.messageResponse);
  t.is(answers.length, 4);
  const [services, symbol, missing, extensions] = answers;
  t.is(services?.case, "listServicesResponse");
  t.true(services?.case === "listServicesResponse" && services.value.service.some((s) => s.name === "aviary.auth.v1.AuthService"));
  t.is(symbol?.case, "fileDescriptorResponse");
  if (symbol?.case === "fileDescriptorResponse") {
    const names = symbol.value.fileDescriptorProto.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes).name);
    // The declaring file first, then what it imports.
    t.is(names[0], "aviary/auth/v1/auth.proto");
    t.true(names.includes("google/protobuf/timestamp.proto"));
  }
  t.is(missing?.case, "errorResponse");
  t.true(missing?.case === "errorResponse" && missing.value.errorCode === 5);
  t.is(extensions?.case, "allExtensionNumbersResponse");
  if (extensions?.case === "allExtensionNumbersResponse") {
    t.is(extensions.value.baseTypeName, "aviary.auth.v1.LoginRequest");
    t.deepEqual(extensions.value.extensionNumber, []);
  }
});
