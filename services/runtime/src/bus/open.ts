import type { EventBus } from "./bus.ts";
import type { LogSink } from "./log-sink.ts";

export interface OpenEventBusOptions {
  /** Kafka bootstrap brokers; without them, the in-process bus. */
  brokers?: string[];
  clientId: string;
  logger?: LogSink;
}

/** Kafka when brokers are configured, else the in-memory bus with the same semantics. */
export async function openEventBus(options: OpenEventBusOptions): Promise<EventBus> {
  if (options.brokers && options.brokers.length > 0) {
    const { openKafkaBus } = await import("./kafka.ts");
    return openKafkaBus({
      brokers: options.brokers,
      clientId: options.clientId,
      ...(options.logger ? { logger: options.logger } : {}),
    });
  }
  const { MemoryEventBus } = await import("./memory.ts");
  return new MemoryEventBus();
}
