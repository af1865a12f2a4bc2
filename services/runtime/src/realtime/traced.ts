// The realtime publish as a span of the producer's trace: a consumer that
// publishes to users' streams (feed hints, notifications, chat messages) does
// so inside its CONSUMER span, so the publish joins the event's trace.
import { inSpan, type EventTelemetry } from "../bus/tracing.ts";
import type { UserStreamPublisher } from "./user-streams.ts";

const PUBLISHING = new Set<PropertyKey>(["publish", "publishMany", "signal"] satisfies Array<keyof UserStreamPublisher>);

/** `streams` with `publish`, `publishMany` and `signal` each under an INTERNAL span `realtime <method>`. */
export function tracedUserStreams<T extends UserStreamPublisher>(streams: T, telemetry: EventTelemetry): T {
  return new Proxy(streams, {
    get(target, property) {
      const value: unknown = Reflect.get(target, property, target);
      if (typeof value !== "function") return value;
      const method = value as (...args: unknown[]) => Promise<unknown>;
      if (!PUBLISHING.has(property)) return method.bind(target);
      return (...args: unknown[]) => inSpan(telemetry, `realtime ${String(property)}`, {}, () => method.apply(target, args));
    },
  });
}
