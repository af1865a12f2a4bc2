// SendMessage: idempotent by (sender, client_message_id), numbered under the
// conversation row lock, the sender's watermarks moved to it, and the events
// written to the outbox atomically with it: most sends in one statement
// (sendToKnown after this instance's last send into the conversation,
// sendAtOnce after a lookup), the rest in a transaction (write). Nothing is
// written when the request is refused (every check runs before or inside
// that statement or transaction).
import { ConnectError, type HandlerContext } from "@connectrpc/connect";
import { ConversationKind, type Message, type SendMessageRequest } from "@aviary/gen/aviary/chat/v1/chat_pb";
import { asCaller } from "@aviary/runtime/context";
import type { Database, Tx } from "@aviary/runtime/db/database";
import { invalidArgument, notFound } from "@aviary/runtime/errors";
import { directKey } from "../domain/ids.ts";
import { noSuchConversation } from "../domain/not-found.ts";
import { presentConversation, presentEntry } from "../domain/present.ts";
import { textViolation } from "../domain/text.ts";
import { visibleFrom } from "../domain/visibility.ts";
import type { CommittedMessage, FastDelivery } from "../events/fast-path.ts";
import type { ChatEvents } from "../events/publish.ts";
import type { ChatMedia, ChatUsers } from "../peers.ts";
import type { AttachmentRecord } from "../store/schema.ts";
import { ensureDirect, insertMembers } from "../store/conversations.ts";
import { insertMessage, messageByClientId, messageRow, sendInOneStatement, sendLookup, takeSeqWithMembers, visibleMessageAt, type SendSnapshot } from "../store/entries.ts";
import type { SendLimiter } from "./limit.ts";
import type { SendSnapshots } from "./send-snapshots.ts";
import { requireReachable } from "./blocks.ts";
import { checkedAttachments } from "./media.ts";

export interface SendDeps {
  database: Database;
  users: ChatUsers;
  media: ChatMedia;
  events: ChatEvents;
  limiter: SendLimiter;
  /** This instance's snapshots of the conversations it sent to (send-snapshots.ts). */
  snapshots: SendSnapshots;
  /** The post-commit fast path (events/fast-path.ts), when enabled (CHAT_FAST_DELIVERY). */
  fast?: FastDelivery;
  /** TEST-ONLY failpoint (CHAT_FAILPOINT, see server.ts): runs right after a send's transaction commits, before it answers. */
  afterCommit?: () => void;
}

/** A concurrent retry committed the same (sender, client_message_id) first: roll back, answer with it. */
class DuplicateSend extends Error {}

/** Where a send goes, resolved before the transaction (peer calls stay outside it). */
type Target = { kind: "existing"; conversationId: string; seen: SendSnapshot } | { kind: "direct"; otherId: string };

export async function sendMessage(deps: SendDeps, ctx: HandlerContext, senderId: string, request: SendMessageRequest): Promise<Sent> {
  const blank = textViolation(request.text, request.attachmentMediaIds.length > 0);
  if (blank) throw invalidArgument([blank]);
  if (request.target.case === "directUserId" && request.target.value.toLowerCase() === senderId) {
    throw invalidArgument([{ field: "direct_user_id", description: "must not be the caller", reason: "SELF" }]);
  }
  const clientMessageId = request.clientMessageId.toLowerCase();
  const conversationId = request.target.case === "conversationId" ? request.target.value.toLowerCase() : undefined;
  const known = conversationId === undefined || request.replyToSeq !== 0n ? undefined : deps.snapshots.get(conversationId);
  // What a send to a known conversation did before it fell back to the lookup.
  let fellBack: FallBack | undefined;
  if (conversationId !== undefined && known?.memberIds.includes(senderId)) {
    const sent = await sendToKnown(deps, ctx, senderId, clientMessageId, conversationId, request, known);
    if ("message" in sent) return sent;
    fellBack = sent;
  }
  // One round trip for both (read-only), each acted on in its turn below.
  const lookup = await sendLookup(deps.database.db, senderId, clientMessageId, conversationId);
  const earlier = lookup.retried ? await messageByClientId(deps.database.db, senderId, clientMessageId) : undefined;
  // A retry is answered before the rate limit: it adds nothing and must not be refused.
  if (earlier) return { message: presentEntry(earlier), created: false };
  if (fellBack === undefined) await deps.limiter.admit(senderId);
  const target = await resolveTarget(deps, ctx, senderId, request, lookup.current);
  // After the target: a conversation the sender is not in is NOT_FOUND whatever the attachments.
  const attachments = fellBack?.attachments ?? (await checkedAttachments(deps.media, ctx, senderId, request.attachmentMediaIds));
  return committed(deps, senderId, clientMessageId, async () => {
    // Replies take the transaction (the replied-to message is checked under the lock), as do sends whose conversation moved on since the lookup.
    if (target.kind === "existing" && request.replyToSeq === 0n) {
      const atOnce = await sendAtOnce(deps, senderId, clientMessageId, request, target.conversationId, target.seen, attachments);
      if ("message" in atOnce) return atOnce;
    }
    const written = await deps.database.db.transaction((tx) => write(deps, tx, senderId, clientMessageId, request, target, attachments));
    deps.snapshots.remember(written.message.conversationId, written.snapshot);
    return { message: written.message, created: written.created, ...(written.toDeliver === undefined ? {} : { toDeliver: written.toDeliver }) };
  });
}

