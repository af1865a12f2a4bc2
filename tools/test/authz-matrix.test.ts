// The authorization matrix (issue 13, item 2), generated from the
// descriptors: every RPC in gen/aviary.binpb is called as an anonymous
// caller, as a user who does not own the resource (Ben), as a user the owner
// blocked (Cy) and, for internal RPCs, as a user instead of a service and as a
// service without the RPC's scope — each
// straight to its service over gRPC and through the real Envoy over gRPC-web.
// The cases are tools/security/authz-cases.ts; an RPC without a case, or a
// case for an RPC that no longer exists, fails the first test.
//
// "Reveals nothing": a refusal expected to be "hidden" must be exactly the
// answer the same caller gets for a resource that does not exist (code,
// message and detail types, with the ids masked); and no refusal may carry
// Ana's content or a stack trace.
import test, { type ExecutionContext } from "ava";
import { Code, ConnectError, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { create, toJsonString, type DescMethod, type DescMethodStreaming, type DescMethodUnary } from "@bufbuild/protobuf";
import { decodeJwt } from "jose";
import { BadRequestSchema } from "@aviary/gen/google/rpc/error_details_pb";
import { MediaPurpose } from "@aviary/gen/aviary/media/v1/media_pb";
import { Platform } from "@aviary/gen/aviary/user/v1/user_pb";
import { ChatService } from "@aviary/gen/aviary/chat/v1/chat_pb";
import { DataExportService } from "@aviary/gen/aviary/auth/v1/data_export_pb";
import { requiredRoleOf } from "@aviary/runtime/auth/roles";
import { createClient } from "@connectrpc/connect";
import { startTestMesh, unscopedClient, type TestMesh } from "../../services/runtime/test-support/mesh.ts";
import { eventually, repoRoot } from "../../services/runtime/test-support/infra.ts";
import { uploadSample } from "../../services/media/test/harness.ts";
import { password, uniqueEmail } from "../../services/auth/test/harness.ts";
import { readDescriptorSet } from "../edge/descriptors.ts";
import { authzCases, excludedServices, type AuthzCase, type Expectation, type FixtureAccount, type Fixtures } from "../security/authz-cases.ts";

let mesh: TestMesh | undefined;
let fx: Fixtures;

test.before(async () => {
  mesh = await startTestMesh();
  fx = await setUpFixtures(mesh);
});

test.after.always(async () => {
  await mesh?.close();
});

/** Every "package.Service/Method" in the descriptor set, but the excluded services'. */
function describedRpcs(): string[] {
  return readDescriptorSet(`${repoRoot}/gen/aviary.binpb`)
    .filter((service) => !(service.typeName in excludedServices))
    .flatMap((service) => service.methods.map((method) => `${service.typeName}/${method.name}`));
}

test("every RPC in gen/aviary.binpb has a case, and every case names an RPC that exists", (t) => {
  const described = new Set(describedRpcs());
  const covered = new Set(authzCases.map((c) => c.rpc));
  t.deepEqual([...described].filter((rpc) => !covered.has(rpc)), [], "RPCs without a case in tools/security/authz-cases.ts");
  t.deepEqual([...covered].filter((rpc) => !described.has(rpc)), [], "cases for RPCs the descriptors no longer have");
  // The role an RPC declares (aviary.auth.v1.required_role) and its case's kind agree, so a new role-gated RPC is checked as one.
  const byRpc = new Map<string, DescMethod>(readDescriptorSet(`${repoRoot}/gen/aviary.binpb`).flatMap((s) => s.methods.map((m) => [`${s.typeName}/${m.name}`, m] as const)));
  for (const c of authzCases) {
    const method = byRpc.get(c.rpc);
    if (method) t.is(c.kind === "staff", requiredRoleOf(method) !== undefined, `${c.rpc}: kind ${c.kind}, required role ${String(requiredRoleOf(method))}`);
  }
  // Excluded services must exist too, or the exclusion hides nothing and is stale.
  const services = new Set(readDescriptorSet(`${repoRoot}/gen/aviary.binpb`).map((s) => s.typeName));
  t.deepEqual(Object.keys(excludedServices).filter((s) => !services.has(s)), []);
});

/**
 * The user service's fresh consumer group first reads the whole shared auth
 * topic; on a long-lived Kafka that can take longer than a sign-up waits for
 * its profile. One throwaway registration, waited for with more patience,
 * lets the fixtures' sign-ups find a consumer that has caught up.
 */
async function profilesCaughtUp(m: TestMesh): Promise<void> {
  const { userId } = await m.auth.client.register({ identity: { case: "email", value: uniqueEmail("warmup") }, password });
  // Inside ava's 120 s timeout (ava.config.js), which a silent before hook counts against.
  await eventually("the user service to catch up with the auth events", async () => (await m.user.query("select 1 from users.profiles where user_id = $1", [userId])).length === 1, 100_000, 250);
}

async function setUpFixtures(m: TestMesh): Promise<Fixtures> {
  await profilesCaughtUp(m);
  const [ana, ben, cy, dan] = await Promise.all([0, 1, 2, 3].map(() => m.user.signUp()));
  if (!ana || !ben || !cy || !dan) throw new Error("sign-up failed");
  const account = (a: typeof ana): FixtureAccount => ({ userId: a.userId, email: a.identity, token: a.token, sessionId: String(decodeJwt(a.token)["sid"]) });
  const chat = createClient(ChatService, createGrpcTransport({ baseUrl: m.chat.url }));
  const marker = `${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
  const username = `ana_${marker}`;
  const postText = `Ana's private thoughts ${marker}`;
  const commentText = `Ana's comment ${marker}`;
  const groupTitle = `Ana's circle ${marker}`;
  const messageText = `Ana's secret message ${marker}`;
  await m.user.client.updateProfile({ username }, ana.call);
  await m.user.client.block({ userId: cy.userId }, ana.call);
  const pendingMediaId = await uploadSample(m.media.client, ana.call, { purpose: MediaPurpose.POST, confirm: false });
  const { post } = await m.feed.post.client.createPost({ text: postText }, ana.call);
  const { comment } = await m.feed.post.client.createComment({ postId: post?.postId ?? "", text: commentText }, ana.call);
  const { device } = await m.user.client.registerDevice({ platform: Platform.IOS, token: "ab".repeat(32) }, ana.call);
  const { conversation } = await chat.createGroup({ title: groupTitle, memberIds: [dan.userId] }, ana.call);
  const groupId = conversation?.conversationId ?? "";
  const { message } = await chat.sendMessage({ target: { case: "conversationId", value: groupId }, clientMessageId: crypto.randomUUID(), text: messageText }, ana.call);
  const direct = await chat.sendMessage({ target: { case: "directUserId", value: dan.userId }, clientMessageId: crypto.randomUUID(), text: messageText }, ana.call);
  const exportId = (await createClient(DataExportService, createGrpcTransport({ baseUrl: m.auth.service.url })).requestDataExport({}, ana.call)).export?.exportId;
  const ids = { exportId, postId: post?.postId, commentId: comment?.commentId, deviceId: device?.deviceId, groupId, directId: direct.message?.conversationId, seq: message?.seq };
  for (const [name, value] of Object.entries(ids)) if (value === undefined || value === "") throw new Error(`fixture ${name} was not created`);
  return {
    ana: {
      ...account(ana),
      username,
      postId: ids.postId!,
      postWord: marker,
      commentId: ids.commentId!,
      pendingMediaId,
      deviceId: ids.deviceId!,
      groupId,
      directId: ids.directId!,
      messageSeq: ids.seq!,
      exportId: ids.exportId!,
    },
    ben: account(ben),
    cy: account(cy),
    dan: account(dan),
    missingId: crypto.randomUUID(),
    missingEmail: uniqueEmail("nobody"),
    secrets: [ana.identity, username, postText, commentText, groupTitle, messageText],
  };
}

/** What a call came back with, comparable between two calls once the fixture ids are masked. */
type Outcome = { ok: true; body: string } | { ok: false; code: Code; message: string; detailTypes: string[]; detailText: string; violations: string[] };

/** The proto package's service → the mesh cluster serving it (aviary.user.v1.UserInternalService → user). */
function clusterOf(method: DescMethod): string {
  const name = method.parent.typeName.split(".")[1];
  if (name === undefined || !(name in (mesh?.upstreams ?? {}))) throw new Error(`no cluster serves ${method.parent.typeName}`);
  return name;
}

type Path = "direct" | "edge";

function transportFor(path: Path, method: DescMethod): Transport {
  if (!mesh) throw new Error("the mesh is not running");
  return path === "edge"
    ? createGrpcWebTransport({ baseUrl: mesh.envoy.url })
    : createGrpcTransport({ baseUrl: mesh.upstreams[clusterOf(method)] ?? "" });
}

async function call(path: Path, c: AuthzCase, request: ReturnType<AuthzCase["request"]>, token: string | undefined): Promise<Outcome> {
  const transport = transportFor(path, c.method);
  const headers = new Headers();
  if (token !== undefined) headers.set("authorization", `Bearer ${token}`);
  const input = create(c.method.input, request);
  const abort = new AbortController();
  try {
    if (c.method.methodKind === "unary") {
      const response = await transport.unary(c.method as DescMethodUnary, abort.signal, 10_000, headers, input);
      return { ok: true, body: toJsonString(c.method.output, response.message) };
    }
    if (c.method.methodKind === "server_streaming") {
      const response = await transport.stream(c.method as DescMethodStreaming, abort.signal, 10_000, headers, (async function* () { yield input; })());
      // The first frame is enough: a refusal must come before any.
      for await (const frame of response.message) return { ok: true, body: toJsonString(c.method.output, frame) };
      return { ok: true, body: "" };
    }
    throw new Error(`${c.rpc}: ${c.method.methodKind} methods are not driven by the matrix yet`);
  } catch (error) {
    const e = ConnectError.from(error);
    return {
      ok: false,
      code: e.code,
      message: e.rawMessage,
      detailTypes: e.details.map((d) => ("type" in d ? d.type : d.desc.typeName)),
      // Detail payloads as text, to look for leaked content in them (ids and strings are plain bytes in protobuf).
      detailText: e.details.map((d) => ("type" in d ? Buffer.from(d.value).toString("latin1") : "")).join(" "),
      violations: e.findDetails(BadRequestSchema).flatMap((b) => b.fieldViolations.map((v) => `${v.field}: ${v.description}`)),
    };
  } finally {
    abort.abort();
  }
}

/** The outcome with every fixture id replaced, so "Ana's post" and "no such post" compare equal when they answer alike. */
function masked(outcome: Outcome): Outcome {
  const ids = [fx.missingId, fx.missingEmail, fx.ana.userId, fx.ana.email, fx.ana.username, fx.ana.postId, fx.ana.commentId, fx.ana.pendingMediaId, fx.ana.deviceId, fx.ana.groupId, fx.ana.directId, fx.ana.sessionId, fx.ana.exportId, "nobody_has_this_name"];
  const mask = (s: string) => ids.reduce((text, id) => text.split(id).join("<id>"), s);
  return outcome.ok ? { ok: true, body: mask(outcome.body) } : { ...outcome, message: mask(outcome.message), detailText: "", violations: outcome.violations.map(mask) };
}

const STACK_TRACE = /\n\s+at |\bat [\w.<>]+ \(|\.ts:\d+|node:internal|node_modules/;

function describe(outcome: Outcome): string {
  return outcome.ok ? `OK ${outcome.body.slice(0, 200)}` : `${Code[outcome.code]}: ${outcome.message}${outcome.violations.length > 0 ? ` (${outcome.violations.join("; ")})` : ""}`;
}

/** Checks one caller's outcome against its expectation; `missing` is the same caller's call for the nonexistent resource. */
async function expectOutcome(t: ExecutionContext, path: Path, c: AuthzCase, caller: string, token: string | undefined, expected: Expectation): Promise<void> {
  const outcome = await call(path, c, c.request(fx), token);
  const label = `${caller} on ${path}`;
  if (!outcome.ok) {
    for (const secret of fx.secrets) {
      t.false(outcome.message.includes(secret) || outcome.detailText.includes(secret), `${label}: the refusal carries Ana's data (${secret}): ${outcome.message}`);
    }
    t.false(STACK_TRACE.test(outcome.message) || STACK_TRACE.test(outcome.detailText), `${label}: the refusal carries a stack trace: ${outcome.message}`);
  }
  if (expected === "allowed") {
    t.true(outcome.ok, `${label}: expected the call to be allowed, got ${describe(outcome)}`);
    return;
  }
  if (expected === "hidden") {
    if (c.missing === undefined) throw new Error(`${c.rpc}: a "hidden" expectation needs a missing() request`);
    const missing = await call(path, c, c.missing(fx), token);
    t.deepEqual(masked(outcome), masked(missing), `${label}: the answer for Ana's resource differs from the one for a missing resource (${describe(outcome)} vs ${describe(missing)})`);
    if (outcome.ok) return;
    t.not(outcome.code, Code.Internal, `${label}: ${describe(outcome)}`);
    t.not(outcome.code, Code.Unknown, `${label}: ${describe(outcome)}`);
    return;
  }
  t.false(outcome.ok, `${label}: expected ${Code[expected]}, the call succeeded: ${describe(outcome)}`);
  if (!outcome.ok) t.is(Code[outcome.code], Code[expected], `${label}: ${describe(outcome)}`);
}

/**
 * The edge does not route internal services at all: with a valid token the
 * answer is UNIMPLEMENTED (Envoy's 404 over gRPC-web). Without one, jwt_authn
 * refuses first (UNAUTHENTICATED), before any route is chosen.
 */
async function expectUnrouted(t: ExecutionContext, c: AuthzCase, caller: string, token: string | undefined): Promise<void> {
  const outcome = await call("edge", c, c.request(fx), token);
  t.false(outcome.ok, `${caller} on edge: an internal RPC answered through the edge: ${describe(outcome)}`);
  const expected = token === undefined ? [Code.Unauthenticated, Code.Unimplemented] : [Code.Unimplemented];
  if (!outcome.ok) t.true(expected.includes(outcome.code), `${caller} on edge: ${describe(outcome)}`);
}

/**
 * At most this many cases run at once: each is a handful of calls, and ~200
 * of them at once on 2 cores push calls past the edge's route timeouts.
 */
const limit = (() => {
  let running = 0;
  const waiting: Array<() => void> = [];
  return async <T>(work: () => Promise<T>): Promise<T> => {
    while (running >= 6) await new Promise<void>((resolve) => waiting.push(resolve));
    running += 1;
    try {
      return await work();
    } finally {
      running -= 1;
      waiting.shift()?.();
    }
  };
})();

const title = (c: AuthzCase) => `${c.rpc}${c.variant === undefined ? "" : ` (${c.variant})`} [${c.kind}]`;

for (const c of authzCases) {
  for (const path of ["direct", "edge"] as const) {
    test(`${title(c)} ${path}`, (t) => limit(async () => {
      if (c.kind === "internal" && path === "edge") {
        await expectUnrouted(t, c, "anonymous", undefined);
        await expectUnrouted(t, c, "user", fx.ben.token);
        return;
      }
      await expectOutcome(t, path, c, "anonymous", undefined, c.anonymous);
      if (c.kind === "internal") {
        await expectOutcome(t, path, c, "user instead of a service", fx.ben.token, c.intruder ?? Code.PermissionDenied);
        // A valid service token with none of the scopes any internal RPC asks for (fresh: the matrix outlives a token's 5 minutes).
        if (c.unscoped !== undefined && mesh) await expectOutcome(t, path, c, "service without the scope", await unscopedClient.token(mesh.auth), c.unscoped);
        return;
      }
      if (c.intruder !== undefined) await expectOutcome(t, path, c, "intruder", fx.ben.token, c.intruder);
      if (c.blocked !== undefined) await expectOutcome(t, path, c, "blocked", fx.cy.token, c.blocked);
      if (c.kind === "self") t.pass("only the anonymous caller applies: no field names another user's data");
    }));
  }
}
