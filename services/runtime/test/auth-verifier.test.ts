import test from "ava";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createHmac } from "node:crypto";
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from "jose";
import type { CryptoKey, JSONWebKeySet, JWK } from "jose";
import { Code, ConnectError } from "@connectrpc/connect";
import { createTokenVerifier } from "../src/auth/verifier.ts";
import type { TokenVerifier } from "../src/auth/verifier.ts";

const ISSUER = "https://auth.aviary.test";
const AUDIENCE = "aviary";

interface Keys {
  privateKey: CryptoKey;
  publicJwk: JWK;
  spki: string;
}

async function makeKey(kid: string): Promise<Keys> {
  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: "ES256", use: "sig" };
  return { privateKey, publicJwk, spki: await exportSPKI(publicKey) };
}

const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString("base64url");
const now = () => Math.floor(Date.now() / 1000);

function claims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const t = now();
  return { iss: ISSUER, aud: AUDIENCE, sub: "user-1", sid: "session-1", jti: "token-1", iat: t, exp: t + 900, ...overrides };
}

async function sign(key: Keys, payload: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg: "ES256", kid: key.publicJwk.kid ?? "", ...header }).sign(key.privateKey);
}

let current: Keys;
let verifier: TokenVerifier;

test.before(async () => {
  current = await makeKey("key-1");
  const jwks: JSONWebKeySet = { keys: [current.publicJwk] };
  verifier = createTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks: () => jwks, algorithms: ["ES256"] });
});

async function rejects(t: import("ava").ExecutionContext, token: string, message = /invalid access token/) {
  const error = await t.throwsAsync(verifier.verify(token));
  t.true(error instanceof ConnectError, String(error));
  t.is((error as ConnectError).code, Code.Unauthenticated);
  t.regex((error as ConnectError).rawMessage, message);
}

test("a valid token yields the principal", async (t) => {
  const exp = now() + 900;
  const principal = await verifier.verify(await sign(current, claims({ exp })));
  t.deepEqual(principal, { userId: "user-1", sessionId: "session-1", tokenId: "token-1", expiresAt: new Date(exp * 1000), roles: [] });
});

test("the roles claim becomes the principal's roles; a malformed one is a bad token", async (t) => {
  const exp = now() + 900;
  t.deepEqual((await verifier.verify(await sign(current, claims({ exp, roles: ["moderator", "admin"] })))).roles, ["moderator", "admin"]);
  for (const roles of ["admin", [1], { admin: true }]) {
    await rejects(t, await sign(current, claims({ exp, roles })));
  }
});

test("alg none is rejected", async (t) => {
  const token = `${b64({ alg: "none", kid: "key-1" })}.${b64(claims())}.`;
  await rejects(t, token);
});

test("HS256 signed with the public key bytes as the secret is rejected", async (t) => {
  // The classic key-confusion attack: a verifier that trusts the header's alg
  // would HMAC-verify with the public key it has.
  for (const secret of [current.spki, JSON.stringify(current.publicJwk), current.publicJwk.x ?? ""]) {
    const head = `${b64({ alg: "HS256", kid: "key-1", typ: "JWT" })}.${b64(claims())}`;
    const mac = createHmac("sha256", secret).update(head).digest("base64url");
    await rejects(t, `${head}.${mac}`);
  }
});

test("algorithms outside the allow-list are rejected even with a valid signature", async (t) => {
  const { privateKey, publicKey } = await generateKeyPair("ES384", { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: "k384", alg: "ES384" };
  const v = createTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks: () => ({ keys: [jwk] }) });
  const token = await new SignJWT(claims()).setProtectedHeader({ alg: "ES384", kid: "k384" }).sign(privateKey);
  const error = await t.throwsAsync(v.verify(token));
  t.is((error as ConnectError).code, Code.Unauthenticated);
});

test("symmetric or none algorithms cannot be configured", (t) => {
  for (const algorithms of [["HS256"], ["none"], ["ES256", "HS512"], []]) {
    t.throws(() => createTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks: () => ({ keys: [] }), algorithms }), { message: /asymmetric/ });
  }
});

test("an expired token is rejected (beyond the clock tolerance)", async (t) => {
  await rejects(t, await sign(current, claims({ iat: now() - 3600, exp: now() - 60 })), /expired/);
});

test("a token not yet valid (nbf in the future) is rejected", async (t) => {
  await rejects(t, await sign(current, claims({ nbf: now() + 300 })));
});

test("a token issued in the future (iat) is rejected", async (t) => {
  await rejects(t, await sign(current, claims({ iat: now() + 300, exp: now() + 1200 })));
});

test("small clock skew is tolerated", async (t) => {
  await t.notThrowsAsync(verifier.verify(await sign(current, claims({ nbf: now() + 2, iat: now() + 2 }))));
});

test("wrong issuer or audience is rejected", async (t) => {
  await rejects(t, await sign(current, claims({ iss: "https://evil.example" })));
  await rejects(t, await sign(current, claims({ aud: "some-other-api" })));
});

test("an unknown kid is rejected", async (t) => {
  const stranger = await makeKey("key-unknown");
  await rejects(t, await sign(stranger, claims()));
  // A known kid but a different key: the signature does not verify.
  const impostor = await makeKey("key-1");
  await rejects(t, await sign(impostor, claims()));
});

