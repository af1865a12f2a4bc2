// How streams end, and that no ending loses anything: planned rotation,
// graceful shutdown, an instance SIGKILLed, a revoked session, an expired
// token. Real Redis, real auth and user services.
import test from "ava";
import { Redis } from "ioredis";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { RealtimeService, Rotate_Reason } from "@aviary/gen/aviary/realtime/v1/realtime_pb";
import { revokedSessionKey } from "../../runtime/src/auth/denylist.ts";
import { startTestAuth } from "../../auth/test/harness.ts";
import { startTestUser } from "../../user/test/harness.ts";
import { openStream, startTestRealtime, type StreamReader, type TestRealtime } from "./harness.ts";

let rt: TestRealtime;
test.before(async () => {
  // The instance every test resumes on rechecks the denylist rarely, so a
  // stream ended within WAIT_MS was ended by the revocation announcement.
  rt = await startTestRealtime({ REALTIME_REVOCATION_RECHECK: "10m" });
});
test.after.always(async () => {
  await rt?.close();
});

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const clientOf = (url: string) => createClient(RealtimeService, createGrpcTransport({ baseUrl: url }));

function rotateReason(reader: StreamReader): Rotate_Reason | undefined {
  const last = reader.frames.at(-1);
  return last?.frame.case === "rotate" ? last.frame.value.reason : undefined;
}

test("a stream is rotated before its planned age runs out, and the resume has everything published in between", async (t) => {
  const shortLived = await rt.startInstance({ REALTIME_MAX_STREAM_AGE: "1s" });
  const ana = await rt.signUp();
  const first = openStream(clientOf(shortLived.url), ana);
  await first.ready();
  await rt.publish(ana.userId, 3, "before");
  await first.until("the planned rotation", (r) => r.isEnded());
  t.is(await first.ended, undefined, "a rotation ends the call normally");
  t.is(rotateReason(first), Rotate_Reason.MAX_AGE);
  const between = await rt.publish(ana.userId, 10, "between");
  const resumed = openStream(rt.client, ana, { since: first.position() });
  t.true((await resumed.ready()).recovered);
  await resumed.until("the 10 published in between", (r) => r.offsets().length >= 10);
  t.deepEqual(resumed.events().map((e) => e.id), between);
  t.deepEqual([...first.offsets(), ...resumed.offsets()], range(first.offsets()[0]!, first.offsets()[0]! + 12));
  resumed.cancel();
  await shortLived.close();
});

test("graceful shutdown tells every stream to reconnect; resuming on another instance loses nothing", async (t) => {
  const leaving = await rt.startInstance();
  const ana = await rt.signUp();
  const laptop = await rt.anotherDevice(ana);
  const readers = [openStream(clientOf(leaving.url), ana), openStream(clientOf(leaving.url), laptop)];
  await Promise.all(readers.map((r) => r.ready()));
  await rt.publish(ana.userId, 5, "before");
  await Promise.all(readers.map((r) => r.until("5 items", (x) => x.offsets().length === 5)));
  await leaving.close();
  for (const reader of readers) {
    t.is(await reader.ended, undefined);
    t.is(rotateReason(reader), Rotate_Reason.SHUTDOWN);
  }
  const after = await rt.publish(ana.userId, 7, "after");
  for (const [i, device] of [ana, laptop].entries()) {
    const resumed = openStream(rt.client, device, { since: readers[i]!.position() });
    t.true((await resumed.ready()).recovered);
    await resumed.until("the 7 published after", (r) => r.offsets().length >= 7);
    t.deepEqual(resumed.events().map((e) => e.id), after);
    resumed.cancel();
  }
});

test("an instance SIGKILLed with streams on it: clients resume on another instance with nothing lost or doubled", async (t) => {
  const doomed = await rt.spawnInstance();
  const ana = await rt.signUp();
  const laptop = await rt.anotherDevice(ana);
  const readers = [openStream(doomed.client, ana), openStream(doomed.client, laptop)];
  const start = await readers[0]!.ready();
  await rt.publish(ana.userId, 20, "before-kill");
  await Promise.all(readers.map((r) => r.until("20 items", (x) => x.offsets().length === 20)));
  await doomed.kill();
  for (const reader of readers) t.truthy(await reader.ended, "the streams broke");
  await rt.publish(ana.userId, 20, "after-kill");
  for (const [i, device] of [ana, laptop].entries()) {
    const resumed = openStream(rt.client, device, { since: readers[i]!.position() });
    t.true((await resumed.ready()).recovered);
    await resumed.until("the 20 after the kill", (r) => r.offsets().length >= 20);
    t.deepEqual([...readers[i]!.offsets(), ...resumed.offsets()], range(start.offset + 1, start.offset + 40), "every offset once, in order");
    resumed.cancel();
  }
});

test("revoking a session ends that device's stream at once; the user's other device keeps streaming", async (t) => {
  const ana = await rt.signUp();
  const laptop = await rt.anotherDevice(ana);
  const phoneStream = openStream(rt.client, ana);
  const laptopStream = openStream(rt.client, laptop);
  await Promise.all([phoneStream.ready(), laptopStream.ready()]);
  await rt.auth.revokeSession({ sessionId: ana.sessionId }, laptop.call);
  const error = ConnectError.from(await phoneStream.ended);
  t.is(error.code, Code.Unauthenticated);
  t.regex(error.rawMessage, /session has ended/);
  await rt.publish(ana.userId, 1, "still-here");
  await laptopStream.until("the laptop's item", (r) => r.offsets().length === 1);
  t.false(laptopStream.isEnded());
  laptopStream.cancel();
});

test("a revocation whose announcement was missed is caught by the periodic recheck", async (t) => {
  const strict = await rt.startInstance({ REALTIME_REVOCATION_RECHECK: "200ms" });
  const ana = await rt.signUp();
  const stream = openStream(clientOf(strict.url), ana);
  await stream.ready();
  // The denylist entry alone, as after a missed announcement.
  const redis = new Redis(rt.env["REDIS_URL"]!);
  await redis.set(revokedSessionKey(ana.sessionId), "1", "EX", 600);
  await redis.quit();
  t.is(ConnectError.from(await stream.ended).code, Code.Unauthenticated);
  await strict.close();
});

test("a stream ends when its access token expires, and an expired token cannot open one", async (t) => {
  const auth = await startTestAuth({ AUTH_ACCESS_TOKEN_TTL: "5s", AUTH_SERVICE_TOKEN_TTL: "5s" });
  const user = await startTestUser({}, auth);
  const shortTokens = await startTestRealtime({}, { user });
  try {
    const account = await shortTokens.signUp();
    // A token lives 5 s: on a busy machine the sign-up alone can outlast it, so
    // each attempt signs in afresh right before opening (bounded attempts).
    let ana = account;
    let stream: StreamReader | undefined;
    for (let attempt = 0; attempt < 5 && stream === undefined; attempt++) {
      ana = await shortTokens.anotherDevice(account);
      const candidate = openStream(shortTokens.client, ana);
      if (await candidate.ready().then(() => true, () => false)) stream = candidate;
    }
    if (stream === undefined) return t.fail("no stream opened within a fresh token's lifetime in 5 attempts");
    const error = ConnectError.from(await stream.ended);
    t.is(error.code, Code.Unauthenticated);
    t.regex(error.rawMessage, /expired/);
    const late = openStream(shortTokens.client, ana);
    t.is(ConnectError.from(await late.ended).code, Code.Unauthenticated);
    t.is(late.frames.length, 0, "not even a ready frame");
  } finally {
    await shortTokens.close();
    await user.close();
    await auth.close();
  }
});
