// SendMessage: idempotent by (sender, client_message_id), numbered under the
// conversation row lock, the sender's watermarks moved to it, and the events
// written to the outbox atomically with it: most sends in one statement
// (sendAtOnce), the rest in a transaction (write). Nothing is written when
// the request is refused (every check runs before or inside that statement
// or transaction).
import type { HandlerContext } from "@connectrpc/connect";
import { ConversationKind, type Message, type SendMessageRequest } from "@aviary/gen/aviary/chat/v1/chat_pb";
import { asCaller } from "@aviary/runtime/context";
import type { Database, Tx } from "@aviary/runtime/db/database";
import { invalidArgument, notFound } from "@aviary/runtime/errors";
import { directKey } from "../domain/ids.ts";
import { noSuchConversation } from "../domain/not-found.ts";
import { presentConversation, presentEntry } from "../domain/present.ts";
import { textViolation } from "../domain/text.ts";
import { visibleFrom } from "../domain/visibility.ts";
import type { ChatEvents } from "../events/publish.ts";
import type { ChatMedia, ChatUsers } from "../peers.ts";
import type { AttachmentRecord } from "../store/schema.ts";
import { ensureDirect, insertMembers } from "../store/conversations.ts";
import { insertMessage, messageByClientId, messageRow, sendInOneStatement, sendLookup, takeSeqWithMembers, visibleMessageAt, type SendSnapshot } from "../store/entries.ts";
import type { SendLimiter } from "./limit.ts";
import { requireReachable } from "./blocks.ts";
import { checkedAttachments } from "./media.ts";

export interface SendDeps {
  database: Database;
  users: ChatUsers;
  media: ChatMedia;
  events: ChatEvents;
  limiter: SendLimiter;
  /** TEST-ONLY failpoint (CHAT_FAILPOINT, see server.ts): runs right after a send's transaction commits, before it answers. */
  afterCommit?: () => void;
}

/** A concurrent retry committed the same (sender, client_message_id) first: roll back, answer with it. */
class DuplicateSend extends Error {}

/** Where a send goes, resolved before the transaction (peer calls stay outside it). */
type Target = { kind: "existing"; conversationId: string; seen: SendSnapshot } | { kind: "direct"; otherId: string };

export async function sendMessage(deps: SendDeps, ctx: HandlerContext, senderId: string, request: SendMessageRequest): Promise<{ message: Message; created: boolean }> {
  const blank = textViolation(request.text, request.attachmentMediaIds.length > 0);
  if (blank) throw invalidArgument([blank]);
  if (request.target.case === "directUserId" && request.target.value.toLowerCase() === senderId) {
    throw invalidArgument([{ field: "direct_user_id", description: "must not be the caller", reason: "SELF" }]);
  }
  const clientMessageId = request.clientMessageId.toLowerCase();
  const conversationId = request.target.case === "conversationId" ? request.target.value.toLowerCase() : undefined;
  // One round trip for both (read-only), each acted on in its turn below.
  const lookup = await sendLookup(deps.database.db, senderId, clientMessageId, conversationId);
  const earlier = lookup.retried ? await messageByClientId(deps.database.db, senderId, clientMessageId) : undefined;
  // A retry is answered before the rate limit: it costs nothing and must not be refused.
  if (earlier) return { message: presentEntry(earlier), created: false };
  await deps.limiter.admit(senderId);
  const target = await resolveTarget(deps, ctx, senderId, request, lookup.current);
  // After the target: a conversation the sender is not in is NOT_FOUND whatever the attachments.
  const attachments = await checkedAttachments(deps.media, ctx, senderId, request.attachmentMediaIds);
  try {
    const sent = (await sendAtOnce(deps, senderId, clientMessageId, request, target, attachments)) ?? (await deps.database.db.transaction((tx) => write(deps, tx, senderId, clientMessageId, request, target, attachments)));
    deps.afterCommit?.(); // TEST-ONLY failpoint hook (unset in production): committed, not yet answered.
    return sent;
  } catch (error) {
    if (!(error instanceof DuplicateSend)) throw error;
    const original = await messageByClientId(deps.database.db, senderId, clientMessageId);
    if (!original) throw new Error("a conflicting send vanished");
    return { message: presentEntry(original), created: false };
  }
}

/**
 * The common send (to an existing conversation, not a reply) in one
 * statement without a transaction, numbered after what sendLookup saw
 * (store/entries.ts sendInOneStatement); undefined when the conversation
 * moved on since (a concurrent write of it): then write() sends it in a
 * transaction, under the lock. Replies take that path too (the replied-to
 * message is checked under the lock).
 */
async function sendAtOnce(
  deps: SendDeps,
  senderId: string,
  clientMessageId: string,
  request: SendMessageRequest,
  target: Target,
  attachments: AttachmentRecord[],
): Promise<{ message: Message; created: boolean } | undefined> {
  if (target.kind !== "existing" || request.replyToSeq !== 0n) return undefined;
  const { seen, conversationId } = target;
  const seq = seen.lastSeq + 1;
  const row = messageRow({ conversationId, seq, id: crypto.randomUUID(), senderId, clientMessageId, text: request.text, replyToSeq: null, attachments: attachments.length > 0 ? attachments : null, at: new Date() });
  const message = presentEntry(row);
  const event = { message, memberIds: seen.memberIds, kind: seen.kind === "direct" ? ConversationKind.DIRECT : ConversationKind.GROUP, title: seen.title ?? "" };
  const outcome = await sendInOneStatement(deps.database.db, row, seen.lastSeq, deps.events.messageSent(deps.database.db, event));
  if (outcome === "duplicate") throw new DuplicateSend();
  return outcome === "sent" ? { message, created: true } : undefined;
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
    const reachable = await deps.users.reachable([otherId], asCaller(ctx));
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
  if (seen.kind === "direct") await requireReachable(deps, ctx, conversationId, seen.memberIds.filter((id) => id !== senderId));
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
): Promise<{ message: Message; created: boolean }> {
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
  return { message, created: true };
}
