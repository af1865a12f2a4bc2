import { and, asc, isNull, lt, or, gt, sql } from "drizzle-orm";
import { exportJWK, generateKeyPair, importJWK, type CryptoKey, type JWK } from "jose";
import type { Db } from "@aviary/runtime/db/database";
import { signingKeys } from "../store/schema.ts";

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
  createdAt: Date;
  retiredAt: Date | null;
}

/**
 * The issuer's signing keys, shared by every auth instance through the
 * database. One key signs (the newest unretired one); rotation adds a new key
 * and retires the old one, which stays published until the last token it
 * signed has expired. Instances reload the ring periodically, so a rotation
 * made by one instance is picked up by all.
 */
export interface KeyRing {
  /** The key that signs new tokens. */
  current(): { kid: string; privateKey: CryptoKey };
  /**
   * The JWKS to publish: the signing key and retired keys still in use. The
   * same object is returned until the ring changes, so verifiers can cache
   * imported keys by identity.
   */
  jwks(): { keys: PublicJwk[] };
  /** Creates a new signing key and retires the current one. Returns the new kid. */
  rotate(): Promise<string>;
  /** Re-reads keys from the database; rotates when the signing key is older than the rotation interval. */
  reload(): Promise<void>;
}

export async function loadKeyRing(db: Db, options: { accessTokenTtlSeconds: number; rotationIntervalSeconds: number; now?: () => Date }): Promise<KeyRing> {
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
      .orderBy(asc(signingKeys.createdAt));
    keys = await Promise.all(
      rows.map(async (row) => ({
        kid: row.kid,
        publicJwk: toPublicJwk(row.publicJwk),
        privateKey: (await importJWK(row.privateJwk, signingAlgorithm)) as CryptoKey,
        createdAt: row.createdAt,
        retiredAt: row.retiredAt,
      })),
    );
    const kids = keys.map((key) => key.kid).join();
    if (kids !== published.keys.map((key) => key.kid).join()) published = { keys: keys.map((key) => key.publicJwk) };
  }

  /**
   * Adds a key and retires the others in one transaction, under an advisory
   * lock so two instances rotating at once produce one new key, not two.
   * With `onlyIfDue`, rotates only when no signing key exists or it is too old.
   */
  async function addKey(onlyIfDue: boolean): Promise<string | undefined> {
    const { privateKey, publicKey } = await generateKeyPair(signingAlgorithm, { extractable: true });
    const kid = crypto.randomUUID();
    const publicJwk = { ...(await exportJWK(publicKey)), kid, use: "sig", alg: signingAlgorithm };
    const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: signingAlgorithm };
    return db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(hashtext('auth.signing_keys'))`);
      const at = now();
      if (onlyIfDue) {
        const dueBefore = new Date(at.getTime() - options.rotationIntervalSeconds * 1000);
        const fresh = await tx
          .select({ kid: signingKeys.kid })
          .from(signingKeys)
          .where(and(isNull(signingKeys.retiredAt), gt(signingKeys.createdAt, dueBefore)))
          .limit(1);
        if (fresh.length > 0) return undefined;
      }
      await tx
        .update(signingKeys)
        .set({ retiredAt: at, unpublishAt: new Date(at.getTime() + publishGraceMs) })
        .where(isNull(signingKeys.retiredAt));
      await tx.insert(signingKeys).values({
        kid,
        alg: signingAlgorithm,
        publicJwk,
        privateJwk,
        createdAt: at,
      });
      // Forget keys that are no longer published; nothing can verify with them anyway.
      await tx.delete(signingKeys).where(lt(signingKeys.unpublishAt, new Date(at.getTime() - publishGraceMs)));
      return kid;
    });
  }

  const ring: KeyRing = {
    current() {
      const signing = keys.filter((key) => key.retiredAt === null).at(-1);
      if (signing === undefined) throw new Error("no signing key loaded");
      return { kid: signing.kid, privateKey: signing.privateKey };
    },
    jwks() {
      return published;
    },
    async rotate() {
      const kid = await addKey(false);
      await read();
      return kid as string;
    },
    async reload() {
      await addKey(true);
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
