// Private signing keys are stored encrypted (envelope: the private JWK
// sealed with AES-256-GCM under a key-encryption key, KEK, from
// AUTH_KEY_ENCRYPTION_KEYS), with the KEK's id beside each ciphertext. The
// first listed KEK wraps; every listed one unwraps, so a KEK rotation is:
// list the new one first and the old one after it, let the instances
// re-wrap every key (at start and on each key reload), then drop the old.
import { createHash } from "node:crypto";
import type { JWK } from "jose";
import { ConfigError } from "@aviary/runtime/config";
import { aesGcmSealer, parseSecretsKey, type Sealer } from "./sealing.ts";

export interface KeyEncryptionKeys {
  /** The id new and re-wrapped keys are sealed under. */
  readonly currentId: string;
  /** Every configured KEK by id, the current one included. */
  readonly sealers: ReadonlyMap<string, Sealer>;
  /** True for the built-in development KEK (AUTH_KEY_ENCRYPTION_KEYS unset). */
  readonly development: boolean;
}

export const KEK_VARIABLE = "AUTH_KEY_ENCRYPTION_KEYS";
const KEK_ID = /^[A-Za-z0-9_.-]{1,32}$/;

/**
 * The development KEK: a constant, so `make dev` keeps its keys across
 * restarts. It is public (it is in this file): keys wrapped under it are as
 * good as plaintext, which the service says loudly when it uses it.
 */
const DEVELOPMENT_KEK = createHash("sha256").update("aviary development key-encryption key; not a secret").digest();

/** Parses `id:key[,id:key…]` (keys: 32 bytes, base64 or hex); a problem text when malformed. */
export function parseKeyEncryptionKeys(text: string | undefined): KeyEncryptionKeys | string {
  if (text === undefined || text.trim() === "") {
    return { currentId: "dev", sealers: new Map([["dev", aesGcmSealer(DEVELOPMENT_KEK)]]), development: true };
  }
  const sealers = new Map<string, Sealer>();
  for (const entry of text.split(",")) {
    const colon = entry.indexOf(":");
    const id = entry.slice(0, colon).trim();
    const key = colon < 0 ? undefined : parseSecretsKey(entry.slice(colon + 1));
    if (colon < 0 || !KEK_ID.test(id)) return "each entry must be id:key, the id 1-32 of A-Z a-z 0-9 _ . - (e.g. k2:$(openssl rand -base64 32),k1:…)";
    if (key === undefined) return `key "${id}" must be 32 bytes, base64 or hex`;
    if (sealers.has(id)) return `key id "${id}" is listed twice`;
    sealers.set(id, aesGcmSealer(key));
  }
  return { currentId: text.split(",")[0]!.split(":")[0]!.trim(), sealers, development: false };
}

/** Seals a private JWK (which carries its kid) under the current KEK. */
export function wrapPrivateJwk(keys: KeyEncryptionKeys, jwk: JWK): { sealed: Uint8Array; kekId: string } {
  const sealer = keys.sealers.get(keys.currentId)!;
  return { sealed: sealer.seal("signing-key", new TextEncoder().encode(JSON.stringify(jwk))), kekId: keys.currentId };
}

/**
 * Opens a stored private key. The kid inside must be the row's: a
 * ciphertext copied onto another row does not open as that key. A KEK that
 * is not configured, or does not open the ciphertext, is a configuration
 * error (the service cannot sign without its keys), named without secrets.
 */
export function unwrapPrivateJwk(keys: KeyEncryptionKeys, kid: string, kekId: string, sealed: Uint8Array): JWK {
  const sealer = keys.sealers.get(kekId);
  if (sealer === undefined) {
    throw new ConfigError([
      { variable: KEK_VARIABLE, problem: `signing key ${kid} is encrypted under key-encryption key "${kekId}", which is not configured (list it after the current one until every key is re-wrapped)` },
    ]);
  }
  let jwk: JWK;
  try {
    jwk = JSON.parse(new TextDecoder().decode(sealer.open("signing-key", sealed))) as JWK;
  } catch {
    throw new ConfigError([{ variable: KEK_VARIABLE, problem: `key-encryption key "${kekId}" does not open signing key ${kid}: the key under that id is not the one it was encrypted with` }]);
  }
  if (jwk.kid !== kid) throw new ConfigError([{ variable: KEK_VARIABLE, problem: `the ciphertext stored for signing key ${kid} holds another key` }]);
  return jwk;
}
