// SetTyping's signal: ephemeral, to the other members holding a live stream,
// never stored or replayed; coalesced per (conversation, typer).
import { signalEvent } from "@aviary/runtime/realtime/events";
import type { UserStreamPublisher } from "@aviary/runtime/realtime/user-streams";
import type { LogSink } from "@aviary/runtime/bus/log-sink";
import type { Queryable } from "@aviary/runtime/db/database";
import type { TypingCoalescer } from "../domain/typing.ts";
import { conversationOfMember, currentMembers } from "../store/conversations.ts";
import { noSuchConversation } from "../domain/not-found.ts";

export interface TypingDeps {
  db: Queryable;
  streams: UserStreamPublisher;
  coalescer: TypingCoalescer;
  expiresInSeconds: number;
  logger?: LogSink;
}

export async function signalTyping(deps: TypingDeps, userId: string, conversationId: string): Promise<void> {
  const found = await conversationOfMember(deps.db, conversationId, userId);
  if (!found) throw noSuchConversation(conversationId);
  if (!deps.coalescer.admit(conversationId, userId)) return;
  const others = ((await currentMembers(deps.db, [conversationId])).get(conversationId) ?? []).map((m) => m.userId).filter((id) => id !== userId);
  try {
    await signalEvent(deps.streams, others, crypto.randomUUID(), { case: "chatTyping", value: { conversationId, userId, expiresInSeconds: deps.expiresInSeconds } }, { onlyLive: true });
  } catch (error) {
    // Typing may be lost (the next keystroke repeats it); a stream outage must not fail the call.
    deps.logger?.warn({ err: error, conversationId }, "typing signal failed");
  }
}
