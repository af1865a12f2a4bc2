// Guards the hand-written third_party/proto/envoy subset: bytes laid out by
// hand per the upstream field numbers (envoy/service/ratelimit/v3/rls.proto,
// envoy/extensions/common/ratelimit/v3/ratelimit.proto,
// envoy/config/core/v3/base.proto) must decode to the same fields, and what we
// send back must sit at the upstream numbers. The last test sends such bytes
// over a raw gRPC call (@grpc/grpc-js, no generated code), as Envoy does.
import test from "ava";
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { RateLimitRequestSchema, RateLimitResponseSchema, RateLimitResponse_Code, RateLimitResponse_RateLimit_Unit } from "@aviary/gen/envoy/service/ratelimit/v3/rls_pb";
import { RateLimitUnit } from "@aviary/gen/envoy/type/v3/ratelimit_unit_pb";
import { freshWindow, startTestRateLimit, uniqueValue, type TestRateLimit } from "./harness.ts";

// --- a minimal protobuf writer and reader, independent of the generated code

const VARINT = 0;
const LEN = 2;

function varint(value: number | bigint): number[] {
  let v = BigInt(value);
  const out: number[] = [];
  do {
    const byte = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v > 0n ? byte | 0x80 : byte);
  } while (v > 0n);
  return out;
}
const tag = (field: number, wire: number) => varint((field << 3) | wire);
const vfield = (field: number, value: number | bigint) => [...tag(field, VARINT), ...varint(value)];
const lfield = (field: number, bytes: number[] | Uint8Array) => [...tag(field, LEN), ...varint(bytes.length), ...bytes];
const sfield = (field: number, text: string) => lfield(field, [...new TextEncoder().encode(text)]);

interface Field {
  field: number;
  wire: number;
  value: bigint | Uint8Array;
}

function readFields(bytes: Uint8Array): Field[] {
  const fields: Field[] = [];
  let pos = 0;
  const readVarint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      const byte = bytes[pos++]!;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7n;
    }
  };
  while (pos < bytes.length) {
    const key = Number(readVarint());
    const field = key >> 3;
    const wire = key & 7;
    if (wire === VARINT) fields.push({ field, wire, value: readVarint() });
    else if (wire === LEN) {
      const length = Number(readVarint());
      fields.push({ field, wire, value: bytes.subarray(pos, pos + length) });
      pos += length;
    } else throw new Error(`unexpected wire type ${wire} for field ${field}`);
  }
  return fields;
}
const all = (fields: Field[], n: number) => fields.filter((f) => f.field === n);
const one = (fields: Field[], n: number) => {
  const found = all(fields, n);
  if (found.length !== 1) throw new Error(`field ${n}: ${found.length} occurrences`);
  return found[0]!;
};
const num = (fields: Field[], n: number) => Number(one(fields, n).value as bigint);
const text = (fields: Field[], n: number) => new TextDecoder().decode(one(fields, n).value as Uint8Array);
const sub = (f: Field) => readFields(f.value as Uint8Array);

/**
 * RateLimitRequest{domain=1, descriptors=2, hits_addend=3}; RateLimitDescriptor{entries=1,
 * limit=2, hits_addend=3 (UInt64Value{value=1})}; Entry{key=1, value=2};
 * RateLimitOverride{requests_per_unit=1, unit=2}.
 */
function requestBytes(domain: string, user: string, hitsAddend: number): Uint8Array {
  const entry = (k: string, v: string) => lfield(1, [...sfield(1, k), ...sfield(2, v)]);
  const plain = [...entry("route_class", "test_minute"), ...entry("user_id", user)];
  const withOverrideAndHits = [...entry("route_class", "unknown_class"), ...entry("user_id", user), ...lfield(2, [...vfield(1, 2), ...vfield(2, 2)]), ...lfield(3, vfield(1, 0))];
  return new Uint8Array([...sfield(1, domain), ...lfield(2, plain), ...lfield(2, withOverrideAndHits), ...vfield(3, hitsAddend)]);
}

test("a RateLimitRequest laid out per the upstream numbers decodes to the same fields", (t) => {
  const request = fromBinary(RateLimitRequestSchema, requestBytes("aviary", "u1", 2));
  t.is(request.domain, "aviary");
  t.is(request.hitsAddend, 2);
  t.is(request.descriptors.length, 2);
  t.deepEqual(request.descriptors[0]!.entries.map((e) => [e.key, e.value]), [["route_class", "test_minute"], ["user_id", "u1"]]);
  t.is(request.descriptors[0]!.limit, undefined);
  t.is(request.descriptors[0]!.hitsAddend, undefined);
  t.is(request.descriptors[1]!.limit?.requestsPerUnit, 2);
  t.is(request.descriptors[1]!.limit?.unit, RateLimitUnit.MINUTE);
  t.is(request.descriptors[1]!.hitsAddend, 0n, "a present UInt64Value, even with value 0");
  t.is(request.$unknown, undefined, "no field landed outside the schema");
});

