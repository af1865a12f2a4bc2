// The deadline interceptor on its own: which controller ends the handler's
// signal. The grpc-js listener lends its call's controller (callControllerKey)
// so the interceptor aborts that one at the deadline instead of linking a
// second controller to it; any other request gets a controller of its own
// that follows req.signal. The server-level behaviour (defaults, caps, both
// transports) is in server-interceptors.test.ts and grpc-js.test.ts.
import test from "ava";
import type { ExecutionContext } from "ava";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextValues } from "@connectrpc/connect";
import type { UnaryRequest, UnaryResponse } from "@connectrpc/connect";
import { AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { callControllerKey } from "../src/context.ts";
import { createDeadlineInterceptor } from "../src/interceptors/deadline.ts";

const method = AuthService.method.getJwks;

function request(signal: AbortSignal, lent?: AbortController, header: Record<string, string> = {}): UnaryRequest {
  const contextValues = createContextValues();
  if (lent !== undefined) contextValues.set(callControllerKey, lent);
  return {
    stream: false,
    method,
    service: AuthService,
    requestMethod: "POST",
    url: `/${AuthService.typeName}/${method.name}`,
    signal,
    header: new Headers(header),
    contextValues,
    message: create(method.input),
  };
}

/** The error a call failed with (the test fails if it succeeded). */
async function failure(t: ExecutionContext, call: Promise<unknown>): Promise<ConnectError> {
  return ConnectError.from(await t.throwsAsync(call));
}

/** A handler that waits for its signal and fails with its reason, recording the signal it got. */
function waitingHandler(seen: AbortSignal[]) {
  return async (req: { signal: AbortSignal }): Promise<UnaryResponse> => {
    seen.push(req.signal);
    await new Promise<void>((resolve) => (req.signal.aborted ? resolve() : req.signal.addEventListener("abort", () => resolve(), { once: true })));
    throw req.signal.reason;
  };
}

test("a lent controller is the one aborted at the deadline: the handler gets the transport's own signal", async (t) => {
  const lent = new AbortController();
  const seen: AbortSignal[] = [];
  const call = createDeadlineInterceptor({ defaultTimeoutMs: 20 })(waitingHandler(seen))(request(lent.signal, lent));
  const error = await failure(t, call);
  t.is(error.code, Code.DeadlineExceeded);
  t.is(seen[0], lent.signal, "no second controller");
  t.is(ConnectError.from(lent.signal.reason).code, Code.DeadlineExceeded, "the transport's controller says why");
});

test("without a lent controller the handler's signal is a new one that follows req.signal", async (t) => {
  const outer = new AbortController();
  const seen: AbortSignal[] = [];
  const call = createDeadlineInterceptor({ defaultTimeoutMs: 60_000 })(waitingHandler(seen))(request(outer.signal));
  const reason = new ConnectError("the client cancelled the call", Code.Canceled);
  outer.abort(reason);
  const error = await failure(t, call);
  t.is(error.code, Code.Canceled);
  t.not(seen[0], outer.signal);
  t.is(seen[0]?.reason, reason, "the outer reason, passed on");
});

test("a lent controller whose signal an earlier interceptor replaced is left alone", async (t) => {
  const lent = new AbortController();
  const replaced = new AbortController();
  const seen: AbortSignal[] = [];
  const error = await failure(t, createDeadlineInterceptor({ defaultTimeoutMs: 20 })(waitingHandler(seen))(request(replaced.signal, lent)));
  t.is(error.code, Code.DeadlineExceeded);
  t.not(seen[0], lent.signal);
  t.not(seen[0], replaced.signal);
  t.false(lent.signal.aborted, "not the controller of this signal: not touched");
});

test("an answer before the deadline clears the timer and leaves the lent controller as it was", async (t) => {
  const lent = new AbortController();
  const res = await createDeadlineInterceptor({ defaultTimeoutMs: 20 })(async (): Promise<UnaryResponse> => ({ stream: false, message: create(method.output), header: new Headers(), trailer: new Headers(), method, service: AuthService }))(request(lent.signal, lent));
  t.false(res.stream);
  // A timer left armed (20 ms) would fire before this later, longer one:
  // timer order, not elapsed time, makes the check.
  await new Promise((resolve) => setTimeout(resolve, 60));
  t.false(lent.signal.aborted);
});

test("a handler that fails before the deadline fails the call with its own error", async (t) => {
  const lent = new AbortController();
  const error = await failure(
    t,
    createDeadlineInterceptor({ defaultTimeoutMs: 60_000 })(async () => {
      throw new ConnectError("no such thing", Code.NotFound);
    })(request(lent.signal, lent)),
  );
  t.is(error.code, Code.NotFound);
  t.false(lent.signal.aborted);
});

test("a client deadline longer than the cap is shortened to it", async (t) => {
  const lent = new AbortController();
  const seen: AbortSignal[] = [];
  const error = await failure(t, createDeadlineInterceptor({ defaultTimeoutMs: 60_000, maxTimeoutMs: 20 })(waitingHandler(seen))(request(lent.signal, lent, { "grpc-timeout": "60S" })));
  t.is(error.code, Code.DeadlineExceeded);
});
