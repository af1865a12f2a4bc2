// The edit window, on a service whose window is short (CHAT_EDIT_WINDOW=1s):
// once it has passed — waited for by the message's own created_at and the
// configured window, then polled, never a guessed sleep — an edit is
// FAILED_PRECONDITION and writes nothing, while a retry of the text the
// message already has still answers.
import test from "ava";
import { Code } from "@connectrpc/connect";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { PreconditionFailureSchema } from "@aviary/gen/google/rpc/error_details_pb";
import { parseDuration } from "@aviary/runtime/config";
import { eventually } from "../../runtime/test-support/infra.ts";
import { rejection, startTestChat, type TestChat } from "./harness.ts";

const WINDOW = "1s";
const windowMs = parseDuration(WINDOW)!;
let c: TestChat;

test.before(async () => {
  c = await startTestChat({ CHAT_EDIT_WINDOW: WINDOW });
});
test.after.always(async () => {
  await c?.close();
});

test("an edit after the window is FAILED_PRECONDITION and writes nothing; the text it has still answers", async (t) => {
  const [ana, ben] = await Promise.all([c.signUp(), c.signUp()]);
  const { message } = await c.client.sendMessage({ target: { case: "directUserId", value: ben.userId }, clientMessageId: crypto.randomUUID(), text: "typo" }, ana.call);
  const sent = message!;
  const key = { conversationId: sent.conversationId, seq: sent.seq };
  // The window ends at created_at + CHAT_EDIT_WINDOW (the service's clock wrote created_at; this host's runs the same).
  const closesAt = timestampDate(sent.createdAt!).getTime() + windowMs;
  await eventually("the edit window has passed", () => Date.now() > closesAt + 50, windowMs + 10_000);

  const before = await c.counts();
  const late = await rejection(c.client.editMessage({ ...key, text: "fixed" }, ana.call));
  t.is(late.code, Code.FailedPrecondition);
  t.is(late.findDetails(PreconditionFailureSchema)[0]?.violations[0]?.type, "EDIT_WINDOW_PASSED");
  // Its own text again (a retried edit whose answer was lost): answered, nothing written.
  t.is((await c.client.editMessage({ ...key, text: "typo" }, ana.call)).message?.text, "typo");
  t.deepEqual(await c.counts(), before);
  const [shown] = (await c.client.listMessages({ conversationId: sent.conversationId }, ben.call)).messages;
  t.is(shown?.text, "typo");
  t.is(shown?.editedAt, undefined);
  // Deleting has no window.
  t.truthy((await c.client.deleteMessage(key, ana.call)).message?.deletedAt);
});
