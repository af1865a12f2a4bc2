import type { Admin } from "kafkajs";
import type { ObservableResult } from "@opentelemetry/api";
import { eventInstruments, meterOf } from "../metrics.ts";

/** A scrape never waits longer than this for the broker; the lag is then absent from that scrape. */
const LAG_QUERY_TIMEOUT_MS = 2_000;

/**
 * `kafka_consumer_lag{group, topic, partition}` for one subscription, read
 * from the broker when Prometheus scrapes (two admin requests per topic:
 * the partitions' high watermarks and the group's committed offsets). Read
 * this way rather than from the consumer's batches, the lag is right even
 * when the consumer is stuck, rebalancing or dead — exactly when it matters —
 * and costs nothing per event. A group without a commit yet counts from the
 * partition's earliest retained offset. Returns the unregister function.
 */
export function observeConsumerLag(
  telemetry: object | undefined,
  groupId: string,
  topics: string[],
  withAdmin: <T>(use: (client: Admin) => Promise<T>) => Promise<T>,
): () => void {
  const { lag } = eventInstruments(meterOf(telemetry));
  const callback = async (result: ObservableResult) => {
    const read = withAdmin(async (admin) => {
      const committed = await admin.fetchOffsets({ groupId, topics });
      return Promise.all(
        committed.map(async ({ topic, partitions }) => {
          const ends = new Map((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, p]));
          return partitions.map(({ partition, offset }) => {
            const end = ends.get(partition);
            if (end === undefined) return undefined;
            const from = Number(offset) >= 0 ? Number(offset) : Number(end.low);
            return { topic, partition, lag: Math.max(0, Number(end.high) - from) };
          });
        }),
      );
    });
    read.catch(() => undefined); // settles later if the timeout wins
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), LAG_QUERY_TIMEOUT_MS)));
    try {
      const rows = await Promise.race([read, timeout]);
      for (const row of rows?.flat() ?? []) if (row) result.observe(row.lag, { group: groupId, topic: row.topic, partition: String(row.partition) });
    } catch {
      // The broker did not answer: no lag series this scrape (the kafka ping in /readyz says why).
    } finally {
      clearTimeout(timer);
    }
  };
  lag.addCallback(callback);
  return () => lag.removeCallback(callback);
}
