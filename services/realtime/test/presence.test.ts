// Presence through real streams: online while a device streams, away on the
// hint, offline with last-seen when the last stream ends or its instance dies;
// changes coalesced and delivered only to streams that asked; blocked users
// never see each other. Plus the bad input of every RPC.
import test from "ava";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { PresenceState, RealtimeService, SetPresenceRequest_Hint, type Event } from "@aviary/gen/aviary/realtime/v1/realtime_pb";
import { violatedFields } from "../../post/test/harness.ts";
import { as, openStream, rejection, startTestRealtime, type StreamReader, type TestRealtime } from "./harness.ts";

let rt: TestRealtime;
// No coalescing on the main instance, so the order of changes can be checked exactly.
test.before(async () => {
  rt = await startTestRealtime({ REALTIME_COALESCE: "0ms", REALTIME_PRESENCE_SWEEP: "200ms" });
});
test.after.always(async () => {
  await rt?.close();
});

const clientOf = (url: string) => createClient(RealtimeService, createGrpcTransport({ baseUrl: url }));

function presenceOf(reader: StreamReader, userId: string): Event[] {
  return reader.events().filter((e) => e.payload.case === "presence" && e.payload.value.presence?.userId === userId);
}
function statesOf(reader: StreamReader, userId: string): PresenceState[] {
  return presenceOf(reader, userId).map((e) => (e.payload.case === "presence" ? e.payload.value.presence!.state : PresenceState.UNSPECIFIED));
}

test("a watcher sees a user come online, go away on the hint, come back, and go offline with a last-seen time", async (t) => {
  const ana = await rt.signUp();
  const ben = await rt.signUp();
  const watcher = openStream(rt.client, ana, { presenceUserIds: [ben.userId] });
  await watcher.ready();
  await watcher.until("Ben's current state", (r) => statesOf(r, ben.userId).length === 1);
  t.deepEqual(statesOf(watcher, ben.userId), [PresenceState.OFFLINE]);
  const bens = openStream(rt.client, ben);
  await bens.ready();
  await watcher.until("online", (r) => statesOf(r, ben.userId).length === 2);
  t.is((await rt.client.setPresence({ hint: SetPresenceRequest_Hint.AWAY }, ben.call)).presence?.state, PresenceState.AWAY);
  await watcher.until("away", (r) => statesOf(r, ben.userId).length === 3);
  await rt.client.setPresence({ hint: SetPresenceRequest_Hint.ACTIVE }, ben.call);
  await watcher.until("online again", (r) => statesOf(r, ben.userId).length === 4);
  bens.cancel();
  await watcher.until("offline", (r) => statesOf(r, ben.userId).length === 5);
  t.deepEqual(statesOf(watcher, ben.userId), [PresenceState.OFFLINE, PresenceState.ONLINE, PresenceState.AWAY, PresenceState.ONLINE, PresenceState.OFFLINE]);
  const last = presenceOf(watcher, ben.userId).at(-1)!;
  t.true(last.payload.case === "presence" && last.payload.value.presence!.lastSeen !== undefined, "offline carries last seen");
  t.true(presenceOf(watcher, ben.userId).every((e) => e.offset === 0n), "presence is ephemeral");
  const { presences } = await rt.client.getPresence({ userIds: [ben.userId] }, ana.call);
  t.is(presences[0]?.state, PresenceState.OFFLINE);
  // Only streams that asked about Ben hear of him.
  const other = openStream(rt.client, await rt.signUp());
  await other.ready();
  const again = openStream(rt.client, ben);
  await again.ready();
  await watcher.until("online once more", (r) => statesOf(r, ben.userId).length === 6);
  t.is(presenceOf(other, ben.userId).length, 0);
  for (const r of [watcher, other, again]) r.cancel();
});

