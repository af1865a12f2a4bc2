// The services allowed to obtain service tokens, from AUTH_SERVICE_CLIENTS:
//
//   AUTH_SERVICE_CLIENTS=notification:user.devices.read+posts.read:<sha256 hex>,feed:...
//
// Entries are comma-separated; each is `client_id:scope+scope:secret_sha256_hex`.
// Only the SHA-256 digest of a secret is configured, so the auth service's
// environment never holds the secrets themselves. Secrets should be long and
// random (e.g. `openssl rand -base64 32`): with a digest (no salt, no work
// factor) only high-entropy secrets are safe, and only they are needed here.
import { createHash, timingSafeEqual } from "node:crypto";
import { ConfigError, type Var } from "@aviary/runtime/config";

export interface ServiceClient {
  readonly clientId: string;
  readonly scopes: readonly string[];
  /** SHA-256 of the secret. */
  readonly secretDigest: Buffer;
}

export const CLIENT_ID = /^[a-z][a-z0-9-]{0,63}$/;
export const SCOPE = /^[a-z][a-z0-9._-]{0,99}$/;
const DIGEST_HEX = /^[0-9a-fA-F]{64}$/;

/** Parses the entries; returns problems instead of throwing, without ever echoing a digest. */
export function parseServiceClients(raw: string): { clients: ServiceClient[]; problems: string[] } {
  const clients: ServiceClient[] = [];
  const problems: string[] = [];
  const entries = raw
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  entries.forEach((entry, i) => {
    const before = problems.length;
    const parts = entry.split(":");
    const [clientId = "", scopeList = "", digest = ""] = parts;
    const where = `entry ${i + 1}${CLIENT_ID.test(clientId) ? ` (${clientId})` : ""}`;
    if (parts.length !== 3) return void problems.push(`${where}: expected client_id:scope+scope:secret_sha256_hex`);
    const scopes = scopeList.split("+").filter((s) => s !== "");
    if (!CLIENT_ID.test(clientId)) problems.push(`${where}: client id must match ${CLIENT_ID}`);
    else if (clients.some((c) => c.clientId === clientId)) problems.push(`${where}: client id listed twice`);
    if (scopes.length === 0) problems.push(`${where}: at least one scope is needed`);
    for (const scope of scopes) if (!SCOPE.test(scope)) problems.push(`${where}: scope ${JSON.stringify(scope.slice(0, 40))} must match ${SCOPE}`);
    if (!DIGEST_HEX.test(digest)) problems.push(`${where}: the secret must be given as its SHA-256 digest, 64 hex digits`);
    if (problems.length === before) clients.push({ clientId, scopes: [...new Set(scopes)], secretDigest: Buffer.from(digest, "hex") });
  });
  return { clients, problems };
}

/**
 * The config variable. A bad value is a ConfigError naming the variable (the
 * runtime's config module has no hook for custom kinds, so this one fails on
 * its own rather than alongside the other variables' problems).
 */
export function serviceClients(variable: string): Var<readonly ServiceClient[]> {
  return {
    variable,
    parse: (raw) => {
      if (raw === undefined) return [];
      const { clients, problems } = parseServiceClients(raw);
      if (problems.length > 0) throw new ConfigError(problems.map((problem) => ({ variable, problem })));
      return clients;
    },
  };
}

export function secretDigest(secret: string): Buffer {
  return createHash("sha256").update(secret, "utf8").digest();
}

// Compared against when the client id is unknown, so both failures cost the same.
const DECOY_DIGEST = secretDigest("no such client");

/**
 * The client, when the secret is right; undefined for an unknown client and a
 * wrong secret alike. Digests are compared in constant time.
 */
export function authenticateClient(clients: readonly ServiceClient[], clientId: string, secret: string): ServiceClient | undefined {
  const client = clients.find((c) => c.clientId === clientId);
  const matches = timingSafeEqual(secretDigest(secret), client?.secretDigest ?? DECOY_DIGEST);
  return client !== undefined && matches ? client : undefined;
}
