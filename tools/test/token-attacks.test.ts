// The token attack set (issue 13, item 3) against every service directly and
// through the edge: the forgeries of services/runtime/test-support/
// token-forgeries.ts (alg none, HS256 keyed with the public key, expired, not
// yet valid, wrong iss/aud, unknown and injected kid, the attacker's key in
// the header, tampered payload or signature), a token of a revoked session,
// and access and refresh tokens swapped. Every one is UNAUTHENTICATED on
// every protected RPC probed — one per service, the realtime stream
// included — while the genuine token on the same call is not, so each
// refusal is the token's doing.
import test, { type ExecutionContext } from "ava";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { decodeJwt } from "jose";
import { AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { MediaService } from "@aviary/gen/aviary/media/v1/media_pb";
import { PostService } from "@aviary/gen/aviary/post/v1/post_pb";
import { UserService } from "@aviary/gen/aviary/user/v1/user_pb";
import { UserInternalService } from "@aviary/gen/aviary/user/v1/user_internal_pb";
import { FeedService } from "@aviary/gen/aviary/feed/v1/feed_pb";
import { BffService } from "@aviary/gen/aviary/bff/v1/bff_pb";
import { ChatService } from "@aviary/gen/aviary/chat/v1/chat_pb";
import { NotificationService } from "@aviary/gen/aviary/notification/v1/notification_pb";
import { RealtimeService } from "@aviary/gen/aviary/realtime/v1/realtime_pb";
import { ModerationService } from "@aviary/gen/aviary/moderation/v1/moderation_pb";
import { AuditService } from "@aviary/gen/aviary/audit/v1/audit_pb";
import { authConfigFromEnv } from "@aviary/auth";
import { startTestMesh, type TestMesh } from "../../services/runtime/test-support/mesh.ts";
import { eventually } from "../../services/runtime/test-support/infra.ts";
import { serviceClaims, signAsIssuer, tokenForgeries } from "../../services/runtime/test-support/token-forgeries.ts";
import { password, uniqueEmail } from "../../services/auth/test/harness.ts";

let mesh: TestMesh | undefined;
/** A signed-in user's genuine tokens. */
let genuine: { userId: string; access: string; refresh: string };
/** A service token signed with the issuer's key for a client the auth service knows, with every scope the internal RPC probed needs. */
let serviceToken: string;

test.before(async () => {
  mesh = await startTestMesh();
  genuine = await signIn();
  serviceToken = await signAsIssuer(mesh.auth, serviceClaims("notification", "user.profiles.read user.devices.read"), { typ: "svc+jwt" });
});

test.after.always(async () => {
  await mesh?.close();
});

async function signIn(): Promise<{ userId: string; access: string; refresh: string }> {
  if (!mesh) throw new Error("the mesh is not running");
  const identity = { case: "email" as const, value: uniqueEmail("attacks") };
  const { userId } = await mesh.auth.client.register({ identity, password });
  const login = await mesh.auth.client.login({ identity, password, deviceName: "attacks" });
  return { userId, access: login.tokens?.accessToken ?? "", refresh: login.tokens?.refreshToken ?? "" };
}

type Path = "direct" | "edge";

/** One protected call per service: cheap, about the caller's own data, and the realtime stream (refused before any frame). */
interface Probe {
  name: string;
  cluster: string;
  /** Internal RPCs take service tokens and are not routed at the edge. */
  internal?: boolean;
  /**
   * Needs a role (aviary.auth.v1.required_role): the edge checks the token's
   * roles itself and answers 403 before the service sees the call.
   */
  roleGated?: boolean;
  call(transport: Transport, headers: Headers): Promise<unknown>;
}

const missing = "00000000-0000-4000-8000-000000000000";

const probes: Probe[] = [
  { name: "AuthService/GetMe", cluster: "auth", call: (tr, headers) => createClient(AuthService, tr).getMe({}, { headers }) },
  { name: "UserService/ListDevices", cluster: "user", call: (tr, headers) => createClient(UserService, tr).listDevices({}, { headers }) },
  { name: "MediaService/GetMedia", cluster: "media", call: (tr, headers) => createClient(MediaService, tr).getMedia({ mediaId: missing }, { headers }) },
  { name: "PostService/GetPost", cluster: "post", call: (tr, headers) => createClient(PostService, tr).getPost({ postId: missing }, { headers }) },
  { name: "FeedService/GetHomeFeed", cluster: "feed", call: (tr, headers) => createClient(FeedService, tr).getHomeFeed({}, { headers }) },
  { name: "BffService/GetHome", cluster: "bff", call: (tr, headers) => createClient(BffService, tr).getHome({}, { headers }) },
  { name: "ChatService/ListConversations", cluster: "chat", call: (tr, headers) => createClient(ChatService, tr).listConversations({}, { headers }) },
  { name: "NotificationService/GetUnreadCount", cluster: "notification", call: (tr, headers) => createClient(NotificationService, tr).getUnreadCount({}, { headers }) },
  // Role-gated: the genuine user token is PERMISSION_DENIED there (no role), a forged one UNAUTHENTICATED before any role is looked at.
  { name: "ModerationService/GetSuspension", cluster: "moderation", roleGated: true, call: (tr, headers) => createClient(ModerationService, tr).getSuspension({ userId: missing }, { headers }) },
  { name: "AuditService/VerifyChain", cluster: "audit", roleGated: true, call: (tr, headers) => createClient(AuditService, tr).verifyChain({}, { headers }) },
  { name: "RealtimeService/GetPresence", cluster: "realtime", call: (tr, headers) => createClient(RealtimeService, tr).getPresence({ userIds: [missing] }, { headers }) },
  {
    name: "RealtimeService/Subscribe",
    cluster: "realtime",
    async call(tr, headers) {
      const abort = new AbortController();
      try {
        // The first frame (ready) is enough: a refused stream ends before any.
        for await (const frame of createClient(RealtimeService, tr).subscribe({}, { headers, signal: abort.signal })) return frame;
      } finally {
        abort.abort();
      }
      return undefined;
    },
  },
  {
    name: "UserInternalService/BatchLookupUsers",
    cluster: "user",
    internal: true,
    call: (tr, headers) => createClient(UserInternalService, tr).batchLookupUsers({ userIds: [missing] }, { headers }),
  },
];

function transportFor(path: Path, probe: Probe): Transport {
  if (!mesh) throw new Error("the mesh is not running");
  return path === "edge" ? createGrpcWebTransport({ baseUrl: mesh.envoy.url }) : createGrpcTransport({ baseUrl: mesh.upstreams[probe.cluster] ?? "" });
}

/** The code a call ended with (OK when it succeeded). */
async function codeOf(path: Path, probe: Probe, token: string): Promise<Code | "OK"> {
  try {
    await probe.call(transportFor(path, probe), new Headers({ authorization: `Bearer ${token}` }));
    return "OK";
  } catch (error) {
    const e = ConnectError.from(error);
    if (e.code !== Code.Unauthenticated && e.code !== Code.NotFound && e.code !== Code.PermissionDenied && e.code !== Code.Unimplemented) {
      throw new Error(`${probe.name} on ${path}: ${Code[e.code]}: ${e.rawMessage}`);
    }
    return e.code;
  }
}

const routes = (probe: Probe): Path[] => (probe.internal ? ["direct"] : ["direct", "edge"]);
const name = (code: Code | "OK") => (code === "OK" ? "OK" : Code[code]);

/**
 * Envoy's jwt_authn answers a token for another audience with 403
 * (JwtAudienceNotAllowed; the mapping is fixed in Envoy): refused, as
 * PERMISSION_DENIED. Every other refusal is UNAUTHENTICATED on both paths.
 */
const edgeRefusals: Record<string, string[]> = { "wrong aud": ["Unauthenticated", "PermissionDenied"] };
/**
 * Envoy knows nothing of sessions: a token signed by the issuer without a
 * `sid` passes jwt_authn, and on a role-gated route the edge's role check
 * refuses it first (403, no role); elsewhere the service says UNAUTHENTICATED.
 */
const roleGatedEdgeRefusals: Record<string, string[]> = { "no session id": ["Unauthenticated", "PermissionDenied"] };

/** Every token of `tokens` is UNAUTHENTICATED on every probe and path where `control` is accepted (anything but UNAUTHENTICATED). */
async function refusedEverywhere(t: ExecutionContext, tokens: Record<string, string[]>, kind: "user" | "service"): Promise<void> {
  const chosen = probes.filter((p) => (kind === "service") === (p.internal === true));
  const control = kind === "service" ? serviceToken : genuine.access;
  await Promise.all(
    chosen.flatMap((probe) =>
      routes(probe).map(async (path) => {
        t.not(name(await codeOf(path, probe, control)), "Unauthenticated", `${probe.name} on ${path}: the genuine ${kind} token is refused, so the attacks prove nothing`);
        for (const [attack, variants] of Object.entries(tokens)) {
          for (const [i, token] of variants.entries()) {
            const refusals = (path === "edge" ? (probe.roleGated ? roleGatedEdgeRefusals[attack] : undefined) ?? edgeRefusals[attack] : undefined) ?? ["Unauthenticated"];
            const code = name(await codeOf(path, probe, token));
            t.true(refusals.includes(code), `${attack} #${i + 1}: ${probe.name} on ${path}: ${code}`);
          }
        }
      }),
    ),
  );
}

test("forged and misaddressed user tokens are UNAUTHENTICATED at every service and at the edge", async (t) => {
  await refusedEverywhere(t, await tokenForgeries(mesh!.auth, genuine.access), "user");
});

test("forged and misaddressed service tokens are UNAUTHENTICATED on the internal RPCs", async (t) => {
  await refusedEverywhere(t, await tokenForgeries(mesh!.auth, serviceToken), "service");
});

test("a refresh token as the Bearer token is UNAUTHENTICATED everywhere", async (t) => {
  await refusedEverywhere(t, { "refresh token as Bearer": [genuine.refresh] }, "user");
});

test("an access token is not a refresh token, directly or through the edge", async (t) => {
  for (const transport of [createGrpcTransport({ baseUrl: mesh!.auth.service.url }), createGrpcWebTransport({ baseUrl: mesh!.envoy.url })]) {
    const auth = createClient(AuthService, transport);
    for (const refreshToken of [genuine.access, serviceToken]) {
      const error = await t.throwsAsync(auth.refresh({ refreshToken }));
      // Refused as not even shaped like a refresh token (INVALID_ARGUMENT on refresh_token), or as an unknown one.
      t.true([Code.InvalidArgument, Code.Unauthenticated].includes(ConnectError.from(error).code), String(error));
    }
  }
  // And the real refresh token still refreshes: the refusals above are about the token.
  const session = await signIn();
  const refreshed = await createClient(AuthService, createGrpcWebTransport({ baseUrl: mesh!.envoy.url })).refresh({ refreshToken: session.refresh });
  t.truthy(refreshed.tokens?.accessToken);
});

test("a service token on a user RPC is refused, and a user token on an internal RPC is PERMISSION_DENIED", async (t) => {
  for (const probe of probes.filter((p) => !p.internal)) {
    t.not(name(await codeOf("direct", probe, serviceToken)), "OK", `${probe.name}: a service token was accepted as a user`);
  }
  const internal = probes.find((p) => p.internal)!;
  t.is(name(await codeOf("direct", internal, genuine.access)), "PermissionDenied");
});

test("a revoked session's token is refused by every service and at the edge within the denylist bound", async (t) => {
  const session = await signIn();
  const sessionId = String(decodeJwt(session.access)["sid"]);
  await refusedEverywhereAfter(t, session.access, async () => {
    await createClient(AuthService, createGrpcTransport({ baseUrl: mesh!.auth.service.url })).logout({}, { headers: { authorization: `Bearer ${session.access}` } });
  });
  // A session revoked from another device (RevokeSession) is refused the same way.
  const other = await signIn();
  const [, second] = [other, await loginAgain(other)];
  const secondSid = String(decodeJwt(second)["sid"]);
  t.not(secondSid, sessionId);
  await refusedEverywhereAfter(t, second, async () => {
    await createClient(AuthService, createGrpcTransport({ baseUrl: mesh!.auth.service.url })).revokeSession({ sessionId: secondSid }, { headers: { authorization: `Bearer ${other.access}` } });
  });
});

/** A second session (another device) of the account `account` signed in with. */
async function loginAgain(account: { access: string }): Promise<string> {
  const me = await mesh!.auth.client.getMe({}, { headers: { authorization: `Bearer ${account.access}` } });
  const login = await mesh!.auth.client.login({ identity: { case: "email", value: me.email }, password, deviceName: "second" });
  return login.tokens?.accessToken ?? "";
}

/**
 * `token` works on every probe; after `revoke`, each probe refuses it within
 * the documented bound: at once where the denylist write landed, at worst
 * one AUTH_DENYLIST_SYNC_INTERVAL (the re-publish) later.
 */
async function refusedEverywhereAfter(t: ExecutionContext, token: string, revoke: () => Promise<void>): Promise<void> {
  const bound = authConfigFromEnv({}).denylistSyncMs;
  // At the edge, a role-gated route refuses a user without the role (403) before the service could check the session.
  const chosen = probes.filter((p) => !p.internal);
  const routesOf = (probe: Probe): Path[] => (probe.roleGated ? ["direct"] : routes(probe));
  for (const probe of chosen) for (const path of routesOf(probe)) t.not(name(await codeOf(path, probe, token)), "Unauthenticated", `${probe.name} on ${path} before revocation`);
  await revoke();
  await Promise.all(
    chosen.flatMap((probe) =>
      routesOf(probe).map((path) =>
        eventually(`${probe.name} on ${path} to refuse the revoked session`, async () => (await codeOf(path, probe, token)) === Code.Unauthenticated, bound),
      ),
    ),
  );
  t.pass();
}
