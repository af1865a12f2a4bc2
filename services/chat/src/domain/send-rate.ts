// The per-user send limit, "COUNT/WINDOW" (CHAT_SEND_RATE, e.g. "30/10s"):
// at most COUNT sends per fixed window of WINDOW (the runtime's window limits).
export { parseWindowRate as parseSendRate, windowRatePattern as sendRatePattern, type WindowRate as SendRate } from "@aviary/runtime/window-limit";
