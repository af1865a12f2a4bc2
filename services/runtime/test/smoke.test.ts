import test from "ava";
import { create, toBinary, fromBinary } from "@bufbuild/protobuf";
import { RegisterRequestSchema } from "@aviary/gen/aviary/auth/v1/auth_pb";

test("generated messages round-trip through the binary format", (t) => {
  const message = create(RegisterRequestSchema, { identity: { case: "email", value: "a@example.com" }, password: "correct horse battery" });
  const decoded = fromBinary(RegisterRequestSchema, toBinary(RegisterRequestSchema, message));
  t.deepEqual(decoded.identity, { case: "email", value: "a@example.com" });
});
