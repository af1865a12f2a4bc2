// Secrets the auth service must read back later (TOTP secrets at rest, codes
// on their way to the sender role) are sealed with AES-256-GCM under
// AUTH_SECRETS_KEY. Each use gets its own subkey (HKDF-SHA256 with the use as
// info), so a value sealed for one use never opens as another. Layout:
// version (1 byte) | IV (12) | tag (16) | ciphertext.
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";

const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

export type SealUse = "totp-secret" | "code-delivery" | "refresh-successor" | "signing-key";

export interface Sealer {
  seal(use: SealUse, plaintext: Uint8Array): Uint8Array;
  /** Throws when the value was sealed under another key or for another use, or was altered. */
  open(use: SealUse, sealed: Uint8Array): Uint8Array;
}

/** Parses AUTH_SECRETS_KEY: 32 bytes, base64 (standard or url-safe) or hex. */
export function parseSecretsKey(text: string): Buffer | undefined {
  const trimmed = text.trim();
  const bytes = /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, "hex") : Buffer.from(trimmed, "base64");
  return bytes.length === 32 ? bytes : undefined;
}

export function aesGcmSealer(key: Uint8Array): Sealer {
  const subkeys = new Map<SealUse, Buffer>();
  const subkey = (use: SealUse): Buffer => {
    let derived = subkeys.get(use);
    if (derived === undefined) {
      derived = Buffer.from(hkdfSync("sha256", key, Buffer.alloc(0), `aviary-auth/${use}`, 32));
      subkeys.set(use, derived);
    }
    return derived;
  };
  return {
    seal(use, plaintext) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv("aes-256-gcm", subkey(use), iv);
      const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
      return new Uint8Array(Buffer.concat([Buffer.from([VERSION]), iv, cipher.getAuthTag(), body]));
    },
    open(use, sealed) {
      const bytes = Buffer.from(sealed);
      if (bytes.length < 1 + IV_BYTES + TAG_BYTES || bytes[0] !== VERSION) throw new Error("not a sealed value of a known version");
      const iv = bytes.subarray(1, 1 + IV_BYTES);
      const tag = bytes.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES);
      const decipher = createDecipheriv("aes-256-gcm", subkey(use), iv);
      decipher.setAuthTag(tag);
      return new Uint8Array(Buffer.concat([decipher.update(bytes.subarray(1 + IV_BYTES + TAG_BYTES)), decipher.final()]));
    },
  };
}
