// The chaos workload: a cohort of accounts doing what users do (follow,
// post, like, comment, send direct messages) through the services' public
// APIs, and a log of every operation the API answered OK. The oracle derives
// the expected state from that log alone.
//
// Retries: an operation the API makes idempotent (a like, a follow, a chat
// message with its client_message_id) is retried with the same request while
// the failure is transient, as a client would. CreatePost and CreateComment
// carry no idempotency key: a transient failure may still have committed, so
// the op is logged as a "maybe" and resolved against the owning service's own
// list afterwards — never counted as lost.
import { randomUUID } from "node:crypto";
import { Code, ConnectError, createClient, type CallOptions, type Client, type Transport } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { ChatService } from "@aviary/gen/aviary/chat/v1/chat_pb";
import { FeedService } from "@aviary/gen/aviary/feed/v1/feed_pb";
import { NotificationService } from "@aviary/gen/aviary/notification/v1/notification_pb";
import { PostService } from "@aviary/gen/aviary/post/v1/post_pb";
import { UserService } from "@aviary/gen/aviary/user/v1/user_pb";
import type { ServiceUrls } from "./stack.ts";

export interface Clients {
  auth: Client<typeof AuthService>;
  user: Client<typeof UserService>;
  post: Client<typeof PostService>;
  feed: Client<typeof FeedService>;
  notification: Client<typeof NotificationService>;
  chat: Client<typeof ChatService>;
}

export function connect(urls: ServiceUrls): Clients {
  const transport = (baseUrl: string): Transport => createGrpcTransport({ baseUrl });
  return {
    auth: createClient(AuthService, transport(urls.auth)),
    user: createClient(UserService, transport(urls.user)),
    post: createClient(PostService, transport(urls.post)),
    feed: createClient(FeedService, transport(urls.feed)),
    notification: createClient(NotificationService, transport(urls.notification)),
    chat: createClient(ChatService, transport(urls.chat)),
  };
}

export interface Account {
  userId: string;
  call: CallOptions;
}

/** ok: answered OK (possibly after retries); maybe: failed transiently without an idempotency key, or retries ran out. */
export type Status = "ok" | "maybe";

export type Op =
  | { kind: "follow"; status: Status; follower: string; followee: string }
  | { kind: "post"; status: Status; author: string; text: string; postId?: string }
  | { kind: "like"; status: Status; liker: string; postId: string; author: string }
  | { kind: "comment"; status: Status; commenter: string; postId: string; author: string; text: string }
  | { kind: "message"; status: Status; sender: string; recipient: string; clientMessageId: string; conversationId?: string };

export interface WorkloadLog {
  ops: Op[];
  /** Calls that failed, by Connect code (retried ones included), for the report. */
  failures: Record<string, number>;
  /** Ops refused for a reason that is not the fault (e.g. NotFound): not performed, not in the log. */
  refused: number;
}

/** Codes a fault produces: the request may or may not have been applied. */
const transientCodes = new Set([Code.Unavailable, Code.DeadlineExceeded, Code.Aborted, Code.Unknown, Code.Internal, Code.ResourceExhausted, Code.Canceled]);

export function isTransient(error: unknown): boolean {
  return !(error instanceof ConnectError) || transientCodes.has(error.code);
}

/** Every call's own deadline, so a partitioned dependency costs a bounded wait per attempt. */
const CALL_TIMEOUT_MS = 5_000;

