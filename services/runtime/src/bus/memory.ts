import { deadLetterTopic, type DeliveredEvent, type EventBus, type EventRecord, type SubscribeOptions, type Subscription } from "./bus.ts";
import { deliverRun, MAX_BATCH, retryPolicy, zeroEventCounters } from "./delivery.ts";
import { Doorbell } from "./doorbell.ts";
import { tracedSubscriber } from "./tracing.ts";

/**
 * The in-process event bus for `make dev` and unit tests, with the Kafka
 * adapter's semantics: topics of 3 partitions chosen by a stable hash of the
 * key (so per-key order holds), committed offsets per consumer group, members
 * of a group sharing the partitions, retries with backoff and a dead-letter
 * topic (the same `deliver` code as Kafka), at-least-once, `fromBeginning`.
 * Nothing is persisted: a restart forgets every topic and offset.
 */

export const MEMORY_PARTITIONS = 3;

interface Stored extends EventRecord {
  partition: number;
  offset: number;
}

/** "topic\0partition", a map key for one partition. */
type PartitionId = string;

interface Member {
  readonly topics: readonly string[];
  assignment: PartitionId[];
  /** Index into `assignment` where the next search for work starts (fairness). */
  cursor: number;
  ring(): void;
}

interface Group {
  readonly committed: Map<PartitionId, number>;
  /** Partitions whose event a member is handling right now. */
  readonly busy: Set<PartitionId>;
  readonly members: Member[];
}

export class MemoryEventBus implements EventBus {
  readonly kind = "memory" as const;
  readonly #topics = new Map<string, Stored[][]>();
  readonly #groups = new Map<string, Group>();
  readonly #subscriptions = new Set<Subscription>();

  async publish(records: EventRecord[]): Promise<void> {
    const touched = new Set<string>();
    for (const record of records) {
      const log = this.#topic(record.topic);
      const partition = partitionFor(record.key);
      const entries = log[partition]!;
      entries.push({
        topic: record.topic,
        key: record.key,
        // A copy (Buffer#slice would share memory): a caller reusing its
        // buffers must not rewrite history.
        value: new Uint8Array(record.value),
        headers: { ...record.headers },
        partition,
        offset: entries.length,
      });
      touched.add(record.topic);
    }
    for (const group of this.#groups.values()) {
      for (const member of group.members) if (member.topics.some((t) => touched.has(t))) member.ring();
    }
  }

  async subscribe(subscriber: SubscribeOptions): Promise<Subscription> {
    const options = tracedSubscriber(subscriber, "memory");
    zeroEventCounters(options);
    const policy = retryPolicy(options);
    const group = this.#group(options.groupId);
    const fromBeginning = options.fromBeginning ?? true;
    for (const topic of options.topics) {
      this.#topic(deadLetterTopic(topic));
      const log = this.#topic(topic);
      log.forEach((entries, partition) => {
        const id = partitionId(topic, partition);
        // Like Kafka: a group's committed offset wins; fromBeginning only
        // decides where a group without one starts.
        if (!group.committed.has(id)) group.committed.set(id, fromBeginning ? 0 : entries.length);
      });
    }

    const doorbell = new Doorbell();
    const member: Member = { topics: [...options.topics], assignment: [], cursor: 0, ring: () => doorbell.ring() };
    let stopping = false;
    const stopped = new Doorbell();

    const loop = async (): Promise<void> => {
      while (!stopping) {
        const work = this.#nextWork(group, member);
        if (!work) {
          await doorbell.wait();
          continue;
        }
        group.busy.add(work.id);
        try {
          const run = work.records.map(({ offset, ...record }) => ({ ...record, offset: String(offset) }));
          // Stopped mid-retry: the rest keeps its offsets, the next member
          // of the group gets those events again (at-least-once).
          await deliverRun(run, options.groupId, options, policy, {
            sleep: async (ms) => {
              if (!stopping) await stopped.wait(ms);
              return !stopping;
            },
            deadLetter: (dead) => this.publish([dead]),
            done: async (event) => void group.committed.set(work.id, Number(event.offset) + 1),
          });
        } catch {
          // Only reachable if dead-lettering itself failed; retry the event.
        } finally {
          group.busy.delete(work.id);
          for (const other of group.members) other.ring();
        }
      }
    };

    group.members.push(member);
    rebalance(group);
    // As with Kafka, several loops may work for one member: `busy` keeps each
    // partition to one loop at a time, so per-key order holds.
    const running = Promise.all(Array.from({ length: Math.max(1, options.partitionsConcurrently ?? 1) }, loop)).then(() => undefined);

    const subscription: Subscription = {
      stop: async () => {
        if (stopping) return running;
        stopping = true;
        stopped.ring();
        doorbell.ring();
        await running;
        group.members.splice(group.members.indexOf(member), 1);
        rebalance(group);
        this.#subscriptions.delete(subscription);
      },
    };
    this.#subscriptions.add(subscription);
    return subscription;
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    await Promise.all([...this.#subscriptions].map((s) => s.stop()));
  }

  /** The next events `member` may handle: an assigned, idle partition's uncommitted ones (up to MAX_BATCH). */
  #nextWork(group: Group, member: Member): { id: PartitionId; records: Stored[] } | null {
    const count = member.assignment.length;
    for (let i = 0; i < count; i++) {
      const index = (member.cursor + i) % count;
      const id = member.assignment[index]!;
      if (group.busy.has(id)) continue;
      const [topic, partition] = parsePartitionId(id);
      const from = group.committed.get(id) ?? 0;
      const records = this.#topic(topic)[partition]!.slice(from, from + MAX_BATCH);
      if (records.length > 0) {
        member.cursor = index + 1;
        return { id, records };
      }
    }
    return null;
  }

  #topic(name: string): Stored[][] {
    let log = this.#topics.get(name);
    if (!log) {
      log = Array.from({ length: MEMORY_PARTITIONS }, () => []);
      this.#topics.set(name, log);
    }
    return log;
  }

  #group(id: string): Group {
    let group = this.#groups.get(id);
    if (!group) {
      group = { committed: new Map(), busy: new Set(), members: [] };
      this.#groups.set(id, group);
    }
    return group;
  }
}

/**
 * Spreads each topic's partitions over the members subscribed to it, in join
 * order (Kafka's round-robin assignor, in effect). A partition that moves
 * while its event is in flight stays busy until that delivery ends, so the
 * new owner never handles the same offset concurrently.
 */
function rebalance(group: Group): void {
  for (const member of group.members) member.assignment = [];
  const topics = new Set(group.members.flatMap((m) => m.topics));
  for (const topic of topics) {
    const subscribed = group.members.filter((m) => m.topics.includes(topic));
    for (let partition = 0; partition < MEMORY_PARTITIONS; partition++) {
      subscribed[partition % subscribed.length]!.assignment.push(partitionId(topic, partition));
    }
  }
  for (const member of group.members) {
    member.cursor = 0;
    member.ring();
  }
}

/** FNV-1a over the UTF-8 key: stable across processes and releases. */
export function partitionFor(key: string): number {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(key)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash % MEMORY_PARTITIONS;
}

function partitionId(topic: string, partition: number): PartitionId {
  return `${topic}\u0000${partition}`;
}

function parsePartitionId(id: PartitionId): [string, number] {
  const at = id.lastIndexOf("\u0000");
  return [id.slice(0, at), Number(id.slice(at + 1))];
}