test("a user is online while any device says active, away only when all say away", async (t) => {
  const ana = await rt.signUp();
  const laptop = await rt.anotherDevice(ana);
  const watcherAccount = await rt.signUp();
  const streams = [openStream(rt.client, ana), openStream(rt.client, laptop)];
  await Promise.all(streams.map((s) => s.ready()));
  const state = async () => (await rt.client.getPresence({ userIds: [ana.userId] }, watcherAccount.call)).presences[0]?.state;
  t.is(await state(), PresenceState.ONLINE);
  await rt.client.setPresence({ hint: SetPresenceRequest_Hint.AWAY }, ana.call);
  t.is(await state(), PresenceState.ONLINE, "the laptop is still active");
  await rt.client.setPresence({ hint: SetPresenceRequest_Hint.AWAY }, laptop.call);
  t.is(await state(), PresenceState.AWAY);
  streams[1]!.cancel();
  await streams[1]!.ended;
  // A new stream on a device means it is in front again.
  const reopened = openStream(rt.client, laptop);
  await reopened.ready();
  t.is(await state(), PresenceState.ONLINE);
  streams[0]!.cancel();
  reopened.cancel();
});

test("changes are coalesced: a burst of hints yields a few events, ending on the latest state", async (t) => {
  const coalescing = await rt.startInstance({ REALTIME_COALESCE: "1s" });
  const ana = await rt.signUp();
  const ben = await rt.signUp();
  const watcher = openStream(clientOf(coalescing.url), ana, { presenceUserIds: [ben.userId] });
  await watcher.ready();
  const bens = openStream(rt.client, ben);
  await bens.ready();
  for (let i = 0; i < 10; i++) {
    await rt.client.setPresence({ hint: i % 2 === 0 ? SetPresenceRequest_Hint.AWAY : SetPresenceRequest_Hint.ACTIVE }, ben.call);
  }
  await rt.client.setPresence({ hint: SetPresenceRequest_Hint.AWAY }, ben.call);
  await watcher.until("the final state", (r) => statesOf(r, ben.userId).at(-1) === PresenceState.AWAY);
  // The initial state, then at most one per window: the burst took well under the
  // windows it would need to send all eleven changes one by one.
  t.true(statesOf(watcher, ben.userId).length < 11, `coalesced: ${statesOf(watcher, ben.userId).length} events`);
  watcher.cancel();
  bens.cancel();
  await coalescing.close();
});

test("a user whose instance died goes offline after the missed heartbeats", async (t) => {
  const ana = await rt.signUp();
  const ben = await rt.signUp();
  const doomed = await rt.spawnInstance({ REALTIME_HEARTBEAT: "300ms", REALTIME_MISSED_HEARTBEATS: "2" });
  const watcher = openStream(rt.client, ana, { presenceUserIds: [ben.userId] });
  await watcher.ready();
  await openStream(doomed.client, ben).ready();
  await watcher.until("online", (r) => statesOf(r, ben.userId).at(-1) === PresenceState.ONLINE);
  await doomed.kill();
  await watcher.until("offline after missed heartbeats", (r) => statesOf(r, ben.userId).at(-1) === PresenceState.OFFLINE);
  t.deepEqual(statesOf(watcher, ben.userId), [PresenceState.OFFLINE, PresenceState.ONLINE, PresenceState.OFFLINE]);
  watcher.cancel();
});

