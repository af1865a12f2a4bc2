// The fault matrix: each fault injected into the chaos stack while a fresh
// cohort's workload runs, then healed; the oracle is polled from the heal
// until every check matches (time to recover) or the bound passes (then what
// is lost, doubled or unexpected is what is reported).
import { chatGroup } from "../../services/chat/src/events/deliver.ts";
import { feedGroup } from "../../services/feed/src/events/consume.ts";
import { notificationGroup } from "../../services/notification/src/events/consume.ts";
import { profilesConsumer } from "../../services/user/src/events/consume.ts";
import { eventually } from "../../services/runtime/test-support/infra.ts";
import { check, matches, resolveMaybes, type Verdict } from "./oracle.ts";
import type { ChaosStack, ProcessName } from "./stack.ts";
import { signUpCohort, Workload, type Clients, type WorkloadLog } from "./workload.ts";

export interface Fault {
  name: string;
  /** What is broken, for the report. */
  what: string;
  /** Breaks it; consumer kills answer with the group's uncommitted events at the kill. */
  inject(stack: ChaosStack): Promise<void | { lagAtKill: number }>;
  /** How long the fault lasts before heal (0: heal right away, e.g. a restart after a kill). */
  holdMs: number;
  heal(stack: ChaosStack): Promise<void>;
  /** The fault empties Redis, where the stream histories live: resuming clients get recovered=false and re-read, by design, so histories are not checked. */
  wipesStreamHistory?: true;
}

/** How long a consumer kill waits for its group to have uncommitted events (offsets commit every second while events flow). */
const BACKLOG_WAIT_MS = 15_000;

/** SIGKILLs the consumer once its group has events not yet committed (mid-batch: they will be delivered again), then restarts it. */
const consumerKill = (process: ProcessName, group: string, what: string): Fault => ({
  name: `${process} SIGKILL`,
  what,
  holdMs: 0,
  inject: async (stack) => {
    let lag = 0;
    // No backlog within the wait (an idle group): killed anyway, and the table says 0.
    await eventually(`uncommitted events in ${group}`, async () => (lag = await stack.consumerLag(group)) > 0, BACKLOG_WAIT_MS, 20).catch(() => {});
    await stack.kill(process);
    return { lagAtKill: lag };
  },
  heal: (stack) => stack.start(process),
});

/** One of the stack's own servers stopped (SIGTERM, or PostgreSQL's fast shutdown) or SIGKILLed, started again after `holdMs`. */
const serverFault = (name: string, what: string, server: "postgres" | "redis" | "kafka", action: "stop" | "kill", holdMs: number, extra: Partial<Fault> = {}): Fault => ({
  name,
  what,
  holdMs,
  inject: (stack) => stack.control(action, server),
  heal: (stack) => stack.control("start", server),
  ...extra,
});

const toxic = (name: string, what: string, proxies: (stack: ChaosStack) => string[], toxicSpec: Parameters<ChaosStack["toxiproxy"]["addToxic"]>[1], holdMs: number): Fault => ({
  name,
  what,
  holdMs,
  inject: async (stack) => {
    for (const proxy of proxies(stack)) await stack.toxiproxy.addToxic(proxy, toxicSpec);
  },
  heal: async (stack) => {
    for (const proxy of proxies(stack)) await stack.toxiproxy.removeToxics(proxy);
  },
});

const partition = (name: string, what: string, proxies: (stack: ChaosStack) => string[], holdMs: number): Fault => ({
  name,
  what,
  holdMs,
  inject: async (stack) => {
    for (const proxy of proxies(stack)) await stack.toxiproxy.setEnabled(proxy, false);
  },
  heal: async (stack) => {
    for (const proxy of proxies(stack)) await stack.toxiproxy.setEnabled(proxy, true);
  },
});

/** How long a network fault lasts: longer than a call's deadline (5 s), so calls do fail. */
const NETWORK_FAULT_MS = 10_000;

