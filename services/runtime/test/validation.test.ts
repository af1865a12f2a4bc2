import test from "ava";
import { create, createFileRegistry, createRegistry, fromJson } from "@bufbuild/protobuf";
import type { DescMessage, JsonValue } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { field, oneof } from "@aviary/gen/aviary/validate/v1/validate_pb";
import { BadRequestSchema } from "@aviary/gen/google/rpc/error_details_pb";
import {
  ListSessionsRequestSchema,
  RegisterRequestSchema,
  RevokeSessionRequestSchema,
  VerifyIdentityRequestSchema,
} from "@aviary/gen/aviary/auth/v1/auth_pb";
import { assertValid, isEmail, isUuid, normalizePhone, validateMessage } from "../src/validation.ts";

// A test-only schema exercising every rule kind, built as a descriptor at
// runtime (no .proto, no codegen): the rules are ordinary extension options.
const rules = (r: Record<string, JsonValue>) => ({ "[aviary.validate.v1.field]": r });
const str = (name: string, number: number, extra: Record<string, JsonValue> = {}) => ({
  name,
  number,
  type: "TYPE_STRING",
  label: "LABEL_OPTIONAL",
  jsonName: name,
  ...extra,
});
const fileJson = {
  name: "aviary/test/v1/sample.proto",
  package: "aviary.test.v1",
  syntax: "proto3",
  enumType: [
    {
      name: "Kind",
      value: [
        { name: "KIND_UNSPECIFIED", number: 0 },
        { name: "KIND_A", number: 1 },
        { name: "KIND_B", number: 2 },
      ],
    },
  ],
  messageType: [
    { name: "Nested", field: [str("label", 1, { options: rules({ required: true, maxLen: 3 }) })] },
    {
      name: "Sample",
      oneofDecl: [{ name: "choice", options: { "[aviary.validate.v1.oneof]": { required: true } } }, { name: "_opt" }],
      nestedType: [
        {
          name: "ByKeyEntry",
          options: { mapEntry: true },
          field: [str("key", 1), { name: "value", number: 2, type: "TYPE_MESSAGE", typeName: ".aviary.test.v1.Nested", label: "LABEL_OPTIONAL" }],
        },
      ],
      field: [
        str("name", 1, { options: rules({ required: true, minLen: 2, maxLen: 5, maxBytes: 8 }) }),
        str("code", 2, { options: rules({ pattern: "[0-9]{3}" }) }),
        str("email", 3, { options: rules({ format: "FORMAT_EMAIL" }) }),
        str("phone", 4, { options: rules({ format: "FORMAT_PHONE" }) }),
        str("id", 5, { options: rules({ format: "FORMAT_UUID" }) }),
        { name: "count", number: 6, type: "TYPE_INT32", label: "LABEL_OPTIONAL", options: rules({ min: "1", max: "10" }) },
        { name: "big", number: 7, type: "TYPE_INT64", label: "LABEL_OPTIONAL", options: rules({ min: "-5", max: "5" }) },
        str("tags", 8, { label: "LABEL_REPEATED", options: rules({ required: true, maxItems: 2, maxLen: 3 }) }),
        { name: "kind", number: 9, type: "TYPE_ENUM", typeName: ".aviary.test.v1.Kind", label: "LABEL_OPTIONAL", options: rules({ definedEnum: true }) },
        { name: "child", number: 10, type: "TYPE_MESSAGE", typeName: ".aviary.test.v1.Nested", label: "LABEL_OPTIONAL", options: rules({ required: true }) },
        { name: "children", number: 11, type: "TYPE_MESSAGE", typeName: ".aviary.test.v1.Nested", label: "LABEL_REPEATED" },
        { name: "data", number: 12, type: "TYPE_BYTES", label: "LABEL_OPTIONAL", options: rules({ maxBytes: 4 }) },
        str("a", 13, { oneofIndex: 0 }),
        { name: "b", number: 14, type: "TYPE_INT32", label: "LABEL_OPTIONAL", oneofIndex: 0 },
        str("opt", 15, { oneofIndex: 1, proto3Optional: true, options: rules({ minLen: 3 }) }),
        { name: "by_key", number: 16, type: "TYPE_MESSAGE", typeName: ".aviary.test.v1.Sample.ByKeyEntry", label: "LABEL_REPEATED" },
        { name: "kinds", number: 17, type: "TYPE_ENUM", typeName: ".aviary.test.v1.Kind", label: "LABEL_REPEATED", options: rules({ definedEnum: true }) },
      ],
    },
  ],
};
const fileProto = fromJson(FileDescriptorProtoSchema, fileJson as unknown as JsonValue, { registry: createRegistry(field, oneof) });
const registry = createFileRegistry(fileProto, () => undefined);
const Sample = registry.getMessage("aviary.test.v1.Sample") as DescMessage;

// A Sample that satisfies every rule; each test breaks something specific.
const valid = () =>
  create(Sample, {
    name: "abc",
    tags: ["x"],
    kind: 1,
    count: 5,
    child: { label: "ok" },
    choice: { case: "a", value: "" },
  } as never);

