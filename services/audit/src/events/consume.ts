// The audit service reads the auth topic (accounts, sign-ins, sessions, keys,
// roles) and the moderation topic in one consumer group. Runs of events of
// one partition are appended in one transaction (catching up on a long topic
// costs one lock and one insert per run, not per event); on any failure the
// bus hands them over one by one, and the dedupe by event id makes the
// retried ones append nothing twice.
import type { EventBus, Subscription } from "@aviary/runtime/bus/bus";
import type { Database } from "@aviary/runtime/db/database";
import type { EventTelemetry } from "@aviary/runtime/bus/tracing";
import { authEventsTopic } from "@aviary/runtime/bus/account-deletions";
import type { EntryFields } from "../domain/chain.ts";
import { appendEntries } from "../store/entries.ts";
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
      if (entry !== undefined) await appendEntries(options.database, [entry]);
    },
    handleBatch: async (events) => {
      await appendEntries(
        options.database,
        events.map(entryOf).filter((entry): entry is EntryFields => entry !== undefined),
      );
    },
  });
}