export const faults: Record<string, Fault> = {
  "kafka-stop": serverFault("Kafka stopped 30 s", "the broker shut down (SIGTERM), started again 30 s later", "kafka", "stop", 30_000),
  "kafka-kill": serverFault("Kafka SIGKILL", "the broker SIGKILLed, started again at once", "kafka", "kill", 0),
  "feed-consumer-kill": consumerKill("feed-consumer", feedGroup, "the feed fan-out consumer SIGKILLed with events uncommitted, restarted"),
  "notification-consumer-kill": consumerKill("notification-consumer", notificationGroup, "the notification consumer SIGKILLed with events uncommitted, restarted"),
  "chat-delivery-kill": consumerKill("chat-delivery", chatGroup, "the chat delivery consumer SIGKILLed with messages uncommitted, restarted"),
  "user-kill": consumerKill("user", profilesConsumer, "the user service (API and its auth-events consumer) SIGKILLed, restarted"),
  "redis-flush": {
    name: "Redis FLUSHALL",
    what: "every key gone (timelines, stream histories, denylist, caches)",
    holdMs: 0,
    wipesStreamHistory: true,
    inject: async (stack) => {
      const redis = stack.redis();
      await redis.connect();
      await redis.flushall();
      redis.disconnect();
    },
    heal: async () => {},
  },
  "redis-stop": serverFault("Redis stopped 10 s", "the server stopped, started again (empty) 10 s later", "redis", "stop", NETWORK_FAULT_MS, { wipesStreamHistory: true }),
  "postgres-restart": serverFault("PostgreSQL restarted", "a fast shutdown (every connection closed), started again", "postgres", "stop", 0),
  "post-postgres-latency": toxic("post ↔ PostgreSQL latency", "250 ms ± 100 ms each way for 10 s", (s) => [s.proxyName("post", "postgres")], { type: "latency", attributes: { latency: 250, jitter: 100 } }, NETWORK_FAULT_MS),
  "kafka-latency": toxic("all ↔ Kafka latency", "1 s each way for 10 s (every client: one advertised address)", () => ["kafka"], { type: "latency", attributes: { latency: 1_000, jitter: 0 } }, NETWORK_FAULT_MS),
  "feed-redis-resets": toxic("feed consumer ↔ Redis resets", "every connection reset (TCP RST) for 10 s", (s) => [s.proxyName("feed-consumer", "redis")], { type: "reset_peer", attributes: { timeout: 0 } }, NETWORK_FAULT_MS),
  "notification-postgres-resets": toxic("notification consumer ↔ PostgreSQL resets", "connections reset 500 ms after they open, for 10 s", (s) => [s.proxyName("notification-consumer", "postgres")], { type: "reset_peer", attributes: { timeout: 500 } }, NETWORK_FAULT_MS),
  "post-postgres-partition": partition("post ↔ PostgreSQL partition", "no connection for 10 s (open ones dropped)", (s) => [s.proxyName("post", "postgres")], NETWORK_FAULT_MS),
  "kafka-partition": partition("all ↔ Kafka partition", "no connection to the broker for 10 s", () => ["kafka"], NETWORK_FAULT_MS),
  "feed-redis-partition": partition("feed ↔ Redis partition", "feed API and consumer cut off from Redis for 10 s", (s) => [s.proxyName("feed-api", "redis"), s.proxyName("feed-consumer", "redis")], NETWORK_FAULT_MS),
  "chat-postgres-partition": partition("chat ↔ PostgreSQL partition", "chat API and delivery cut off from PostgreSQL for 10 s", (s) => [s.proxyName("chat-api", "postgres"), s.proxyName("chat-delivery", "postgres")], NETWORK_FAULT_MS),
};

export interface MatrixOptions {
  cohortSize: number;
  followsPerAccount: number;
  workers: number;
  paceMs: number;
  /** Ops logged before the fault, and after the heal before the workload stops. */
  warmOps: number;
  tailOps: number;
}

/**
 * How long the oracle may take after a heal. The slowest honest recovery:
 * a SIGKILLed consumer's partitions stay with its dead member until the
 * session times out (the bus's 10 s), the rejoin may take the join timeout
 * (30 s), and the relay and consumers back off up to 5 s between retries.
 * Twice their sum.
 */
export const RECOVERY_BOUND_MS = 2 * (10_000 + 30_000 + 5_000);
/** An idempotent op retries this long: past any fault's hold plus a broker restart. */
const RETRY_FOR_MS = 90_000;
/** Reaching `warmOps` / `tailOps` on a healthy stack. */
const WORKLOAD_PROGRESS_MS = 120_000;

