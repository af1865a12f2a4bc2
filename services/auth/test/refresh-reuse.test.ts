// The refresh reuse window (AUTH_REFRESH_REUSE_WINDOW): one client racing
// itself with one refresh token gets one successor, the session survives;
// the spent token presented after the window, or after its successor was
// used, is a replay and revokes the session. The service's clock is a
// variable here, so "after the window" is a step of it, never a wait.
import test from "ava";
import { Code } from "@connectrpc/connect";
import { as, password, rejection, startTestAuth, uniqueEmail, uniqueIp, type TestAuth } from "./harness.ts";

const WINDOW_MS = 5_000;
let clock = Date.now();
let auth: TestAuth;
test.before(async () => {
  auth = await startTestAuth({ AUTH_REFRESH_REUSE_WINDOW: `${WINDOW_MS}ms` }, { clock: () => new Date(clock) });
});
test.after.always(async () => {
  await auth?.close();
});

async function signIn(label: string) {
  const email = uniqueEmail(label);
  await auth.client.register({ identity: { case: "email", value: email }, password });
  const response = await auth.client.login({ identity: { case: "email", value: email }, password, deviceName: "phone" }, as({ ip: uniqueIp() }));
  return { sessionId: response.sessionId, refresh: response.tokens?.refreshToken ?? "" };
}

async function revokedReason(sessionId: string): Promise<string | null> {
  const rows = await auth.query<{ revoked_reason: string | null }>("select revoked_reason from auth.sessions where id = $1", [sessionId]);
  return rows[0]?.revoked_reason ?? null;
}

test.serial("five parallel refreshes with one token all get the same successor, and the session survives", async (t) => {
  const session = await signIn("parallel");
  const answers = await Promise.all(Array.from({ length: 5 }, () => auth.client.refresh({ refreshToken: session.refresh })));
  const successors = new Set(answers.map((a) => a.tokens?.refreshToken));
  t.is(successors.size, 1, "one successor for all of them");
  const [successor] = [...successors];
  t.truthy(successor);
  t.not(successor, session.refresh);
  for (const answer of answers) t.is((await auth.client.getMe({}, as({ token: answer.tokens?.accessToken ?? "" }))).sessionId, session.sessionId);
  t.is(await revokedReason(session.sessionId), null, "not revoked");
  const rows = await auth.query<{ n: string }>("select count(*) as n from auth.refresh_tokens where session_id = $1", [session.sessionId]);
  t.is(Number(rows[0]?.n), 2, "the first token and one successor, no more");
  // The successor rotates on as usual.
  t.truthy((await auth.client.refresh({ refreshToken: successor! })).tokens?.refreshToken);
});

test.serial("no usable token is stored: the successor is kept sealed, not in plaintext", async (t) => {
  const session = await signIn("sealed");
  const successor = (await auth.client.refresh({ refreshToken: session.refresh })).tokens?.refreshToken ?? "";
  const rows = await auth.query<{ sealed: Buffer | null }>("select successor_sealed as sealed from auth.refresh_tokens where session_id = $1 and spent_at is not null", [session.sessionId]);
  t.is(rows.length, 1);
  t.truthy(rows[0]!.sealed);
  t.false(rows[0]!.sealed!.toString("latin1").includes(successor), "the token is not in the row");
  t.false(rows[0]!.sealed!.toString("base64").includes(successor), "nor in its base64");
});

test.serial("the spent token again after the window is reuse: the session is revoked", async (t) => {
  const session = await signIn("late");
  const first = await auth.client.refresh({ refreshToken: session.refresh });
  clock += WINDOW_MS - 1;
  t.is((await auth.client.refresh({ refreshToken: session.refresh })).tokens?.refreshToken, first.tokens?.refreshToken, "still inside the window");
  clock += 1;
  const late = await rejection(auth.client.refresh({ refreshToken: session.refresh }));
  t.is(late.code, Code.Unauthenticated);
  t.regex(late.rawMessage, /already used/);
  t.is(await revokedReason(session.sessionId), "refresh_token_reuse");
  t.is((await rejection(auth.client.refresh({ refreshToken: first.tokens?.refreshToken ?? "" }))).code, Code.Unauthenticated, "the successor died with the family");
  t.is((await rejection(auth.client.getMe({}, as({ token: first.tokens?.accessToken ?? "" })))).code, Code.Unauthenticated);
});

test.serial("the spent token after its successor was used is reuse, even inside the window", async (t) => {
  const session = await signIn("after-successor");
  const first = await auth.client.refresh({ refreshToken: session.refresh });
  const second = await auth.client.refresh({ refreshToken: first.tokens?.refreshToken ?? "" });
  const replay = await rejection(auth.client.refresh({ refreshToken: session.refresh }));
  t.is(replay.code, Code.Unauthenticated);
  t.is(await revokedReason(session.sessionId), "refresh_token_reuse");
  t.is((await rejection(auth.client.refresh({ refreshToken: second.tokens?.refreshToken ?? "" }))).code, Code.Unauthenticated);
});

test.serial("with the window off (0s), a racer that arrived before the spending is still reuse", async (t) => {
  // The racer's clock reading precedes the spending (it arrived first, then
  // waited for the row lock): its elapsed time is negative, which must count
  // as 0, not as "inside a window of 0". Found by the suite under a CPU hog.
  let strictClock = Date.now();
  const strict = await startTestAuth({ AUTH_REFRESH_REUSE_WINDOW: "0s" }, { clock: () => new Date(strictClock) });
  try {
    const email = uniqueEmail("strict-racer");
    await strict.client.register({ identity: { case: "email", value: email }, password });
    const login = await strict.client.login({ identity: { case: "email", value: email }, password, deviceName: "d" }, as({ ip: uniqueIp() }));
    const token = login.tokens?.refreshToken ?? "";
    await strict.client.refresh({ refreshToken: token });
    strictClock -= 50;
    t.is((await rejection(strict.client.refresh({ refreshToken: token }))).code, Code.Unauthenticated);
    const rows = await strict.query<{ revoked_reason: string | null }>("select revoked_reason from auth.sessions where id = $1", [login.sessionId]);
    t.is(rows[0]?.revoked_reason, "refresh_token_reuse");
  } finally {
    await strict.close();
  }
});

test.serial("with the window off (0s) any reuse revokes at once", async (t) => {
  const strict = await startTestAuth({ AUTH_REFRESH_REUSE_WINDOW: "0s" });
  try {
    const email = uniqueEmail("strict");
    await strict.client.register({ identity: { case: "email", value: email }, password });
    const login = await strict.client.login({ identity: { case: "email", value: email }, password, deviceName: "d" }, as({ ip: uniqueIp() }));
    const token = login.tokens?.refreshToken ?? "";
    const answers = await Promise.allSettled([strict.client.refresh({ refreshToken: token }), strict.client.refresh({ refreshToken: token })]);
    t.is(answers.filter((a) => a.status === "fulfilled").length, 1, "one wins, the other is reuse");
    const rows = await strict.query<{ revoked_reason: string | null }>("select revoked_reason from auth.sessions where id = $1", [login.sessionId]);
    t.is(rows[0]?.revoked_reason, "refresh_token_reuse");
  } finally {
    await strict.close();
  }
});
