// Signing-key rotation on a controllable clock (PGlite): a scheduled rotation
// publishes the new key before it signs, the old key signs until then and
// stays published until its last token expired; an immediate rotation
// switches at once.
import test, { type ExecutionContext } from "ava";
import { sql } from "drizzle-orm";
import { SignJWT, createLocalJWKSet, exportJWK, generateKeyPair, jwtVerify, type JWK } from "jose";
import { ConfigError } from "@aviary/runtime/config";
import { openDatabase } from "@aviary/runtime/db/open";
import type { Database } from "@aviary/runtime/db/database";
import { loadKeyRing, type KeyRing, type KeyRingOptions } from "../src/domain/signing-keys.ts";
import { parseKeyEncryptionKeys, unwrapPrivateJwk, type KeyEncryptionKeys } from "../src/domain/key-encryption.ts";
import { migrationsFolder } from "../src/server.ts";

const minute = 60_000;
const hour = 60 * minute;
let database: Database;

test.before(async () => {
  database = await openDatabase();
  await database.migrate(migrationsFolder, { schema: "auth" });
});
test.after.always(async () => {
  await database?.close();
});

const timing = { accessTokenTtlSeconds: 900, rotationIntervalSeconds: 86_400, prepublishSeconds: 300 } satisfies Partial<KeyRingOptions>;
const K1 = "k1:" + Buffer.alloc(32, 1).toString("base64");
const K2 = "k2:" + Buffer.alloc(32, 2).toString("base64");

function kek(text: string): KeyEncryptionKeys {
  const parsed = parseKeyEncryptionKeys(text);
  if (typeof parsed === "string") throw new Error(parsed);
  return parsed;
}

function kids(ring: KeyRing): string[] {
  return ring.jwks().keys.map((key) => key.kid);
}

test.serial("scheduled rotation: published first, signs after the pre-publication window, old key unpublished after its tokens expired", async (t) => {
  let clock = Date.parse("2026-01-01T00:00:00Z");
  // accessTokenTtl 15 min → retired keys stay published 16 min; rotation every 24 h; pre-publish 5 min.
  const ring = await loadKeyRing(database.db, { ...timing, keyEncryption: kek(K1), now: () => new Date(clock) });
  const first = ring.current().kid;
  t.deepEqual(kids(ring), [first], "the very first key signs at once");

  clock += 12 * hour;
  await ring.reload();
  t.deepEqual(kids(ring), [first], "not due yet: no new key");

  clock += 13 * hour;
  await ring.reload();
  const second = kids(ring)[1] ?? "";
  t.not(second, "", "due: a second key is published");
  t.is(ring.current().kid, first, "…but the old key still signs during pre-publication");

  clock += 4 * minute;
  t.is(ring.current().kid, first);
  clock += 1 * minute + 1;
  t.is(ring.current().kid, second, "the new key signs once its activation time passed, without a reload");
  await ring.reload();
  t.deepEqual(kids(ring), [first, second], "the old key stays published for its tokens");

  clock += 17 * minute;
  await ring.reload();
  t.deepEqual(kids(ring), [second], "unpublished once every token it signed has expired");
});

test.serial("immediate rotation switches at once, and overtakes a pending key", async (t) => {
  let clock = Date.parse("2027-01-01T00:00:00Z");
  const ring = await loadKeyRing(database.db, { ...timing, keyEncryption: kek(K1), now: () => new Date(clock) });
  clock += 25 * hour;
  await ring.reload(); // schedules a pending key
  const pending = kids(ring).at(-1);
  const now = await ring.rotate();
  t.is(ring.current().kid, now);
  clock += 10 * minute; // past the pending key's activation time
  await ring.reload();
  t.is(ring.current().kid, now, "the overtaken pending key never signs");
  t.not(pending, now);
});

// Encryption at rest: each test on a database of its own, so the rows it inspects are its keys alone.
async function freshKeyDatabase(t: ExecutionContext): Promise<Database> {
  const db = await openDatabase();
  await db.migrate(migrationsFolder, { schema: "auth" });
  t.teardown(() => db.close());
  return db;
}

interface StoredKey {
  kid: string;
  private_jwk: unknown;
  private_key_sealed: Uint8Array | null;
  kek_id: string | null;
  row: string;
}
async function storedKeys(db: Database): Promise<StoredKey[]> {
  const result = (await db.db.execute(sql`select kid, private_jwk, private_key_sealed, kek_id, row_to_json(k)::text as row from auth.signing_keys k order by created_at`)) as unknown as { rows: StoredKey[] };
  return result.rows;
}

async function signWith(ring: KeyRing): Promise<string> {
  const { kid, privateKey } = ring.current();
  return new SignJWT({}).setProtectedHeader({ alg: "ES256", kid }).setSubject("someone").setIssuedAt().sign(privateKey);
}
async function verifies(ring: KeyRing, token: string): Promise<boolean> {
  return jwtVerify(token, createLocalJWKSet({ keys: ring.jwks().keys.map((k) => ({ ...k }) as JWK) })).then(() => true, () => false);
}