/** `toDeliver`: a message this call created in a conversation that existed before it (what the fast path may publish). */
type Sent = { message: Message; created: boolean; toDeliver?: CommittedMessage };

/** Runs a send's write (undefined: it wrote nothing); a DuplicateSend (a concurrent retry won) answers with the original. */
async function committed<S extends Sent | undefined>(deps: SendDeps, senderId: string, clientMessageId: string, send: () => Promise<S>): Promise<S | Sent> {
  try {
    const sent = await send();
    if (sent !== undefined) {
      deps.afterCommit?.(); // TEST-ONLY failpoint hook (unset in production): committed, not yet answered.
      if (sent.toDeliver !== undefined) deps.fast?.messageSent(sent.toDeliver);
    }
    return sent;
  } catch (error) {
    if (!(error instanceof DuplicateSend)) throw error;
    return original(deps, senderId, clientMessageId);
  }
}

async function original(deps: SendDeps, senderId: string, clientMessageId: string): Promise<Sent> {
  const row = await messageByClientId(deps.database.db, senderId, clientMessageId);
  if (!row) throw new Error("a conflicting send vanished");
  return { message: presentEntry(row), created: false };
}

/**
 * Tries of the one statement on what the last one answered, before a send
 * to a known conversation gives up on it: a first try after another
 * instance's send, a second when the answer was older than a write that
 * committed while the first waited for the row lock.
 */
const ONE_STATEMENT_ATTEMPTS = 3;

/** A send to a known conversation that gave up on it: admitted by the rate limit, and with the attachments it checked. */
type FallBack = { attachments?: AttachmentRecord[] };

/**
 * A send to a conversation this instance sent to before, on what its last
 * send there left (`known`, send-snapshots.ts): no lookup, the checks, then
 * the one statement in the conversation's turn, tried again on the
 * conversation as it answers when it moved on (another instance sent into
 * it, a member joined or left). Falls back to the lookup (the caller's,
 * with the sender admitted already) when the sender is no longer a member,
 * when the tries ran out, and when the block check refuses: that check used
 * the snapshot's members, and the lookup checks the current ones.
 *
 * Without the lookup, a retry is not known to be one until the statement
 * meets its key; so before refusing (the rate limit, an attachment) the
 * key is looked for, and a retry is answered with its original whatever
 * changed since, as the lookup would have. A retry the rate limit admits
 * counts in the sender's window.
 */
