// Wire compatibility: a plain @grpc/grpc-js client — not Connect — calls the
// auth service over HTTP/2 with the protobuf binary format.
import test from "ava";
import * as grpc from "@grpc/grpc-js";
import { fromBinary, toBinary, create, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import {
  AuthService,
  GetMeRequestSchema,
  GetMeResponseSchema,
  LoginRequestSchema,
  LoginResponseSchema,
  RegisterRequestSchema,
  RegisterResponseSchema,
} from "@aviary/gen/aviary/auth/v1/auth_pb";
import { startTestAuth, uniqueEmail, type TestAuth } from "./harness.ts";

let auth: TestAuth;
let channel: grpc.Client;
test.before(async () => {
  auth = await startTestAuth();
  channel = new grpc.Client(new URL(auth.service.url).host, grpc.credentials.createInsecure());
});
test.after.always(async () => {
  channel?.close();
  await auth?.close();
});

/** One unary call with grpc-js, serialising with the generated protobuf-es schemas. */
function unary<I extends DescMessage, O extends DescMessage>(
  method: string,
  input: I,
  output: O,
  request: MessageShape<I>,
  metadata = new grpc.Metadata(),
): Promise<MessageShape<O>> {
  return new Promise((resolve, reject) => {
    channel.makeUnaryRequest(
      `/${AuthService.typeName}/${method}`,
      (message: MessageShape<I>) => Buffer.from(toBinary(input, message)),
      (bytes: Buffer) => fromBinary(output, bytes),
      request,
      metadata,
      (error, response) => (error ? reject(error) : resolve(response as MessageShape<O>)),
    );
  });
}

test("register, login and an authenticated call over grpc-js", async (t) => {
  const email = uniqueEmail("grpcjs");
  const password = "violet-harbour-teapot-42";
  const registered = await unary("Register", RegisterRequestSchema, RegisterResponseSchema, create(RegisterRequestSchema, { identity: { case: "email", value: email }, password }));
  t.is(registered.identity, email);
  const login = await unary("Login", LoginRequestSchema, LoginResponseSchema, create(LoginRequestSchema, { identity: { case: "email", value: email }, password }));
  const metadata = new grpc.Metadata();
  metadata.set("authorization", `Bearer ${login.tokens?.accessToken}`);
  const me = await unary("GetMe", GetMeRequestSchema, GetMeResponseSchema, create(GetMeRequestSchema), metadata);
  t.is(me.userId, registered.userId);
});

test("grpc-js sees gRPC status codes and field violations in grpc-status-details-bin", async (t) => {
  const error = await t.throwsAsync<grpc.ServiceError>(
    unary("Register", RegisterRequestSchema, RegisterResponseSchema, create(RegisterRequestSchema, { identity: { case: "email", value: "nope" }, password: "short" })),
  );
  t.is(error?.code, grpc.status.INVALID_ARGUMENT);
  t.true((error?.metadata.get("grpc-status-details-bin").length ?? 0) > 0);
  const unauthenticated = await t.throwsAsync<grpc.ServiceError>(unary("GetMe", GetMeRequestSchema, GetMeResponseSchema, create(GetMeRequestSchema)));
  t.is(unauthenticated?.code, grpc.status.UNAUTHENTICATED);
});