test("blocked users never see each other's presence, in either direction", async (t) => {
  const ana = await rt.signUp();
  const ben = await rt.signUp();
  const cleo = await rt.signUp();
  await rt.user.client.block({ userId: ana.userId }, ben.call);
  const anaWatches = openStream(rt.client, ana, { presenceUserIds: [ben.userId, cleo.userId] });
  const benWatches = openStream(rt.client, ben, { presenceUserIds: [ana.userId, cleo.userId] });
  await Promise.all([anaWatches.ready(), benWatches.ready()]);
  await anaWatches.until("Cleo's state", (r) => statesOf(r, cleo.userId).length >= 1);
  await benWatches.until("Cleo's state", (r) => statesOf(r, cleo.userId).length >= 1);
  // Cleo comes online: both hear it; neither hears the other (both are online all along).
  const cleos = openStream(rt.client, cleo);
  await cleos.ready();
  await anaWatches.until("Cleo online", (r) => statesOf(r, cleo.userId).at(-1) === PresenceState.ONLINE);
  await benWatches.until("Cleo online", (r) => statesOf(r, cleo.userId).at(-1) === PresenceState.ONLINE);
  t.is(presenceOf(anaWatches, ben.userId).length, 0);
  t.is(presenceOf(benWatches, ana.userId).length, 0);
  t.deepEqual((await rt.client.getPresence({ userIds: [ben.userId, cleo.userId] }, ana.call)).presences.map((p) => p.userId), [cleo.userId]);
  t.deepEqual((await rt.client.getPresence({ userIds: [ana.userId] }, ben.call)).presences, []);
  for (const r of [anaWatches, benWatches, cleos]) r.cancel();
});

test("bad input and missing credentials get clean errors, and a rejected hint changes nothing", async (t) => {
  const ana = await rt.signUp();
  const streamError = async (call: { headers: Record<string, string> }, request: Parameters<typeof openStream>[2]) => {
    const reader = openStream(rt.client, { ...ana, call }, request);
    const error = ConnectError.from(await reader.ended);
    t.is(reader.frames.length, 0, "no frame before the error");
    return error;
  };
  t.is((await streamError({ headers: {} }, {})).code, Code.Unauthenticated, "no token");
  t.is((await streamError(as({ token: "not.a.token" }), {})).code, Code.Unauthenticated, "a malformed token");
  const badEpoch = await streamError(ana.call, { since: { epoch: "no spaces allowed!", offset: 1n } });
  t.is(badEpoch.code, Code.InvalidArgument);
  t.deepEqual(violatedFields(badEpoch), ["since.epoch"]);
  const emptyEpoch = await streamError(ana.call, { since: { epoch: "", offset: 1n } });
  t.deepEqual(violatedFields(emptyEpoch), ["since.epoch"]);
  const tooMany = await streamError(ana.call, { presenceUserIds: Array.from({ length: 101 }, () => crypto.randomUUID()) });
  t.is(tooMany.code, Code.InvalidArgument);
  t.deepEqual(violatedFields(tooMany), ["presence_user_ids"]);
  const notUuid = await streamError(ana.call, { presenceUserIds: ["bob"] });
  t.is(notUuid.code, Code.InvalidArgument);

  t.is((await rejection(rt.client.getPresence({ userIds: [] }, ana.call))).code, Code.InvalidArgument);
  const tooManyGet = await rejection(rt.client.getPresence({ userIds: Array.from({ length: 101 }, () => crypto.randomUUID()) }, ana.call));
  t.deepEqual(violatedFields(tooManyGet), ["user_ids"]);
  t.is((await rejection(rt.client.getPresence({ userIds: [ana.userId] }))).code, Code.Unauthenticated);

  const stream = openStream(rt.client, ana);
  await stream.ready();
  const watcher = await rt.signUp();
  const unspecified = await rejection(rt.client.setPresence({ hint: SetPresenceRequest_Hint.UNSPECIFIED }, ana.call));
  t.deepEqual(violatedFields(unspecified), ["hint"]);
  const out = await rejection(rt.client.setPresence({ hint: 7 as SetPresenceRequest_Hint }, ana.call));
  t.is(out.code, Code.InvalidArgument);
  t.is((await rt.client.getPresence({ userIds: [ana.userId] }, watcher.call)).presences[0]?.state, PresenceState.ONLINE, "nothing was written");
  t.is((await rejection(rt.client.setPresence({ hint: SetPresenceRequest_Hint.AWAY }))).code, Code.Unauthenticated);
  stream.cancel();
});
