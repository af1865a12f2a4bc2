// Time-based one-time passwords (RFC 6238 over RFC 4226 HOTP), as every
// authenticator app computes them: HMAC-SHA1, 6 digits, 30-second steps,
// secrets shown in base32 (RFC 4648) and in an otpauth:// URI for QR codes.
// Small enough to own; node:crypto does the HMAC.
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";

export const TOTP_DIGITS = 6;
export const TOTP_PERIOD_SECONDS = 30;
/** Steps accepted either side of now: one covers a phone clock ~30 s off and a code typed as it rolls over. */
export const TOTP_WINDOW = 1;

/** A new 160-bit secret (the RFC 4226 recommended length). */
export function newTotpSecret(): Buffer {
  return randomBytes(20);
}

/** HOTP value for `counter` (RFC 4226 §5.3), zero-padded. */
export function hotp(secret: Uint8Array, counter: number, digits = TOTP_DIGITS): string {
  const message = Buffer.alloc(8);
  message.writeBigUInt64BE(BigInt(counter));
  const mac = createHmac("sha1", secret).update(message).digest();
  const offset = mac[mac.length - 1]! & 0x0f;
  const binary = (mac.readUInt32BE(offset) & 0x7fffffff) % 10 ** digits;
  return binary.toString().padStart(digits, "0");
}

/** The time step of `atMs`. */
export function totpStep(atMs: number, periodSeconds = TOTP_PERIOD_SECONDS): number {
  return Math.floor(atMs / 1000 / periodSeconds);
}

export function totpCode(secret: Uint8Array, atMs: number): string {
  return hotp(secret, totpStep(atMs));
}

/**
 * The step `code` belongs to, within ±TOTP_WINDOW of now, or undefined. The
 * caller refuses steps at or before the last one used (replay).
 */
export function matchTotp(secret: Uint8Array, code: string, atMs: number): number | undefined {
  const now = totpStep(atMs);
  const given = Buffer.from(code);
  for (let step = now - TOTP_WINDOW; step <= now + TOTP_WINDOW; step += 1) {
    const expected = Buffer.from(hotp(secret, step));
    if (expected.length === given.length && timingSafeEqual(expected, given)) return step;
  }
  return undefined;
}

const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/** Base32 without padding: RFC 4648's alphabet unless another 32-letter one is given (recovery codes use their own). */
export function base32Encode(bytes: Uint8Array, alphabet = BASE32): string {
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of bytes) {
    value = ((value << 8) | byte) & 0xfff;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

export function base32Decode(text: string): Buffer {
  const clean = text.replace(/=+$/, "").toUpperCase();
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const char of clean) {
    const index = BASE32.indexOf(char);
    if (index < 0) throw new Error("not base32");
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** The Key URI Format authenticator apps read from QR codes (otpauth://totp/Issuer:account?…). */
export function otpauthUri(options: { issuer: string; account: string; secret: Uint8Array }): string {
  const label = `${encodeURIComponent(options.issuer)}:${encodeURIComponent(options.account)}`;
  const query = new URLSearchParams({
    secret: base32Encode(options.secret),
    issuer: options.issuer,
    algorithm: "SHA1",
    digits: String(TOTP_DIGITS),
    period: String(TOTP_PERIOD_SECONDS),
  });
  return `otpauth://totp/${label}?${query.toString()}`;
}
