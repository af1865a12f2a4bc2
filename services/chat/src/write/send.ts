// SendMessage: idempotent by (sender, client_message_id), numbered under the
// conversation row lock, the sender's watermarks moved to it, and the events
// written to the outbox in the same transaction. Nothing is written when the
// request is refused (every check runs before or inside the transaction).
import type { HandlerContext } from "@connectrpc/connect";
import { ConversationKind, type Message, type SendMessageRequest } from "@aviary/gen/aviary/chat/v1/chat_pb";
import { asCaller } from "@aviary/runtime/context";
import type { Database, Tx } from "@aviary/runtime/db/database";
import { failedPrecondition, invalidArgument, notFound } from "@aviary/runtime/errors";
import { directKey } from "../domain/ids.ts";
import { noSuchConversation } from "../domain/not-found.ts";
import { presentConversation, presentEntry } from "../domain/present.ts";
import type { ChatEvents } from "../events/publish.ts";
import type { ChatUsers } from "../peers.ts";
import { conversationOfMember, currentMembers, ensureDirect, insertMembers, raiseWatermarks, type ConversationRow } from "../store/conversations.ts";
import { insertMessage, messageByClientId, nextSeq, visibleMessageAt } from "../store/entries.ts";
import type { SendLimiter } from "./limit.ts";

export interface SendDeps {
  database: Database;
  users: ChatUsers;
  events: ChatEvents;
  limiter: SendLimiter;
  /** TEST-ONLY failpoint (CHAT_FAILPOINT, see server.ts): runs right after a send's transaction commits, before it answers. */
  afterCommit?: () => void;
}

/** A concurrent retry committed the same (sender, client_message_id) first: roll back, answer with it. */
class DuplicateSend extends Error {}

/** Where a send goes, resolved before the transaction (peer calls stay outside it). */
type Target = { kind: "existing"; conversationId: string } | { kind: "direct"; otherId: string };

export async function sendMessage(deps: SendDeps, ctx: HandlerContext, senderId: string, request: SendMessageRequest): Promise<{ message: Message; created: boolean }> {
  if (request.text.trim() === "") throw invalidArgument([{ field: "text", description: "must contain more than whitespace", reason: "BLANK" }]);
  if (request.target.case === "directUserId" && request.target.value.toLowerCase() === senderId) {
    throw invalidArgument([{ field: "direct_user_id", description: "must not be the caller", reason: "SELF" }]);
  }
  const clientMessageId = request.clientMessageId.toLowerCase();
  const earlier = await messageByClientId(deps.database.db, senderId, clientMessageId);
  // A retry is answered before the rate limit: it costs nothing and must not be refused.
  if (earlier) return { message: presentEntry(earlier), created: false };
  await deps.limiter.admit(senderId);
  const target = await resolveTarget(deps, ctx, senderId, request);
  try {
    const sent = await deps.database.db.transaction((tx) => write(deps, tx, senderId, clientMessageId, request, target));
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
 * Checks the target and, for direct messages, blocks: the user service
 * leaves out users who blocked the caller or whom the caller blocked.
 * - To a user (direct_user_id): NOT_FOUND, like a user who does not exist
 *   (a blocker does not exist for the blocked, as in the user service).
 * - In an existing direct conversation: FAILED_PRECONDITION (the caller
 *   knows the conversation; it just cannot be written to while blocked).
 */
async function resolveTarget(deps: SendDeps, ctx: HandlerContext, senderId: string, request: SendMessageRequest): Promise<Target> {
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
  const found = await conversationOfMember(deps.database.db, conversationId, senderId);
  if (!found) throw noSuchConversation(conversationId);
  if (found.conversation.kind === "direct") {
    const members = (await currentMembers(deps.database.db, [conversationId])).get(conversationId) ?? [];
    const others = members.map((m) => m.userId).filter((id) => id !== senderId);
    const reachable = await deps.users.reachable(others, asCaller(ctx));
    if (others.some((id) => !reachable.has(id))) {
      throw failedPrecondition("you cannot message this user", [{ type: "BLOCKED", subject: `conversations/${conversationId}`, description: "a block stands between the two members" }]);
    }
  }
  return { kind: "existing", conversationId };
}

async function write(deps: SendDeps, tx: Tx, senderId: string, clientMessageId: string, request: SendMessageRequest, target: Target): Promise<{ message: Message; created: boolean }> {
  const at = new Date();
  let conversation: ConversationRow;
  let createdConversation = false;
  if (target.kind === "direct") {
    const direct = await ensureDirect(tx, { id: crypto.randomUUID(), kind: "direct", title: null, directKey: directKey(senderId, target.otherId), at });
    conversation = direct.conversation;
    createdConversation = direct.created;
    // A direct conversation starts with its first message: both see history from seq 1.
    if (createdConversation) await insertMembers(tx, conversation.id, [senderId, target.otherId].map((userId) => ({ userId, role: "member" as const, joinedSeq: 1 })));
  } else {
    const found = await conversationOfMember(tx, target.conversationId, senderId);
    if (!found) throw noSuchConversation(target.conversationId);
    conversation = found.conversation;
  }
  const seq = await nextSeq(tx, conversation.id, at);
  // Re-read under the lock: membership is only changed under it too.
  const member = await conversationOfMember(tx, conversation.id, senderId);
  if (!member) throw noSuchConversation(conversation.id);
  const replyToSeq = Number(request.replyToSeq);
  if (replyToSeq !== 0 && !(await visibleMessageAt(tx, conversation.id, replyToSeq, member.member.joinedSeq))) {
    throw invalidArgument([{ field: "reply_to_seq", description: "is not a message of this conversation you can see", reason: "UNKNOWN_MESSAGE" }]);
  }
  const row = await insertMessage(tx, { conversationId: conversation.id, seq, id: crypto.randomUUID(), senderId, clientMessageId, text: request.text, replyToSeq: replyToSeq || null, at });
  if (!row) throw new DuplicateSend();
  await raiseWatermarks(tx, conversation.id, senderId, seq, seq);

  const members = (await currentMembers(tx, [conversation.id])).get(conversation.id) ?? [];
  const current = { ...conversation, lastSeq: seq, lastActivityAt: at };
  const message = presentEntry(row);
  // Enqueued in this order, on one key: members learn of the conversation before its first message.
  if (createdConversation) await deps.events.conversationChanged(tx, { conversation: presentConversation(current, members), seq });
  await deps.events.messageSent(tx, {
    message,
    memberIds: members.map((m) => m.userId),
    kind: conversation.kind === "direct" ? ConversationKind.DIRECT : ConversationKind.GROUP,
    title: conversation.title ?? "",
  });
  return { message, created: true };
}