export interface RetryPolicy {
  /** How long an idempotent op keeps retrying (longer than any fault lasts). */
  retryForMs: number;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** `attempt` again on transient failures (counted in `log`) until it answers or `policy` runs out (undefined). Only for idempotent calls. */
export async function retrying<T>(policy: RetryPolicy, log: WorkloadLog, attempt: () => Promise<T>): Promise<T | undefined> {
  const deadline = Date.now() + policy.retryForMs;
  for (let delay = 100; ; delay = Math.min(delay * 2, 2_000)) {
    try {
      return await attempt();
    } catch (error) {
      countFailure(log, error);
      if (!isTransient(error)) throw error;
      if (Date.now() + delay > deadline) return undefined;
      await pause(delay);
    }
  }
}

function countFailure(log: WorkloadLog, error: unknown): void {
  const code = error instanceof ConnectError ? Code[error.code] : "transport";
  log.failures[code] = (log.failures[code] ?? 0) + 1;
}

const password = "violet-harbour-teapot-42";

/** `size` fresh accounts, signed in, each with a client IP of its own (the auth limits count per IP). */
export async function signUpCohort(clients: Clients, label: string, size: number, policy: RetryPolicy, log: WorkloadLog): Promise<Account[]> {
  const accounts: Account[] = [];
  for (let i = 0; i < size; i++) {
    const ip = `203.0.${(accounts.length * 7 + label.length) % 250}.${(i + Date.now()) % 250}`;
    const identity = { case: "email" as const, value: `${label}.${i}.${randomUUID().slice(0, 8)}@example.org` };
    const headers = { "x-forwarded-for": ip };
    const registered = await retrying(policy, log, () => clients.auth.register({ identity, password }, { headers, timeoutMs: CALL_TIMEOUT_MS }));
    if (registered === undefined) throw new Error(`could not register ${identity.value}`);
    const login = await retrying(policy, log, () => clients.auth.login({ identity, password, deviceName: "chaos" }, { headers, timeoutMs: CALL_TIMEOUT_MS }));
    const token = login?.tokens?.accessToken;
    if (!token) throw new Error(`could not sign in ${identity.value}`);
    accounts.push({ userId: registered.userId.toLowerCase(), call: { headers: { ...headers, authorization: `Bearer ${token}` }, timeoutMs: CALL_TIMEOUT_MS } });
  }
  return accounts;
}

/** The state the workload knows (what it may still do). */
interface Known {
  follows: Set<string>;
  posts: Array<{ postId: string; author: string }>;
  likes: Set<string>;
  postsBy: Map<string, number>;
}

/** Posts per author stay below the feed's backfill (FEED_BACKFILL, 50): a follow made mid-run then brings every earlier post. */
const MAX_POSTS_PER_AUTHOR = 40;

export class Workload {
  readonly log: WorkloadLog = { ops: [], failures: {}, refused: 0 };
  private readonly known: Known = { follows: new Set(), posts: [], likes: new Set(), postsBy: new Map() };
  private running = false;
  private workers: Promise<void>[] = [];
  private serial = 0;

  private readonly clients: Clients;
  readonly accounts: Account[];
  private readonly policy: RetryPolicy;
  private readonly label: string;

  constructor(clients: Clients, accounts: Account[], policy: RetryPolicy, label: string) {
    this.clients = clients;
    this.accounts = accounts;
    this.policy = policy;
    this.label = label;
  }

  /** Each account follows `perAccount` others (profiles come from UserRegistered: NotFound until the user service has it, so retried). */
  async followGraph(perAccount: number): Promise<void> {
    for (const [i, account] of this.accounts.entries()) {
      for (let k = 1; k <= perAccount; k++) {
        const followee = this.accounts[(i + k) % this.accounts.length]!;
        await this.follow(account, followee, true);
      }
    }
  }

  /** `workers` loops of random operations, `paceMs` apart each, until stop(). */
  start(workers: number, paceMs: number): void {
    this.running = true;
    this.workers = Array.from({ length: workers }, async () => {
      while (this.running) {
        await this.randomOp();
        await pause(paceMs);
      }
    });
  }

