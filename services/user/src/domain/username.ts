// Username rules. The proto carries the shape (3–30 of [A-Za-z0-9_]); this
// adds what a pattern cannot: reserved names, and the case-insensitive key.

/** Names nobody may take: they impersonate the service or shadow routes. */
export const RESERVED_USERNAMES: ReadonlySet<string> = new Set([
  "admin",
  "administrator",
  "root",
  "system",
  "support",
  "help",
  "aviary",
  "api",
  "www",
  "mail",
  "staff",
  "moderator",
  "mod",
  "official",
  "security",
  "settings",
  "me",
  "null",
  "undefined",
  "anonymous",
  "everyone",
  "here",
]);

const PATTERN = /^[a-z0-9_]{3,30}$/;

export type UsernameCheck = { ok: true; username: string; key: string } | { ok: false; description: string; reason: string };

/** Checks a requested username; the key (lower-cased) is what uniqueness and lookups use. */
export function checkUsername(input: string): UsernameCheck {
  const key = input.toLowerCase();
  if (!PATTERN.test(key)) return { ok: false, description: "must be 3 to 30 letters, digits or underscores", reason: "PATTERN" };
  if (RESERVED_USERNAMES.has(key)) return { ok: false, description: "is reserved", reason: "RESERVED" };
  return { ok: true, username: input, key };
}

/** The key of a looked-up username ("@Ada" and "ada" find the same profile). */
export function usernameKey(input: string): string {
  return input.replace(/^@/, "").toLowerCase();
}
