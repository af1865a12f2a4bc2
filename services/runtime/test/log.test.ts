import test from "ava";
import { InMemorySpanExporter } from "@opentelemetry/sdk-trace-node";
import { context, trace } from "@opentelemetry/api";
import { createLogger } from "../src/log.ts";
import { startTelemetry } from "../src/telemetry.ts";

function capture() {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger("svc", "debug", { destination: { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) } });
  return { logger, lines };
}

test("records are JSON with level name, service and time", (t) => {
  const { logger, lines } = capture();
  logger.info({ userId: "u1" }, "hello");
  const [line] = lines;
  t.is(line?.["level"], "info");
  t.is(line?.["service"], "svc");
  t.is(line?.["msg"], "hello");
  t.is(line?.["userId"], "u1");
  t.is(typeof line?.["time"], "string");
  t.false("trace_id" in (line ?? {}), "no span, no trace id");
});

test("secrets are redacted at any of the usual depths", (t) => {
  const { logger, lines } = capture();
  logger.info(
    {
      password: "hunter2",
      headers: { authorization: "Bearer abc.def.ghi", cookie: "sid=1", "set-cookie": "sid=2" },
      req: { headers: { authorization: "Bearer xyz" } },
      body: { newPassword: "p2", refresh_token: "r1", accessToken: "a1" },
      keep: "visible",
    },
    "request",
  );
  const text = JSON.stringify(lines[0]);
  for (const secret of ["hunter2", "abc.def.ghi", "sid=1", "sid=2", "Bearer xyz", "p2", "r1", "a1"]) {
    t.false(text.includes(secret), secret);
  }
  t.true(text.includes("visible"));
  t.true(text.includes("[redacted]"));
});

test("records inside an active span carry its trace and span id", async (t) => {
  const telemetry = startTelemetry({ serviceName: "svc", spanExporter: new InMemorySpanExporter() });
  t.teardown(() => telemetry.shutdown());
  const { logger, lines } = capture();
  const span = telemetry.tracer.startSpan("work");
  context.with(trace.setSpan(context.active(), span), () => logger.info("inside"));
  span.end();
  t.is(lines[0]?.["trace_id"], span.spanContext().traceId);
  t.is(lines[0]?.["span_id"], span.spanContext().spanId);
  // And across an await: the AsyncLocalStorage context manager is installed.
  await context.with(trace.setSpan(context.active(), span), async () => {
    await new Promise((r) => setTimeout(r, 5));
    logger.info("after await");
  });
  t.is(lines[1]?.["trace_id"], span.spanContext().traceId);
});