  /** Stops starting operations and waits for the ones in flight (their retries included). */
  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.workers);
  }

  get opCount(): number {
    return this.log.ops.length;
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(Math.random() * items.length)]!;
  }

  private async randomOp(): Promise<void> {
    const roll = Math.random();
    const actor = this.pick(this.accounts);
    try {
      if (roll < 0.35 || this.known.posts.length === 0) await this.createPost(actor);
      else if (roll < 0.55) await this.like(actor);
      else if (roll < 0.7) await this.comment(actor);
      else if (roll < 0.8) await this.follow(actor, this.pick(this.accounts), false);
      else await this.message(actor, this.pick(this.accounts));
    } catch (error) {
      if (isTransient(error)) throw error;
      this.log.refused += 1;
    }
  }

  private async createPost(author: Account): Promise<void> {
    if ((this.known.postsBy.get(author.userId) ?? 0) >= MAX_POSTS_PER_AUTHOR) return;
    this.known.postsBy.set(author.userId, (this.known.postsBy.get(author.userId) ?? 0) + 1);
    const text = `${this.label} post ${++this.serial}`;
    try {
      const { post } = await this.clients.post.createPost({ text }, author.call);
      this.log.ops.push({ kind: "post", status: "ok", author: author.userId, text, postId: post!.postId });
      this.known.posts.push({ postId: post!.postId, author: author.userId });
    } catch (error) {
      countFailure(this.log, error);
      if (!isTransient(error)) throw error;
      this.log.ops.push({ kind: "post", status: "maybe", author: author.userId, text });
    }
  }

  private async like(liker: Account): Promise<void> {
    const target = this.pick(this.known.posts);
    const key = `${liker.userId}:${target.postId}`;
    if (target.author === liker.userId || this.known.likes.has(key)) return;
    this.known.likes.add(key);
    const done = await retrying(this.policy, this.log, () => this.clients.post.likePost({ postId: target.postId }, liker.call));
    this.log.ops.push({ kind: "like", status: done === undefined ? "maybe" : "ok", liker: liker.userId, postId: target.postId, author: target.author });
  }

  private async comment(commenter: Account): Promise<void> {
    const target = this.pick(this.known.posts);
    if (target.author === commenter.userId) return;
    const text = `${this.label} comment ${++this.serial}`;
    try {
      await this.clients.post.createComment({ postId: target.postId, text }, commenter.call);
      this.log.ops.push({ kind: "comment", status: "ok", commenter: commenter.userId, postId: target.postId, author: target.author, text });
    } catch (error) {
      countFailure(this.log, error);
      if (!isTransient(error)) throw error;
      this.log.ops.push({ kind: "comment", status: "maybe", commenter: commenter.userId, postId: target.postId, author: target.author, text });
    }
  }

  private async follow(follower: Account, followee: Account, setup: boolean): Promise<void> {
    const key = `${follower.userId}:${followee.userId}`;
    if (follower.userId === followee.userId || this.known.follows.has(key)) return;
    this.known.follows.add(key);
    const attempt = () => this.clients.user.follow({ userId: followee.userId }, follower.call);
    let done: unknown;
    if (setup) {
      // The followee's profile may not be projected yet.
      const deadline = Date.now() + this.policy.retryForMs;
      for (;;) {
        try {
          done = await retrying(this.policy, this.log, attempt);
          break;
        } catch (error) {
          if (!(error instanceof ConnectError) || error.code !== Code.NotFound || Date.now() > deadline) throw error;
          await pause(100);
        }
      }
    } else {
      done = await retrying(this.policy, this.log, attempt);
    }
    this.log.ops.push({ kind: "follow", status: done === undefined ? "maybe" : "ok", follower: follower.userId, followee: followee.userId });
  }

  private async message(sender: Account, recipient: Account): Promise<void> {
    if (sender.userId === recipient.userId) return;
    const clientMessageId = randomUUID();
    const request = { target: { case: "directUserId" as const, value: recipient.userId }, clientMessageId, text: `${this.label} message ${++this.serial}` };
    const sent = await retrying(this.policy, this.log, () => this.clients.chat.sendMessage(request, sender.call));
    const op: Op = { kind: "message", status: sent === undefined ? "maybe" : "ok", sender: sender.userId, recipient: recipient.userId, clientMessageId };
    if (sent?.message !== undefined) op.conversationId = sent.message.conversationId;
    this.log.ops.push(op);
  }

  /** Resends a message whose retries ran out, as a client does once it can: the same client_message_id, so at most one exists. True once it is sent. */
  async resend(op: Extract<Op, { kind: "message" }>): Promise<boolean> {
    const sender = this.accounts.find((a) => a.userId === op.sender)!;
    const request = { target: { case: "directUserId" as const, value: op.recipient }, clientMessageId: op.clientMessageId, text: "resent" };
    const sent = await retrying(this.policy, this.log, () => this.clients.chat.sendMessage(request, sender.call));
    if (sent?.message !== undefined) {
      op.conversationId = sent.message.conversationId;
      return true;
    }
    return false;
  }
}
