// The request to deliver a one-time code: an outbox event in the caller's
// transaction, on the auth service's own delivery topic (never the public
// auth topic other services read). The sender role (delivery/worker.ts)
// picks it up, so an RPC never waits for a mail server or an SMS gateway.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Tx } from "@aviary/runtime/db/database";
import { enqueueEvent } from "@aviary/runtime/outbox/enqueue";
import { CodeChannel, CodeDeliveryRequestedSchema } from "@aviary/gen/aviary/events/v1/auth_events_pb";
import { outboxEvents } from "../store/schema.ts";
import { identityKey, type Identity } from "../domain/identity.ts";
import type { CodePurpose } from "../domain/codes.ts";
import type { Sealer } from "../domain/sealing.ts";

/** The default delivery topic (AUTH_DELIVERY_TOPIC). */
export const codeDeliveriesTopic = "aviary.auth.code-deliveries";

export interface CodeDelivery {
  to: Identity;
  purpose: CodePurpose;
  locale: string;
  code: string;
  at: Date;
  ttlSeconds: number;
}

export function requestCodeDelivery(tx: Tx, options: { topic: string; sealer: Sealer }, delivery: CodeDelivery): Promise<void> {
  return enqueueEvent(tx, { outboxEvents }, {
    topic: options.topic,
    // Per recipient: a newer code for the same address is sent after the older one.
    key: identityKey(delivery.to),
    schema: CodeDeliveryRequestedSchema,
    message: create(CodeDeliveryRequestedSchema, {
      channel: delivery.to.kind === "email" ? CodeChannel.EMAIL : CodeChannel.SMS,
      recipient: delivery.to.value,
      purpose: delivery.purpose,
      locale: delivery.locale,
      sealedCode: options.sealer.seal("code-delivery", new TextEncoder().encode(delivery.code)),
      requestedAt: timestampFromDate(delivery.at),
      expiresAt: timestampFromDate(new Date(delivery.at.getTime() + delivery.ttlSeconds * 1000)),
    }),
  });
}