test("the stored row holds no private key material, only a ciphertext and its KEK id", async (t) => {
  const db = await freshKeyDatabase(t);
  const ring = await loadKeyRing(db.db, { ...timing, keyEncryption: kek(K1) });
  const [row] = await storedKeys(db);
  t.is(row!.private_jwk, null);
  t.is(row!.kek_id, "k1");
  const sealed = Buffer.from(row!.private_key_sealed!);
  const d = unwrapPrivateJwk(kek(K1), row!.kid, "k1", sealed).d!;
  t.truthy(d);
  for (const text of [row!.row, sealed.toString("latin1"), sealed.toString("base64"), sealed.toString("base64url"), sealed.toString("hex")]) t.false(text.includes(d), "the JWK's d appears nowhere in the row");
  t.true(await verifies(ring, await signWith(ring)), "and the ring signs with it");
});

test("rows stored in plaintext before encryption are sealed at start, and keep signing", async (t) => {
  const db = await freshKeyDatabase(t);
  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
  const kid = crypto.randomUUID();
  const publicJwk = { ...(await exportJWK(publicKey)), kid, use: "sig", alg: "ES256" };
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: "ES256" };
  await db.db.execute(sql`insert into auth.signing_keys (kid, alg, public_jwk, private_jwk) values (${kid}, 'ES256', ${JSON.stringify(publicJwk)}::jsonb, ${JSON.stringify(privateJwk)}::jsonb)`);
  const ring = await loadKeyRing(db.db, { ...timing, keyEncryption: kek(K1) });
  const [row] = await storedKeys(db);
  t.is(row!.kid, kid);
  t.is(row!.private_jwk, null, "the plaintext is gone");
  t.is(row!.kek_id, "k1");
  t.false(row!.row.includes(privateJwk.d!));
  t.is(ring.current().kid, kid, "the old key still signs");
  t.true(await verifies(ring, await signWith(ring)));
});

test("KEK rotation: K1, then K2 with K1 as previous re-wraps every key, tokens signed before still verify, then K2 alone works; K1 alone no longer does", async (t) => {
  const db = await freshKeyDatabase(t);
  const before = await loadKeyRing(db.db, { ...timing, keyEncryption: kek(K1) });
  const kid = before.current().kid;
  const token = await signWith(before);

  const rotating = await loadKeyRing(db.db, { ...timing, keyEncryption: kek(`${K2},${K1}`) });
  t.deepEqual((await storedKeys(db)).map((row) => row.kek_id), ["k2"], "re-wrapped under the new KEK at start");
  t.is(rotating.current().kid, kid, "the signing key itself is unchanged");
  t.true(await verifies(rotating, token), "a token signed before verifies");

  const after = await loadKeyRing(db.db, { ...timing, keyEncryption: kek(K2) });
  t.is(after.current().kid, kid);
  t.true(await verifies(after, token));
  t.true(await verifies(after, await signWith(after)), "signs after a restart with only K2");

  const stale = await t.throwsAsync(loadKeyRing(db.db, { ...timing, keyEncryption: kek(K1) }), { instanceOf: ConfigError });
  t.regex(stale.message, /AUTH_KEY_ENCRYPTION_KEYS: signing key .* is encrypted under key-encryption key "k2", which is not configured/);
});

test("a wrong KEK under the right id is a clear configuration error, naming no secret and no stack", async (t) => {
  const db = await freshKeyDatabase(t);
  await loadKeyRing(db.db, { ...timing, keyEncryption: kek(K1) });
  const wrong = "k1:" + Buffer.alloc(32, 9).toString("base64");
  const error = await t.throwsAsync(loadKeyRing(db.db, { ...timing, keyEncryption: kek(wrong) }), { instanceOf: ConfigError });
  t.regex(error.message, /^invalid configuration \(1 problem\):\n {2}- AUTH_KEY_ENCRYPTION_KEYS: key-encryption key "k1" does not open signing key /);
  t.false(error.message.includes(wrong.slice(3)), "the key is not in the message");
  t.false(/\n\s+at /.test(error.message), "no stack in the message");
});

test("AUTH_KEY_ENCRYPTION_KEYS is parsed strictly; unset means the development KEK", (t) => {
  t.true(kek("").development);
  t.is(kek(`${K2},${K1}`).currentId, "k2");
  t.regex(parseKeyEncryptionKeys("no-colon") as string, /id:key/);
  t.regex(parseKeyEncryptionKeys("k1:c2hvcnQ=") as string, /32 bytes/);
  t.regex(parseKeyEncryptionKeys(`${K1},${K1}`) as string, /twice/);
});
