// The audit service reads the auth topic (accounts, sign-ins, sessions, keys,
// roles) and the moderation topic in one consumer group. Runs of events of
// one partition are appended in one transaction (catching up on a long topic
// costs one lock and one insert per run, not per event); on any failure the
// bus hands them over one by one, and the dedupe by event id makes the
// retried ones append nothing twice.
//
// An account's deletion (AccountDeleted) is appended, then the account is
// erased from the log, in this same consumer: the auth topic is keyed by
// user, so every auth event of the account was appended before its
// deletion, and the deletion's own entry is erased with them. A redelivery
// appends nothing and finds nothing left to erase.
import type { EventBus, Subscription } from "@aviary/runtime/bus/bus";
import type { Database } from "@aviary/runtime/db/database";
import type { EventTelemetry } from "@aviary/runtime/bus/tracing";
import { authEventsTopic } from "@aviary/runtime/bus/account-deletions";
import type { EntryFields } from "../domain/chain.ts";
import { appendEntries } from "../store/entries.ts";
import { eraseAccount } from "../store/erasure.ts";
import { entryOf } from "./entries.ts";

export { authEventsTopic };

export function consumeSecurityEvents(options: {
  database: Database;
  bus: EventBus;
  topics: string[];
  groupId: string;
  telemetry?: EventTelemetry;
}): Promise<Subscription> {
  return options.bus.subscribe({
    groupId: options.groupId,
    topics: options.topics,
    ...(options.telemetry === undefined ? {} : { telemetry: options.telemetry }),
    handle: async (event) => {
      const entry = entryOf(event);
      if (entry !== undefined) await appendAndErase(options.database, [entry]);
    },
    handleBatch: async (events) => {
      await appendAndErase(
        options.database,
        events.map(entryOf).filter((entry): entry is EntryFields => entry !== undefined),
      );
    },
  });
}

/** The entry kind of AccountDeleted (events/entries.ts), whose subject is the account. */
const accountDeletedKind = "auth.account_deleted";

async function appendAndErase(database: Database, entries: readonly EntryFields[]): Promise<void> {
  await appendEntries(database, entries);
  for (const entry of entries) {
    if (entry.kind === accountDeletedKind) await eraseAccount(database, entry.subject, entry.occurredAt);
  }
}
