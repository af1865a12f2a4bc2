// Recovery codes: ten per enrolment, single use, shown once. Each is 16
// characters of Crockford-style base32 (80 random bits), printed in groups of
// four. With 80 bits a plain SHA-256 is enough to store them: unlike a
// password there is nothing to guess offline, so no slow hash is needed.
import { createHash, randomBytes } from "node:crypto";
import { base32Encode } from "./totp.ts";

export const RECOVERY_CODE_COUNT = 10;
// No I, L, O, U: nothing to misread when typed from paper.
const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/** A new code as shown to the user, e.g. "7K3M-Q9XA-2BHD-W4RT". */
export function newRecoveryCode(): string {
  return base32Encode(randomBytes(10), ALPHABET).match(/.{4}/g)!.join("-");
}

/** What a typed code is compared as: upper case, dashes and spaces dropped, easily confused letters folded. */
export function normaliseRecoveryCode(typed: string): string {
  return typed.toUpperCase().replace(/[\s-]/g, "").replace(/[IL]/g, "1").replace(/O/g, "0");
}

export function hashRecoveryCode(typed: string): string {
  return createHash("sha256").update(normaliseRecoveryCode(typed)).digest("hex");
}