async function sendToKnown(
  deps: SendDeps,
  ctx: HandlerContext,
  senderId: string,
  clientMessageId: string,
  conversationId: string,
  request: SendMessageRequest,
  known: SendSnapshot,
): Promise<Sent | FallBack> {
  const orRetried = async <T>(check: () => Promise<T>): Promise<T | Sent> => {
    try {
      return await check();
    } catch (error) {
      if (!(error instanceof ConnectError)) throw error;
      const retried = await messageByClientId(deps.database.db, senderId, clientMessageId);
      if (retried) return { message: presentEntry(retried), created: false };
      throw error;
    }
  };
  // The block check goes out beside the rate limit (both mostly one cache
  // read: reach-answers.ts); the limit's answer still comes first.
  const reach = known.kind === "direct" ? reachableIn(deps, ctx, conversationId, known, senderId) : undefined;
  reach?.catch(() => undefined);
  const admitted = await orRetried(() => deps.limiter.admit(senderId));
  if (admitted !== undefined) return admitted;
  if (reach !== undefined && !(await reach)) return {};
  const attachments = await orRetried(() => checkedAttachments(deps.media, ctx, senderId, request.attachmentMediaIds));
  if (!Array.isArray(attachments)) return attachments;
  const sent = await committed(deps, senderId, clientMessageId, () =>
    deps.snapshots.inTurn(conversationId, async () => {
      for (let attempt = 0; attempt < ONE_STATEMENT_ATTEMPTS; attempt++) {
        // The latest snapshot: the sends before this one in the turn moved it on.
        const seen = deps.snapshots.get(conversationId);
        if (!seen?.memberIds.includes(senderId)) return undefined;
        const sent = await sendAtOnce(deps, senderId, clientMessageId, request, conversationId, seen, attachments);
        if ("message" in sent) return sent;
        deps.snapshots.forget(conversationId);
        if (sent.movedOn !== undefined) deps.snapshots.remember(conversationId, sent.movedOn);
      }
      return undefined;
    }),
  );
  return sent ?? { attachments };
}

/** The block check on a snapshot's members: false when it refuses (the lookup then checks the current ones). */
async function reachableIn(deps: SendDeps, ctx: HandlerContext, conversationId: string, known: SendSnapshot, senderId: string): Promise<boolean> {
  try {
    await requireReachable(deps, ctx, conversationId, senderId, known.memberIds);
    return true;
  } catch (error) {
    if (error instanceof ConnectError) return false;
    throw error;
  }
}

/** sendAtOnce's answer when the conversation moved on: as it is now (undefined when it is gone). */
type MovedOn = { movedOn: SendSnapshot | undefined };

/**
 * The common send (to an existing conversation, not a reply) in one
 * statement without a transaction, numbered after `seen` (what sendLookup
 * saw or this instance's last send left: store/entries.ts
 * sendInOneStatement), which it remembers moved on by this message.
 */
async function sendAtOnce(
  deps: SendDeps,
  senderId: string,
  clientMessageId: string,
  request: SendMessageRequest,
  conversationId: string,
  seen: SendSnapshot,
  attachments: AttachmentRecord[],
): Promise<Sent | MovedOn> {
  const seq = seen.lastSeq + 1;
  const row = messageRow({ conversationId, seq, id: crypto.randomUUID(), senderId, clientMessageId, text: request.text, replyToSeq: null, attachments: attachments.length > 0 ? attachments : null, at: new Date() });
  const message = presentEntry(row);
  const event = { message, memberIds: seen.memberIds, kind: seen.kind === "direct" ? ConversationKind.DIRECT : ConversationKind.GROUP, title: seen.title ?? "" };
  const outbox = deps.events.messageSent(deps.database.db, event);
  const sent = await sendInOneStatement(deps.database.db, row, seen, outbox);
  if (sent.outcome === "duplicate") throw new DuplicateSend();
  if (sent.outcome === "moved on") return { movedOn: sent.current };
  deps.snapshots.remember(conversationId, { ...seen, lastSeq: seq });
  return { message, created: true, toDeliver: { eventId: outbox.eventId, message, memberIds: seen.memberIds } };
}

/**
 * Checks the target and, for direct messages, blocks: the user service
 * leaves out users who blocked the caller or whom the caller blocked.
 * - To a user (direct_user_id): NOT_FOUND, like a user who does not exist
 *   (a blocker does not exist for the blocked, as in the user service).
 * - In an existing direct conversation: FAILED_PRECONDITION (the caller
 *   knows the conversation; it just cannot be written to while blocked).
 */