export interface FaultResult {
  fault: string;
  what: string;
  operations: number;
  /** Ops with no idempotency key that failed: how many had committed anyway, how many had not. */
  maybe: { committed: number; absent: number };
  lost: number;
  doubled: number;
  unexpected: number;
  /** From the heal to the first full match; null when the bound passed first. */
  recoveredMs: number | null;
  /** Whether the members' stream histories were checked (not after a fault that wipes Redis). */
  streamsChecked: boolean;
  /** Consumer kills: the group's uncommitted events at the kill. */
  lagAtKill?: number;
  /** Calls of the workload that failed, by code (retried ones included). */
  failedCalls: WorkloadLog["failures"];
  /** The same for the cohort's sign-ups and first follows, before the fault. */
  setupFailedCalls: WorkloadLog["failures"];
  details: string[];
}

export async function runFault(stack: ChaosStack, clients: Clients, key: string, options: MatrixOptions, say: (line: string) => void = () => {}): Promise<FaultResult> {
  const fault = faults[key];
  if (fault === undefined) throw new Error(`unknown fault ${key}`);
  const policy = { retryForMs: RETRY_FOR_MS };
  const label = `chaos-${key}-${Date.now().toString(36)}`;
  const setupLog: WorkloadLog = { ops: [], failures: {}, refused: 0 };
  const accounts = await signUpCohort(clients, label, options.cohortSize, policy, setupLog);
  const workload = new Workload(clients, accounts, policy, label);
  await workload.followGraph(options.followsPerAccount);
  // The cohort's setup (its follows wait for the new profiles: NotFound until the user service has them) is not the fault's.
  const setupFailedCalls = { ...setupLog.failures, ...workload.log.failures };
  for (const code of Object.keys(workload.log.failures)) delete workload.log.failures[code];

  workload.start(options.workers, options.paceMs);
  let stopped = false;
  try {
    await eventually(`${options.warmOps} operations before the fault`, () => workload.opCount >= options.warmOps, WORKLOAD_PROGRESS_MS, 50);
    say(`${fault.name}: inject after ${workload.opCount} ops`);
    const injected = await fault.inject(stack);
    if (fault.holdMs > 0) await new Promise((resolve) => setTimeout(resolve, fault.holdMs));
    await fault.heal(stack);
    const healedAt = Date.now();
    const atHeal = workload.opCount;
    say(`${fault.name}: healed after ${atHeal} ops`);
    await eventually(`${options.tailOps} operations after the heal`, () => workload.opCount >= atHeal + options.tailOps, WORKLOAD_PROGRESS_MS, 50);
    await workload.stop();
    stopped = true;
    const maybe = await resolveMaybes(clients, workload);

    let verdict: Verdict = { lost: 0, doubled: 0, unexpected: 0, details: ["never checked"] };
    let recoveredMs: number | null = null;
    const deadline = healedAt + RECOVERY_BOUND_MS;
    for (;;) {
      try {
        verdict = await check(clients, workload, fault.wipesStreamHistory ? undefined : stack.streams);
      } catch (error) {
        verdict = { lost: 0, doubled: 0, unexpected: 0, details: [`a check failed: ${String(error)}`] };
      }
      const checkFailed = verdict.details[0]?.startsWith("a check failed") === true;
      if (!checkFailed && matches(verdict)) {
        recoveredMs = Date.now() - healedAt;
        break;
      }
      if (Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const result: FaultResult = {
      fault: fault.name,
      what: fault.what,
      operations: workload.opCount + maybe.absent,
      maybe,
      lost: verdict.lost,
      doubled: verdict.doubled,
      unexpected: verdict.unexpected,
      recoveredMs,
      streamsChecked: fault.wipesStreamHistory !== true,
      ...(injected ?? {}),
      failedCalls: workload.log.failures,
      setupFailedCalls,
      details: verdict.details,
    };
    say(`${fault.name}: ${JSON.stringify({ ops: result.operations, lagAtKill: result.lagAtKill, maybe, lost: result.lost, doubled: result.doubled, unexpected: result.unexpected, recoveredMs, failed: result.failedCalls })}`);
    if (recoveredMs === null) say(`${fault.name}: ${verdict.details.join("; ")}`);
    return result;
  } finally {
    if (!stopped) await workload.stop().catch(() => {});
    // Whatever happened, the next fault starts on a whole stack.
    await stack.toxiproxy.reset().catch(() => {});
  }
}
