// Starts the real realtime service for a test file, next to real auth and
// user services (tokens, JWKS, profiles and blocks for presence visibility):
// the shared Redis under a key prefix of the file's own, so files never share
// streams. Also a producer-side hub on the same prefix (as the notification
// or chat service would publish) and a stream reader that collects frames.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createClient, type Client, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { decodeJwt } from "jose";
import { AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { RealtimeService, type SubscribeRequestSchema, type SubscribeResponse, type Event } from "@aviary/gen/aviary/realtime/v1/realtime_pb";
import { openRedisUserStreams } from "../../runtime/src/realtime/redis.ts";
import type { UserStreamHub } from "../../runtime/src/realtime/user-streams.ts";
import { publishEvent } from "../../runtime/src/realtime/events.ts";
import { silentSink } from "../../runtime/src/bus/log-sink.ts";
import { eventually, infra, uniqueName } from "../../runtime/test-support/infra.ts";
import { freePort } from "../../runtime/test-support/envoy.ts";
import { as, password, uniqueIp } from "../../auth/test/harness.ts";
import { startTestUser, type TestUser } from "../../user/test/harness.ts";
import { realtimeConfigFromEnv, startRealtimeService, type RunningRealtimeService } from "../src/index.ts";

export { as, rejection } from "../../auth/test/harness.ts";

/** How long a test waits for something the services do (generous: a busy machine is slow, never wrong). */
export const WAIT_MS = 20_000;

export interface Device {
  userId: string;
  sessionId: string;
  token: string;
  email: string;
  call: { headers: Record<string, string> };
}

export interface TestRealtime {
  user: TestUser;
  service: RunningRealtimeService;
  client: Client<typeof RealtimeService>;
  auth: Client<typeof AuthService>;
  /** The environment the service was started with (to start more instances, or a child process). */
  env: Record<string, string>;
  /** A producer on the same streams. */
  producer: UserStreamHub;
  prefix: string;
  /** A new account, signed in on one device. */
  signUp(): Promise<Device>;
  /** The same account signed in on another device (a new session). */
  anotherDevice(device: Device): Promise<Device>;
  /** Publishes `count` durable items (feed hints as a stand-in payload) for the user; returns their ids. */
  publish(userId: string, count: number, label?: string): Promise<string[]>;
  /** Another realtime instance on the same streams (closed with the harness). */
  startInstance(env?: Record<string, string>): Promise<RunningRealtimeService>;
  /** An instance in a child process (to SIGKILL), resolved once it answers /healthz. */
  spawnInstance(env?: Record<string, string>): Promise<ChildInstance>;
  close(): Promise<void>;
}

/**
 * Who a token is for, read from the token itself rather than asked of GetMe:
 * a test's short-lived token may be gone by then on a busy machine.
 */
function deviceOf(token: string): { userId: string; sessionId: string } {
  const { sub, sid } = decodeJwt(token);
  if (typeof sub !== "string" || typeof sid !== "string") throw new Error("access token without a subject or session id");
  return { userId: sub, sessionId: sid };
}

export async function startTestRealtime(env: Record<string, string> = {}, options: { user?: TestUser } = {}): Promise<TestRealtime> {
  const urls = await infra();
  const user = options.user ?? (await startTestUser());
  const prefix = `${uniqueName("rttest")}:`;
  const fullEnv: Record<string, string> = {
    REALTIME_PORT: "0",
    REALTIME_INTERNAL_PORT: "0",
    REDIS_URL: urls.redisUrl,
    REALTIME_REDIS_PREFIX: prefix,
    AUTH_JWKS_URL: `${user.auth.service.url}/.well-known/jwks.json`,
    USER_URL: user.service.peerUrl,
    TRUSTED_PROXY_HOPS: "1",
    LOG_LEVEL: "silent",
    ...env,
  };
  const instances: RunningRealtimeService[] = [];
  const children: ReturnType<typeof spawn>[] = [];
  const startInstance = async (extra: Record<string, string> = {}) => {
    const instance = await startRealtimeService(realtimeConfigFromEnv({ ...fullEnv, ...extra }));
    instances.push(instance);
    return instance;
  };
  const service = await startInstance();
  const producer = openRedisUserStreams({
    url: fullEnv["REALTIME_REDIS_URL"] ?? fullEnv["REDIS_URL"]!,
    prefix,
    history: { maxItems: Number(fullEnv["REALTIME_HISTORY_MAX_ITEMS"] ?? 1000), ttlSeconds: 3600 },
    logger: silentSink,
  });
  const auth = user.auth.client;

  const login = async (email: string): Promise<Device> => {
    const reply = await auth.login({ identity: { case: "email", value: email }, password, deviceName: "test" }, as({ ip: uniqueIp() }));
    const token = reply.tokens?.accessToken ?? "";
    return { ...deviceOf(token), token, email, call: as({ token }) };
  };

  return {
    user,
    service,
    client: createClient(RealtimeService, createGrpcTransport({ baseUrl: service.url })),
    auth,
    env: fullEnv,
    producer,
    prefix,
    async signUp() {
      // The user harness waits for the profile: presence visibility asks the user service.
      const account = await user.signUp({ label: "rt" });
      return { ...deviceOf(account.token), token: account.token, email: account.identity, call: account.call };
    },
    anotherDevice: (device) => login(device.email),
    async publish(userId, count, label = "item") {
      const ids: string[] = [];
      for (let i = 0; i < count; i++) {
        const id = `${label}-${i}-${crypto.randomUUID()}`;
        await publishEvent(producer, userId, id, { case: "feedUpdated", value: { newestPostId: id } });
        ids.push(id);
      }
      return ids;
    },
    startInstance,
    async spawnInstance(extra = {}) {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      const child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", fileURLToPath(new URL("../src/main.ts", import.meta.url))], {
        env: { ...process.env, ...fullEnv, REALTIME_PORT: String(port), ...extra },
        stdio: "ignore",
      });
      const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
      children.push(child);
      await eventually("the child instance to listen", async () => (await fetch(`${url}/healthz`).catch(() => undefined))?.ok === true, WAIT_MS, 50);
      return {
        client: createClient(RealtimeService, createGrpcTransport({ baseUrl: url })),
        async kill() {
          child.kill("SIGKILL");
          await exited;
        },
      };
    },
    async close() {
      for (const child of children) child.kill("SIGKILL");
      for (const instance of instances.reverse()) await instance.close();
      await producer.close();
      if (options.user === undefined) await user.close();
    },
  };
}

