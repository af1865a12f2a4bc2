// When to try a push again: the runtime's provider retry policy (shared with
// the auth service's code sender). The settings are PUSH_MAX_ATTEMPTS,
// PUSH_RETRY_INITIAL and PUSH_RETRY_MAX.
export { retryDelayMs, type RetryPolicy } from "@aviary/runtime/retry";