test("a RateLimitResponse encodes at the upstream numbers", (t) => {
  const bytes = toBinary(
    RateLimitResponseSchema,
    create(RateLimitResponseSchema, {
      overallCode: RateLimitResponse_Code.OVER_LIMIT,
      statuses: [
        {
          code: RateLimitResponse_Code.OVER_LIMIT,
          currentLimit: { name: "n", requestsPerUnit: 7, unit: RateLimitResponse_RateLimit_Unit.HOUR },
          limitRemaining: 3,
          durationUntilReset: { seconds: 12n, nanos: 5 },
        },
      ],
      responseHeadersToAdd: [{ key: "retry-after", value: "12" }],
      requestHeadersToAdd: [{ key: "x-a", value: "b" }],
      rawBody: new Uint8Array([1, 2]),
    }),
  );
  const top = readFields(bytes);
  t.is(num(top, 1), 2, "overall_code = 1, OVER_LIMIT = 2");
  const status = sub(one(top, 2));
  t.is(num(status, 1), 2, "DescriptorStatus.code = 1");
  const limit = sub(one(status, 2));
  t.is(num(limit, 1), 7, "RateLimit.requests_per_unit = 1");
  t.is(num(limit, 2), 3, "RateLimit.unit = 2, HOUR = 3");
  t.is(text(limit, 3), "n", "RateLimit.name = 3");
  t.is(num(status, 3), 3, "limit_remaining = 3");
  const duration = sub(one(status, 4));
  t.is(num(duration, 1), 12, "duration_until_reset = 4 (Duration.seconds = 1)");
  t.is(num(duration, 2), 5);
  const header = sub(one(top, 3));
  t.is(text(header, 1), "retry-after", "response_headers_to_add = 3, HeaderValue.key = 1");
  t.is(text(header, 2), "12", "HeaderValue.value = 2");
  t.is(text(sub(one(top, 4)), 1), "x-a", "request_headers_to_add = 4");
  t.deepEqual([...(one(top, 5).value as Uint8Array)], [1, 2], "raw_body = 5");
});

test("enum values match upstream", (t) => {
  t.deepEqual([RateLimitResponse_Code.UNKNOWN, RateLimitResponse_Code.OK, RateLimitResponse_Code.OVER_LIMIT], [0, 1, 2]);
  const u = RateLimitResponse_RateLimit_Unit;
  t.deepEqual([u.UNKNOWN, u.SECOND, u.MINUTE, u.HOUR, u.DAY, u.MONTH, u.YEAR, u.WEEK], [0, 1, 2, 3, 4, 5, 6, 7]);
  const v = RateLimitUnit;
  t.deepEqual([v.UNKNOWN, v.SECOND, v.MINUTE, v.HOUR, v.DAY, v.MONTH, v.YEAR, v.WEEK], [0, 1, 2, 3, 4, 5, 6, 7]);
});

let rl: TestRateLimit;
test.before(async () => {
  rl = await startTestRateLimit();
});
test.after.always(async () => {
  await rl?.close();
});

test("hand-built bytes over a raw gRPC call, as Envoy sends them", async (t) => {
  const client = new grpc.Client(new URL(rl.service.url).host, grpc.credentials.createInsecure());
  t.teardown(() => client.close());
  const call = (bytes: Uint8Array) =>
    new Promise<Uint8Array>((resolve, reject) => {
      client.makeUnaryRequest(
        "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit",
        (b: Uint8Array) => Buffer.from(b),
        (b: Buffer) => new Uint8Array(b),
        bytes,
        (error, reply) => (error ? reject(error) : resolve(reply!)),
      );
    });
  const user = uniqueValue();
  await freshWindow(60, 5_000);
  // Descriptor 1: test_minute (5/min) by 2 hits; descriptor 2: an override of 2/min, hits_addend 0 (look only).
  const reply = readFields(await call(requestBytes("aviary", user, 2)));
  t.is(num(reply, 1), 1, "overall OK");
  const [first, second] = all(reply, 2).map(sub);
  t.is(num(first!, 1), 1);
  t.is(num(first!, 3), 3, "5 - 2 hits remaining");
  t.is(num(sub(one(first!, 2)), 1), 5);
  t.is(num(second!, 3), 2, "override: 2/min, nothing counted");
  t.is(num(sub(one(second!, 2)), 2), 2, "MINUTE");
  const headers = Object.fromEntries(all(reply, 3).map(sub).map((h) => [text(h, 1), text(h, 2)]));
  t.is(headers["x-ratelimit-remaining"], "2", "the tightest: the override's 2 left");
  // Spend the rest: 2 + 2 + 2 > 5.
  await call(requestBytes("aviary", user, 2));
  const over = readFields(await call(requestBytes("aviary", user, 2)));
  t.is(num(over, 1), 2, "OVER_LIMIT");
});