export interface ChildInstance {
  client: Client<typeof RealtimeService>;
  /** SIGKILL, resolved once the process is gone. */
  kill(): Promise<void>;
}

/** A Subscribe call read in the background: every frame in arrival order, and how it ended. */
export interface StreamReader {
  readonly frames: SubscribeResponse[];
  /** Durable and ephemeral events, in order. */
  events(): Event[];
  /** Offsets of the durable events received. */
  offsets(): number[];
  ready(): Promise<{ epoch: string; offset: number; recovered: boolean }>;
  /** Resolves when `condition` holds (polling), failing after WAIT_MS. */
  until(what: string, condition: (reader: StreamReader) => boolean, timeoutMs?: number): Promise<void>;
  /** Settles when the stream ends: undefined for a normal end, else the error. */
  readonly ended: Promise<unknown>;
  isEnded(): boolean;
  /** The last offset received (or the ready position when none), for resuming. */
  position(): { epoch: string; offset: bigint };
  cancel(): void;
}

export function openStream(transport: Transport | Client<typeof RealtimeService>, device: Device, request: MessageInitShape<typeof SubscribeRequestSchema> = {}): StreamReader {
  const client = "subscribe" in transport ? transport : createClient(RealtimeService, transport);
  const abort = new AbortController();
  const frames: SubscribeResponse[] = [];
  let done = false;
  const ended = (async () => {
    try {
      for await (const frame of client.subscribe(request, { ...device.call, signal: abort.signal })) frames.push(frame);
      return undefined;
    } catch (error) {
      return error;
    } finally {
      done = true;
    }
  })();
  const events = () => frames.flatMap((f) => (f.frame.case === "event" ? [f.frame.value] : []));
  const reader: StreamReader = {
    frames,
    events,
    offsets: () => events().filter((e) => e.offset > 0n).map((e) => Number(e.offset)),
    async ready() {
      await reader.until("the ready frame", () => frames.length > 0 || done);
      const first = frames[0];
      if (first?.frame.case !== "ready") throw new Error(`stream ended before ready: ${String(await ended)}`);
      const position = first.frame.value.position!;
      return { epoch: position.epoch, offset: Number(position.offset), recovered: first.frame.value.recovered };
    },
    until: (what, condition, timeoutMs = WAIT_MS) => eventually(what, () => condition(reader), timeoutMs, 10),
    ended,
    isEnded: () => done,
    position() {
      const first = frames[0];
      const epoch = first?.frame.case === "ready" ? first.frame.value.position!.epoch : "";
      const offsets = reader.offsets();
      const last = offsets.length > 0 ? offsets[offsets.length - 1]! : first?.frame.case === "ready" ? Number(first.frame.value.position!.offset) : 0;
      return { epoch, offset: BigInt(last) };
    },
    cancel: () => abort.abort(),
  };
  return reader;
}

