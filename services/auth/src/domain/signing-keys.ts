import { asc, desc, eq, gt, isNull, lt, ne, or, sql } from "drizzle-orm";
import { exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from "jose";
import type { Db } from "@aviary/runtime/db/database";
import { signingKeys } from "../store/schema.ts";
import { signingKeyRotated } from "../events/publish.ts";
import { unwrapPrivateJwk, wrapPrivateJwk, type KeyEncryptionKeys } from "./key-encryption.ts";

export const signingAlgorithm = "ES256";

/** A public key as published in the JWKS. */
export interface PublicJwk {
  kty: string;
  kid: string;
  use: string;
  alg: string;
  crv: string;
  x: string;
  y: string;
}

interface LoadedKey {
  kid: string;
  publicJwk: PublicJwk;
  privateKey: CryptoKey;
  activatesAt: Date;
  retiredAt: Date | null;
}

/**
 * The issuer's signing keys, shared by every auth instance through the
 * database. The most recently activated key signs. A scheduled rotation adds
 * a key that is published at once but activates `prepublishSeconds` later, so
 * every verifier's cached JWKS has it before the first token it signs; the
 * old key signs until then and stays published until the last token it
 * signed has expired. Instances reload the ring periodically, so a rotation
 * made by one instance is picked up by all.
 */
export interface KeyRing {
  /** The key that signs new tokens now. */
  current(): { kid: string; privateKey: CryptoKey };
  /**
   * The JWKS to publish: pending, signing and retired-but-in-use keys. The
   * same object is returned until the ring changes, so verifiers can cache
   * imported keys by identity.
   */
  jwks(): { keys: PublicJwk[] };
  /** Rotates now, without pre-publication (for a compromised key). Returns the new kid. */
  rotate(): Promise<string>;
  /** Re-reads keys from the database; schedules a rotation when the signing key is older than the rotation interval. */
  reload(): Promise<void>;
}

export interface KeyRingOptions {
  accessTokenTtlSeconds: number;
  rotationIntervalSeconds: number;
  /** How long a scheduled rotation publishes the new key before it signs. */
  prepublishSeconds: number;
  /** Private keys are stored sealed under these (domain/key-encryption.ts). */
  keyEncryption: KeyEncryptionKeys;
  now?: () => Date;
}

type SigningKeyRow = typeof signingKeys.$inferSelect;

export async function loadKeyRing(db: Db, options: KeyRingOptions): Promise<KeyRing> {
  const now = options.now ?? (() => new Date());
  // Retired keys stay published for one token lifetime plus a minute of clock skew.
  const publishGraceMs = (options.accessTokenTtlSeconds + 60) * 1000;
  let keys: LoadedKey[] = [];
  let published: { keys: PublicJwk[] } = { keys: [] };

  async function read(): Promise<void> {
    const rows = await db
      .select()
      .from(signingKeys)
      .where(or(isNull(signingKeys.unpublishAt), gt(signingKeys.unpublishAt, now())))
      .orderBy(asc(signingKeys.activatesAt));
    keys = await Promise.all(
      rows.map(async (row) => ({
        kid: row.kid,
        publicJwk: toPublicJwk(row.publicJwk),
        privateKey: (await importJWK(privateJwkOf(row), signingAlgorithm)) as CryptoKey,
        activatesAt: row.activatesAt,
        retiredAt: row.retiredAt,
      })),
    );
    const kids = keys.map((key) => key.kid).join();
    if (kids !== published.keys.map((key) => key.kid).join()) published = { keys: keys.map((key) => key.publicJwk) };
  }

  function privateJwkOf(row: SigningKeyRow): JWK {
    if (row.privateKeySealed !== null && row.kekId !== null) return unwrapPrivateJwk(options.keyEncryption, row.kid, row.kekId, row.privateKeySealed);
    if (row.privateJwk !== null) return row.privateJwk;
    throw new Error(`signing key ${row.kid} has no private key`);
  }

  /**
   * Seals every key not yet under the current KEK: plaintext rows from
   * before encryption at rest, and keys under a previous KEK after a KEK
   * rotation. Under the rotation's advisory lock, so instances do not
   * re-wrap one key twice at once.
   */
  async function rewrap(): Promise<void> {
    const current = options.keyEncryption.currentId;
    await db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(hashtext('auth.signing_keys'))`);
      const stale = await tx
        .select()
        .from(signingKeys)
        .where(or(isNull(signingKeys.privateKeySealed), isNull(signingKeys.kekId), ne(signingKeys.kekId, current)));
      for (const row of stale) {
        const { sealed, kekId } = wrapPrivateJwk(options.keyEncryption, { ...privateJwkOf(row), kid: row.kid });
        await tx
          .update(signingKeys)
          .set({ privateKeySealed: sealed, kekId, privateJwk: null })
          .where(eq(signingKeys.kid, row.kid));
      }
    });
  }

  /**
   * Adds a key activating after `prepublishMs` and schedules the others'
   * retirement for that moment, in one transaction under an advisory lock, so
   * two instances rotating at once produce one new key, not two. With
   * `onlyIfDue`, adds one only when the newest key is older than the rotation
   * interval. The very first key signs at once.
   */
  async function addKey(onlyIfDue: boolean, prepublishMs: number): Promise<string | undefined> {
    const { privateKey, publicKey } = await generateKeyPair(signingAlgorithm, { extractable: true });
    const kid = crypto.randomUUID();
    const publicJwk = { ...(await exportJWK(publicKey)), kid, use: "sig", alg: signingAlgorithm };
    const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: signingAlgorithm };
    return db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(hashtext('auth.signing_keys'))`);
      const at = now();
      const newest = await tx.select({ createdAt: signingKeys.createdAt }).from(signingKeys).orderBy(desc(signingKeys.createdAt)).limit(1);
      const newestCreated = newest[0]?.createdAt;
      if (onlyIfDue && newestCreated !== undefined && newestCreated.getTime() > at.getTime() - options.rotationIntervalSeconds * 1000) {
        return undefined;
      }
      const activatesAt = new Date(at.getTime() + (newestCreated === undefined ? 0 : prepublishMs));
      await tx
        .update(signingKeys)
        .set({ retiredAt: activatesAt, unpublishAt: new Date(activatesAt.getTime() + publishGraceMs) })
        .where(or(isNull(signingKeys.retiredAt), gt(signingKeys.retiredAt, activatesAt)));
      const { sealed, kekId } = wrapPrivateJwk(options.keyEncryption, privateJwk);
      await tx.insert(signingKeys).values({ kid, alg: signingAlgorithm, publicJwk, privateKeySealed: sealed, kekId, createdAt: at, activatesAt });
      await signingKeyRotated(tx, kid, activatesAt, at);
      // Forget keys that are no longer published; nothing can verify with them anyway.
      await tx.delete(signingKeys).where(lt(signingKeys.unpublishAt, new Date(at.getTime() - publishGraceMs)));
      return kid;
    });
  }

  const ring: KeyRing = {
    current() {
      const at = now().getTime();
      // Keys are ordered by activation; a key retired early (an immediate
      // rotation overtook its pre-publication) never signs.
      const signing = keys.filter((key) => key.activatesAt.getTime() <= at && (key.retiredAt === null || key.retiredAt.getTime() > at)).at(-1);
      if (signing === undefined) throw new Error("no signing key loaded");
      return { kid: signing.kid, privateKey: signing.privateKey };
    },
    jwks() {
      return published;
    },
    async rotate() {
      const kid = await addKey(false, 0);
      await read();
      return kid as string;
    },
    async reload() {
      await rewrap();
      await addKey(true, options.prepublishSeconds * 1000);
      await read();
    },
  };
  await ring.reload();
  return ring;
}

/** Only the public members, whatever else the stored JWK carries. */
function toPublicJwk(jwk: JWK): PublicJwk {
  return {
    kty: jwk.kty ?? "",
    kid: jwk.kid ?? "",
    use: jwk.use ?? "sig",
    alg: jwk.alg ?? signingAlgorithm,
    crv: jwk.crv ?? "",
    x: jwk.x ?? "",
    y: jwk.y ?? "",
  };
}
