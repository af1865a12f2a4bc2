/**
 * Starts new consumer groups at the present: commits the topics' current
 * high watermarks for each group before its consumer first joins. A suite's
 * groups are new and would otherwise read the shared topics from the
 * beginning, working through every earlier suite's events before reaching
 * their own (measured: about 85 s for ~2,500 events on a loaded 2-core
 * machine). Only for suites whose users are all new, so no earlier event
 * concerns them; events published after this call are still consumed.
 */
import { Kafka, logLevel } from "kafkajs";

export interface GroupTopics {
  groupId: string;
  topics: string[];
}

export async function startGroupsAtPresent(brokers: string[], groups: GroupTopics[]): Promise<void> {
  const admin = new Kafka({ clientId: "test-consumer-groups", brokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    for (const topic of new Set(groups.flatMap((g) => g.topics))) {
      // A topic not created yet has no past to skip.
      if (!(await admin.listTopics()).includes(topic)) continue;
      const partitions = (await offsetsOnceReady(() => admin.fetchTopicOffsets(topic))).map((o) => ({ partition: o.partition, offset: o.high }));
      for (const group of groups) if (group.topics.includes(topic)) await admin.setOffsets({ groupId: group.groupId, topic, partitions });
    }
  } finally {
    await admin.disconnect();
  }
}

/**
 * A topic another suite is creating right now is listed before its partitions
 * have leaders (UNKNOWN_TOPIC_OR_PARTITION, LEADER_NOT_AVAILABLE: retriable);
 * ask again until it is ready, within a bound that only a broken broker hits.
 */
async function offsetsOnceReady<T>(fetch: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      return await fetch();
    } catch (error) {
      const retriable = (error as { retriable?: unknown }).retriable === true;
      if (!retriable || Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}
