// Rejects requests that break the `aviary.validate.v1` field rules before the
// handler runs, so nothing is written for a bad request. Streaming requests are
// checked message by message as the handler reads them.
import type { Interceptor } from "@connectrpc/connect";
import { assertValid } from "../validation.ts";
import { mapStream } from "./stream.ts";

export function createValidationInterceptor(): Interceptor {
  return (next) => async (req) => {
    if (!req.stream) {
      assertValid(req.method.input, req.message);
      return next(req);
    }
    const schema = req.method.input;
    return next({
      ...req,
      message: mapStream(req.message, (m) => {
        assertValid(schema, m);
        return m;
      }),
    });
  };
}