function violations(message: ReturnType<typeof valid>) {
  return validateMessage(Sample, message).map((v) => `${v.field}:${v.reason}`);
}

test("a message that satisfies every rule has no violations", (t) => {
  t.deepEqual(validateMessage(Sample, valid()), []);
});

test("required: strings, messages, repeated fields, enums and oneofs", (t) => {
  const m = create(Sample, { count: 1 } as never);
  t.deepEqual(violations(m).sort(), ["child:REQUIRED", "choice:ONEOF_REQUIRED", "kind:DEFINED_ENUM", "name:REQUIRED", "tags:REQUIRED"]);
  const oneofViolation = validateMessage(Sample, m).find((v) => v.field === "choice");
  t.is(oneofViolation?.description, "one of a, b is required");
});

test("string lengths count code points; max_bytes counts UTF-8 bytes", (t) => {
  const m = valid();
  const r = m as unknown as Record<string, unknown>;
  r["name"] = "a";
  t.deepEqual(violations(m), ["name:MIN_LEN"]);
  r["name"] = "abcdef";
  t.deepEqual(violations(m), ["name:MAX_LEN"]);
  // 2 code points (4 UTF-16 units) is within min_len 2 / max_len 5...
  r["name"] = "😀😀";
  t.deepEqual(violations(m), []);
  // ...but 3 emoji are 12 bytes > max_bytes 8 while only 3 code points.
  r["name"] = "😀😀😀";
  t.deepEqual(violations(m), ["name:MAX_BYTES"]);
  r["data"] = new Uint8Array(5);
  r["name"] = "abc";
  t.deepEqual(violations(m), ["data:MAX_BYTES"]);
});

test("pattern must match the whole value", (t) => {
  const m = valid();
  const r = m as unknown as Record<string, unknown>;
  r["code"] = "123";
  t.deepEqual(violations(m), []);
  r["code"] = "1234";
  t.deepEqual(violations(m), ["code:PATTERN"]);
  r["code"] = "a123";
  t.deepEqual(violations(m), ["code:PATTERN"]);
});

test("no string may hold U+0000, with or without rules: scalars, oneof members, list items, map keys", (t) => {
  const m = valid();
  const r = m as unknown as Record<string, unknown>;
  r["name"] = "a\u0000b";
  t.deepEqual(violations(m), ["name:NO_NUL"]);
  r["name"] = "abc";
  r["choice"] = { case: "a", value: "\u0000" };
  t.deepEqual(violations(m), ["a:NO_NUL"]);
  r["choice"] = { case: "a", value: "" };
  r["tags"] = ["x", "y\u0000"];
  t.deepEqual(violations(m), ["tags[1]:NO_NUL"]);
  const withMap = create(Sample, { name: "abc", tags: ["x"], kind: 1, count: 1, child: { label: "ok" }, choice: { case: "b", value: 3 }, byKey: { "k\u0000": { label: "ok" } } } as never);
  t.deepEqual(violations(withMap), ["by_key:NO_NUL"]);
});

test("formats: email, phone, uuid", (t) => {
  const m = valid();
  const r = m as unknown as Record<string, unknown>;
  r["email"] = "not-an-email";
  r["phone"] = "555-1234";
  r["id"] = "1234";
  t.deepEqual(violations(m).sort(), ["email:FORMAT_EMAIL", "id:FORMAT_UUID", "phone:FORMAT_PHONE"]);
  r["email"] = "Jane.Doe+tag@mail.example.com";
  r["phone"] = "+1 (415) 555-0123";
  r["id"] = "0b3f3e4e-8a1c-4c7e-9f3a-2b8d5e6f7a81";
  t.deepEqual(violations(m), []);
});

test("format helpers accept practical inputs and reject the rest", (t) => {
  for (const ok of ["a@b.co", "first.last@sub.example.org", "x_y-z!#$%&'*+/=?^`{|}~@example.io", "u@xn--bcher-kva.example"]) {
    t.true(isEmail(ok), ok);
  }
  for (const bad of ["", "a", "@example.com", "a@", "a@localhost", "a..b@example.com", ".a@example.com", "a@-x.com", "a@x-.com", "a b@example.com", "a@b@c.com", "a@1.2.3.4", `${"a".repeat(65)}@example.com`, `a@${"b".repeat(250)}.com`]) {
    t.false(isEmail(bad), bad);
  }
  t.is(normalizePhone("+44 20 7946 0958"), "+442079460958");
  t.is(normalizePhone("+1-415-555-0123"), "+14155550123");
  t.is(normalizePhone("+1.415.555.0123"), "+14155550123");
  for (const bad of ["4155550123", "+0 415 555 0123", "+1234567", "+1234567890123456", "+1 415 555 O123", "++14155550123", "+1 415+5550123"]) {
    t.is(normalizePhone(bad), undefined, bad);
  }
  t.true(isUuid("0B3F3E4E-8A1C-4C7E-9F3A-2B8D5E6F7A81"));
  t.true(isUuid("00000000-0000-0000-0000-000000000000"));
  t.true(isUuid("018f6b1c-7e4a-7c3b-8d2e-1f0a9b8c7d6e"), "v7");
  t.false(isUuid("0b3f3e4e8a1c4c7e9f3a2b8d5e6f7a81"), "no hyphens");
  t.false(isUuid("{0b3f3e4e-8a1c-4c7e-9f3a-2b8d5e6f7a81}"));
  t.false(isUuid("0b3f3e4e-8a1c-4c7e-cf3a-2b8d5e6f7a81"), "wrong variant");
});