async function resolveTarget(deps: SendDeps, ctx: HandlerContext, senderId: string, request: SendMessageRequest, seen: SendSnapshot | undefined): Promise<Target> {
  if (request.target.case === "directUserId") {
    const otherId = request.target.value.toLowerCase();
    const reachable = await deps.users.reachable(senderId, [otherId], asCaller(ctx));
    if (!reachable.has(otherId)) throw notFound("no such user", { type: "aviary.user.v1.User", name: otherId });
    return { kind: "direct", otherId };
  }
  if (request.target.case !== "conversationId") {
    // The validation interceptor refuses a request without a target; kept for the type.
    throw invalidArgument([{ field: "target", description: "one of conversation_id, direct_user_id is required", reason: "ONEOF_REQUIRED" }]);
  }
  const conversationId = request.target.value.toLowerCase();
  // sendLookup's `current` is undefined when the sender is not a current member.
  if (seen === undefined) throw noSuchConversation(conversationId);
  if (seen.kind === "direct") await requireReachable(deps, ctx, conversationId, senderId, seen.memberIds);
  return { kind: "existing", conversationId, seen };
}

async function write(
  deps: SendDeps,
  tx: Tx,
  senderId: string,
  clientMessageId: string,
  request: SendMessageRequest,
  target: Target,
  attachments: AttachmentRecord[],
): Promise<Sent & { snapshot: SendSnapshot }> {
  const at = new Date();
  let conversationId = target.kind === "existing" ? target.conversationId : "";
  let createdConversation = false;
  if (target.kind === "direct") {
    const direct = await ensureDirect(tx, { id: crypto.randomUUID(), kind: "direct", title: null, directKey: directKey(senderId, target.otherId), at });
    conversationId = direct.conversation.id;
    createdConversation = direct.created;
    // A direct conversation starts with its first message: both see history from seq 1.
    if (createdConversation) await insertMembers(tx, conversationId, [senderId, target.otherId].map((userId) => ({ userId, role: "member" as const, joinedSeq: 1 })));
  }
  // The lock first (membership was checked before the transaction, in
  // resolveTarget); what counts is the membership as of the lock (takeSeqWithMembers).
  const taken = await takeSeqWithMembers(tx, conversationId, at);
  if (!taken) throw noSuchConversation(conversationId);
  const { conversation, members } = taken;
  const seq = conversation.lastSeq;
  const member = members.find((m) => m.userId === senderId);
  if (!member) throw noSuchConversation(conversationId);
  const replyToSeq = Number(request.replyToSeq);
  if (replyToSeq !== 0 && !(await visibleMessageAt(tx, conversationId, replyToSeq, visibleFrom(conversation, member)))) {
    throw invalidArgument([{ field: "reply_to_seq", description: "is not a message of this conversation you can see", reason: "UNKNOWN_MESSAGE" }]);
  }
  const row = messageRow({ conversationId, seq, id: crypto.randomUUID(), senderId, clientMessageId, text: request.text, replyToSeq: replyToSeq || null, attachments: attachments.length > 0 ? attachments : null, at });
  // The members as they are once the insert raised the sender's watermarks to it.
  const raised = members.map((m) => (m.userId === senderId ? { ...m, readSeq: Math.max(m.readSeq, seq), deliveredSeq: Math.max(m.deliveredSeq, seq) } : m));
  const message = presentEntry(row);
  // Enqueued in this order, on one key: members learn of the conversation before its first message.
  if (createdConversation) await deps.events.conversationChanged(tx, { conversation: presentConversation(conversation, raised), seq });
  const sent = deps.events.messageSent(tx, {
    message,
    memberIds: raised.map((m) => m.userId),
    kind: conversation.kind === "direct" ? ConversationKind.DIRECT : ConversationKind.GROUP,
    title: conversation.title ?? "",
  });
  if (!(await insertMessage(tx, row, sent))) throw new DuplicateSend();
  // What the next send into this conversation may expect, once this one committed.
  const snapshot = { kind: conversation.kind, title: conversation.title, lastSeq: seq, memberIds: raised.map((m) => m.userId) };
  // A new conversation's first message waits for the durable path, which delivers the conversation before it.
  const toDeliver = createdConversation ? undefined : { eventId: sent.eventId, message, memberIds: snapshot.memberIds };
  return { message, created: true, snapshot, ...(toDeliver === undefined ? {} : { toDeliver }) };
}
