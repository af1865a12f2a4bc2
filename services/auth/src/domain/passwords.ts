import { hash, verify } from "@node-rs/argon2";
import type { Identity } from "./identity.ts";

/**
 * argon2id with the OWASP-recommended floor (19 MiB, 2 passes). The cost is
 * configurable so tests and benchmarks can measure it rather than guess.
 */
export interface PasswordHashing {
  hash(password: string): Promise<string>;
  verify(hashed: string, password: string): Promise<boolean>;
}

export function argon2idHashing(cost: { memoryKiB: number; passes: number } = { memoryKiB: 19456, passes: 2 }): PasswordHashing {
  const options = { memoryCost: cost.memoryKiB, timeCost: cost.passes, parallelism: 1 };
  return {
    hash: (password) => hash(password, options),
    verify: async (hashed, password) => {
      try {
        return await verify(hashed, password);
      } catch {
        // A malformed stored hash must read as "no match", never as a 500 that leaks its shape.
        return false;
      }
    },
  };
}

/**
 * A hash of a random password, verified against when the identity is unknown,
 * so a login for a missing account costs as much time as one with a wrong password.
 */
export async function decoyHash(hashing: PasswordHashing): Promise<string> {
  return hashing.hash(`decoy-${crypto.randomUUID()}`);
}

// The most used passwords of public breach corpora that pass the length rule.
const commonPasswords = new Set([
  "1234567890", "12345678910", "0123456789", "1q2w3e4r5t", "1qaz2wsx3edc", "qwertyuiop", "qwerty1234",
  "password1", "password12", "password123", "password1234", "passw0rd123", "iloveyou12", "abcdefghij",
  "abc1234567", "1111111111", "0000000000", "aaaaaaaaaa", "football123", "baseball123", "letmein123",
  "welcome123", "sunshine123", "princess123", "dragon1234", "monkey1234", "trustno1234", "qwerty12345",
  "changeme123", "administrator", "correcthorsebatterystaple",
]);

/** Returns why a password is too weak to accept, or undefined when it is acceptable. */
export function passwordWeakness(password: string, identity?: Identity): string | undefined {
  const folded = password.toLowerCase();
  if (commonPasswords.has(folded) || commonPasswords.has(folded.replace(/[^a-z0-9]/g, ""))) {
    return "is one of the most commonly used passwords";
  }
  if (new Set(password).size < 4) {
    return "uses too few different characters";
  }
  if (identity !== undefined) {
    const local = identity.kind === "email" ? identity.value.split("@")[0] ?? "" : identity.value.replace("+", "");
    if (local.length >= 4 && folded.includes(local.toLowerCase())) {
      return "must not contain the email or phone it protects";
    }
  }
  return undefined;
}