test("a tampered payload or signature is rejected", async (t) => {
  const token = await sign(current, claims());
  const [h, , s] = token.split(".") as [string, string, string];
  await rejects(t, `${h}.${b64(claims({ sub: "admin" }))}.${s}`);
  const sig = Buffer.from(s, "base64url");
  sig[0] = (sig[0] ?? 0) ^ 0xff;
  await rejects(t, `${h}.${token.split(".")[1]}.${sig.toString("base64url")}`);
  await rejects(t, "not.a.jwt");
  await rejects(t, "");
});

test("missing sid, sub, jti or exp is rejected", async (t) => {
  for (const missing of ["sid", "sub", "jti", "exp", "iat"]) {
    const payload = claims();
    delete payload[missing];
    await rejects(t, await sign(current, payload));
  }
  await rejects(t, await sign(current, claims({ sid: "" })));
  await rejects(t, await sign(current, claims({ sid: 42 })));
});

test("a local key-set getter picks up rotated keys", async (t) => {
  const next = await makeKey("key-2");
  let set: JSONWebKeySet = { keys: [current.publicJwk] };
  const v = createTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks: () => set });
  const token = await sign(next, claims());
  await t.throwsAsync(v.verify(token));
  set = { keys: [current.publicJwk, next.publicJwk] };
  t.is((await v.verify(token)).userId, "user-1");
});

test("remote JWKS: fetched over HTTP, refetched on an unknown kid, Unavailable when unreachable", async (t) => {
  const next = await makeKey("key-2");
  let served: JWK[] = [current.publicJwk];
  let fetches = 0;
  const server = http.createServer((_req, res) => {
    fetches++;
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ keys: served }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks.json`);
  const v = createTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks: url, remote: { cooldownMs: 0 } });

  t.is((await v.verify(await sign(current, claims()))).userId, "user-1");
  t.is((await v.verify(await sign(current, claims()))).userId, "user-1");
  t.is(fetches, 1, "the key set is cached");

  served = [current.publicJwk, next.publicJwk];
  t.is((await v.verify(await sign(next, claims()))).userId, "user-1", "a new kid triggers a refetch");
  t.is(fetches, 2);

  const down = createTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks: new URL("http://127.0.0.1:1/jwks.json"), remote: { timeoutMs: 500 } });
  const error = await t.throwsAsync(down.verify(await sign(current, claims())));
  t.is((error as ConnectError).code, Code.Unavailable, "an unreachable key set is the server's problem, not the token's");
});

test("a verified token is remembered: the exact string passes again without a signature check; any other string is checked", async (t) => {
  const key = await makeKey("key-remember");
  let jwks: JSONWebKeySet = { keys: [key.publicJwk] };
  const remembering = createTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks: () => jwks });
  const token = await sign(key, claims({ jti: "remembered" }));
  const other = await sign(key, claims({ jti: "never-seen" }));
  t.is((await remembering.verify(token)).tokenId, "remembered");
  // The key leaves the set: only a remembered token can still pass.
  jwks = { keys: [] };
  t.is((await remembering.verify(token)).tokenId, "remembered");
  await t.throwsAsync(remembering.verify(other), { instanceOf: ConnectError });
  const [head, body] = token.split(".");
  await t.throwsAsync(remembering.verify(`${head}.${body}.${"A".repeat(86)}`), { instanceOf: ConnectError });
});

test("a remembered token is refused once its exp passes (no clock tolerance); verifiedCacheSize 0 remembers nothing", async (t) => {
  const key = await makeKey("key-expiry");
  let jwks: JSONWebKeySet = { keys: [key.publicJwk] };
  let clock = Date.now();
  const remembering = createTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks: () => jwks, now: () => clock });
  const exp = Math.floor(clock / 1000) + 60;
  const token = await sign(key, claims({ exp }));
  await remembering.verify(token);
  jwks = { keys: [] };
  t.is((await remembering.verify(token)).tokenId, "token-1", "remembered while valid");
  // One millisecond past exp (inside jose's 5 s tolerance): memory no longer
  // answers, so the token is checked again, and without its key it fails.
  clock = exp * 1000 + 1;
  await t.throwsAsync(remembering.verify(token), { instanceOf: ConnectError });

  let keys: JSONWebKeySet = { keys: [key.publicJwk] };
  const forgetful = createTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks: () => keys, verifiedCacheSize: 0 });
  const fresh = await sign(key, claims());
  await forgetful.verify(fresh);
  keys = { keys: [] };
  await t.throwsAsync(forgetful.verify(fresh), { instanceOf: ConnectError });
});

test("the verified-token memory is bounded: the least recently used token is forgotten first", async (t) => {
  const key = await makeKey("key-bounded");
  let jwks: JSONWebKeySet = { keys: [key.publicJwk] };
  const small = createTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, jwks: () => jwks, verifiedCacheSize: 2 });
  const [a, b, c] = await Promise.all(["a", "b", "c"].map((jti) => sign(key, claims({ jti }))));
  await small.verify(a!);
  await small.verify(b!);
  await small.verify(a!); // a is now the most recent
  await small.verify(c!); // evicts b
  jwks = { keys: [] };
  t.is((await small.verify(a!)).tokenId, "a");
  t.is((await small.verify(c!)).tokenId, "c");
  await t.throwsAsync(small.verify(b!), { instanceOf: ConnectError });
});