test("integer bounds, including int64 as bigint", (t) => {
  const m = valid();
  const r = m as unknown as Record<string, unknown>;
  r["count"] = 0; // implicit presence: 0 is a value and is checked
  r["big"] = 6n;
  t.deepEqual(violations(m).sort(), ["big:MAX", "count:MIN"]);
  r["count"] = 11;
  r["big"] = -6n;
  t.deepEqual(violations(m).sort(), ["big:MIN", "count:MAX"]);
});

test("repeated fields: max_items on the list, other rules per item with indexed paths", (t) => {
  const m = valid();
  const r = m as unknown as Record<string, unknown>;
  r["tags"] = ["ok", "toolong", "x"];
  t.deepEqual(violations(m).sort(), ["tags:MAX_ITEMS", "tags[1]:MAX_LEN"]);
});

test("enums: defined_enum rejects zero and undeclared values, also per item", (t) => {
  const m = valid();
  const r = m as unknown as Record<string, unknown>;
  r["kind"] = 7;
  r["kinds"] = [1, 0, 2];
  const v = validateMessage(Sample, m);
  t.deepEqual(v.map((x) => `${x.field}:${x.reason}`).sort(), ["kind:DEFINED_ENUM", "kinds[1]:DEFINED_ENUM"]);
  t.is(v[0]?.description, "must be one of KIND_A, KIND_B");
});

test("nested messages are validated with dotted paths: singular, repeated and map values", (t) => {
  const m = create(Sample, {
    name: "abc",
    tags: ["x"],
    kind: 1,
    count: 1,
    choice: { case: "b", value: 3 },
    child: { label: "" },
    children: [{ label: "ok" }, { label: "long" }],
    byKey: { k: { label: "" } },
  } as never);
  t.deepEqual(violations(m).sort(), ['by_key["k"].label:REQUIRED', "child.label:REQUIRED", "children[1].label:MAX_LEN"]);
});

test("rules other than required skip absent values; explicit presence counts as present when set", (t) => {
  const m = valid();
  const r = m as unknown as Record<string, unknown>;
  r["email"] = ""; // implicit presence, empty: absent, format not checked
  t.deepEqual(violations(m), []);
  r["opt"] = ""; // proto3 optional set to "": present, min_len applies
  t.deepEqual(violations(m), ["opt:MIN_LEN"]);
});

test("real auth.proto rules: oneof identity, formats, pattern, bounds", (t) => {
  const register = create(RegisterRequestSchema, { password: "short" });
  t.deepEqual(
    validateMessage(RegisterRequestSchema, register).map((v) => `${v.field}:${v.reason}`),
    ["identity:ONEOF_REQUIRED", "password:MIN_LEN"],
  );
  const email = create(RegisterRequestSchema, { identity: { case: "email", value: "nope" }, password: "long enough pass" });
  t.deepEqual(validateMessage(RegisterRequestSchema, email).map((v) => v.field), ["email"]);
  const phone = create(RegisterRequestSchema, { identity: { case: "phone", value: "+49 30 1234567" }, password: "long enough pass" });
  t.deepEqual(validateMessage(RegisterRequestSchema, phone), []);

  const verify = create(VerifyIdentityRequestSchema, { identity: { case: "email", value: "a@example.com" }, code: "12345a" });
  t.deepEqual(validateMessage(VerifyIdentityRequestSchema, verify).map((v) => `${v.field}:${v.reason}`), ["code:PATTERN"]);

  t.deepEqual(validateMessage(ListSessionsRequestSchema, create(ListSessionsRequestSchema, { pageSize: 101 })).map((v) => v.reason), ["MAX"]);
  t.deepEqual(validateMessage(ListSessionsRequestSchema, create(ListSessionsRequestSchema, { pageSize: -1 })).map((v) => v.reason), ["MIN"]);
  t.deepEqual(validateMessage(RevokeSessionRequestSchema, create(RevokeSessionRequestSchema, { sessionId: "abc" })).map((v) => v.reason), ["FORMAT_UUID"]);
});

test("assertValid throws InvalidArgument with one BadRequest FieldViolation per broken rule", (t) => {
  const error = t.throws(() => assertValid(RegisterRequestSchema, create(RegisterRequestSchema, { password: "x".repeat(129) })));
  t.true(error instanceof ConnectError);
  const ce = error as ConnectError;
  t.is(ce.code, Code.InvalidArgument);
  t.is(ce.rawMessage, "invalid request");
  const [badRequest] = ce.findDetails(BadRequestSchema);
  t.deepEqual(
    badRequest?.fieldViolations.map((v) => [v.field, v.description]),
    [
      ["identity", "one of email, phone is required"],
      ["password", "must be at most 128 characters"],
    ],
  );
});
