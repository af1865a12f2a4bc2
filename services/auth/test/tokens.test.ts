// Access and refresh tokens: rotation, reuse detection, revocation, password
// changes, signing-key rotation, and forged tokens — against the real service.
import test from "ava";
import { Code } from "@connectrpc/connect";
import { decodeProtectedHeader, jwtVerify, createLocalJWKSet, type JWK } from "jose";
import { as, password, rejection, startTestAuth, uniqueEmail, uniqueIp, type TestAuth } from "./harness.ts";
import { tokenForgeries } from "../../runtime/test-support/token-forgeries.ts";

let auth: TestAuth;
test.before(async () => {
  auth = await startTestAuth();
});
test.after.always(async () => {
  await auth?.close();
});

async function account(label: string) {
  const email = uniqueEmail(label);
  const registered = await auth.client.register({ identity: { case: "email", value: email }, password });
  const login = async (deviceName = "device") => {
    const response = await auth.client.login({ identity: { case: "email", value: email }, password, deviceName }, as({ ip: uniqueIp() }));
    return { sessionId: response.sessionId, access: response.tokens?.accessToken ?? "", refresh: response.tokens?.refreshToken ?? "" };
  };
  return { email, userId: registered.userId, login };
}

test("the access token is an ES256 JWT with kid, iss, aud, sub, sid, jti, iat, nbf and exp, verifiable with the published JWKS", async (t) => {
  const user = await account("claims");
  const session = await user.login();
  const header = decodeProtectedHeader(session.access);
  t.is(header.alg, "ES256");
  t.is(header.typ, "at+jwt");
  const jwks = await auth.client.getJwks({});
  t.true(jwks.keys.some((key) => key.kid === header.kid));
  const { payload } = await jwtVerify(session.access, createLocalJWKSet({ keys: jwks.keys.map((k) => ({ ...k }) as JWK) }), { issuer: "aviary-auth", audience: "aviary" });
  t.is(payload.sub, user.userId);
  t.is(payload["sid"], session.sessionId);
  t.truthy(payload.jti);
  t.is((payload.exp ?? 0) - (payload.iat ?? 0), 900);
  t.is(payload.nbf, payload.iat);

  // The same key set is served as a plain document for JWKS-URL verifiers.
  const document = (await (await fetch(`${auth.service.url}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string }> };
  t.deepEqual(document.keys.map((k) => k.kid), jwks.keys.map((k) => k.kid));
  const discovery = await auth.client.getOpenIdConfiguration({});
  t.is(discovery.issuer, "aviary-auth");
  t.regex(discovery.jwksUri, /\/\.well-known\/jwks\.json$/);
});

test("refresh rotates the refresh token; the old one cannot be used twice", async (t) => {
  const user = await account("rotate");
  const session = await user.login();
  const refreshed = await auth.client.refresh({ refreshToken: session.refresh });
  const next = refreshed.tokens?.refreshToken ?? "";
  t.not(next, session.refresh);
  const me = await auth.client.getMe({}, as({ token: refreshed.tokens?.accessToken ?? "" }));
  t.is(me.sessionId, session.sessionId, "the new access token belongs to the same session");
  const twice = await auth.client.refresh({ refreshToken: next });
  t.truthy(twice.tokens?.accessToken);
});

test("reusing a spent refresh token revokes the whole family, and its access tokens stop working", async (t) => {
  const user = await account("reuse");
  const session = await user.login();
  const other = await user.login("other device");
  const rotated = await auth.client.refresh({ refreshToken: session.refresh });
  // The holder moves on with the successor; the spent token coming back now is a replay, even inside the reuse window.
  const onward = await auth.client.refresh({ refreshToken: rotated.tokens?.refreshToken ?? "" });
  const stolenReplay = await rejection(auth.client.refresh({ refreshToken: session.refresh }));
  t.is(stolenReplay.code, Code.Unauthenticated);
  t.regex(stolenReplay.rawMessage, /already used/);

  // The legitimate holder's newest token belongs to the revoked family too.
  const legit = await rejection(auth.client.refresh({ refreshToken: onward.tokens?.refreshToken ?? "" }));
  t.is(legit.code, Code.Unauthenticated);
  for (const token of [session.access, rotated.tokens?.accessToken ?? "", onward.tokens?.accessToken ?? ""]) {
    t.is((await rejection(auth.client.getMe({}, as({ token })))).code, Code.Unauthenticated);
  }
  // Other sessions of the account are untouched.
  t.is((await auth.client.getMe({}, as({ token: other.access }))).sessionId, other.sessionId);
  const rows = await auth.query<{ revoked_reason: string }>("select revoked_reason from auth.sessions where id = $1", [session.sessionId]);
  t.is(rows[0]?.revoked_reason, "refresh_token_reuse");
});

test("logout ends the session at once: access token denied, refresh token dead", async (t) => {
  const user = await account("logout");
  const session = await user.login();
  await auth.client.logout({}, as({ token: session.access }));
  t.is((await rejection(auth.client.getMe({}, as({ token: session.access })))).code, Code.Unauthenticated);
  t.is((await rejection(auth.client.refresh({ refreshToken: session.refresh }))).code, Code.Unauthenticated);
});

test("revoking another device's session denies its access token within seconds", async (t) => {
  const user = await account("revoke");
  const phone = await user.login("phone");
  const laptop = await user.login("laptop");
  await auth.client.revokeSession({ sessionId: phone.sessionId }, as({ token: laptop.access }));
  const denied = await rejection(auth.client.getMe({}, as({ token: phone.access })));
  t.is(denied.code, Code.Unauthenticated);
  // Revoking again is idempotent.
  await auth.client.revokeSession({ sessionId: phone.sessionId }, as({ token: laptop.access }));
  const listed = await auth.client.listSessions({}, as({ token: laptop.access }));
  t.deepEqual(listed.sessions.map((s) => s.deviceName), ["laptop"]);
});

test("changing the password ends every other session and keeps this one", async (t) => {
  const user = await account("change");
  const here = await user.login("here");
  const elsewhere = await user.login("elsewhere");
  const wrong = await rejection(auth.client.changePassword({ currentPassword: "not-my-password", newPassword: "a-new-long-passphrase" }, as({ token: here.access })));
  t.is(wrong.code, Code.InvalidArgument);
  await auth.client.changePassword({ currentPassword: password, newPassword: "a-new-long-passphrase" }, as({ token: here.access }));
  t.is((await rejection(auth.client.getMe({}, as({ token: elsewhere.access })))).code, Code.Unauthenticated);
  t.is((await auth.client.getMe({}, as({ token: here.access }))).sessionId, here.sessionId);
  t.is((await rejection(auth.client.login({ identity: { case: "email", value: user.email }, password }, as({ ip: uniqueIp() })))).code, Code.Unauthenticated);
  const fresh = await auth.client.login({ identity: { case: "email", value: user.email }, password: "a-new-long-passphrase" }, as({ ip: uniqueIp() }));
  t.truthy(fresh.sessionId);
});

test("a password reset by code ends every session", async (t) => {
  const user = await account("reset");
  const session = await user.login();
  await auth.client.requestPasswordReset({ identity: { case: "email", value: user.email } });
  const code = await auth.codeFor(user.email, "password_reset");
  const weak = await rejection(auth.client.resetPassword({ identity: { case: "email", value: user.email }, code, newPassword: "password123" }));
  t.is(weak.code, Code.InvalidArgument, "a weak password is refused before the code is spent");
  await auth.client.resetPassword({ identity: { case: "email", value: user.email }, code, newPassword: "reset-to-something-long" });
  t.is((await rejection(auth.client.getMe({}, as({ token: session.access })))).code, Code.Unauthenticated);
  t.is((await rejection(auth.client.refresh({ refreshToken: session.refresh }))).code, Code.Unauthenticated);
  const again = await rejection(auth.client.resetPassword({ identity: { case: "email", value: user.email }, code, newPassword: "yet-another-long-one" }));
  t.is(again.code, Code.InvalidArgument, "the code was spent");
  await auth.client.login({ identity: { case: "email", value: user.email }, password: "reset-to-something-long" }, as({ ip: uniqueIp() }));
});

test.serial("rotating the signing key keeps unexpired tokens valid and signs new ones with the new kid", async (t) => {
  const user = await account("keys");
  const before = await user.login();
  const oldKid = decodeProtectedHeader(before.access).kid;
  const newKid = await auth.service.rotateSigningKey();
  t.not(newKid, oldKid);
  const jwks = await auth.client.getJwks({});
  t.deepEqual(new Set(jwks.keys.map((k) => k.kid)), new Set([oldKid, newKid]), "old key stays published");
  t.is((await auth.client.getMe({}, as({ token: before.access }))).userId, user.userId, "token signed by the retired key still works");
  const after = await user.login();
  t.is(decodeProtectedHeader(after.access).kid, newKid);
});

// --- forged tokens -------------------------------------------------------------

test("forged, expired and misaddressed tokens are all UNAUTHENTICATED", async (t) => {
  const user = await account("forgery");
  const session = await user.login();
  t.is((await auth.client.getMe({}, as({ token: session.access }))).userId, user.userId, "the genuine token works");
  // The attack set every service is checked against (tools/test/token-attacks.test.ts runs it across the mesh).
  const cases = await tokenForgeries(auth, session.access);
  t.true(Object.keys(cases).length >= 14);
  for (const [name, tokens] of Object.entries(cases)) {
    for (const [i, token] of tokens.entries()) {
      const error = await rejection(auth.client.getMe({}, as({ token })));
      t.is(error.code, Code.Unauthenticated, `${name} #${i + 1}`);
    }
  }
});
