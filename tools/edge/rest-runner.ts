// Runs the REST contract table (rest-cases.ts) against a base URL, in order.
// Used by tools/test/edge-rest.test.ts and by `make rest-contract`.
import { randomBytes } from "node:crypto";
import { SignJWT, generateKeyPair } from "jose";
import { mismatches } from "./json-match.ts";
import { PASSWORD, restCases, type RestCase, type RestContext } from "./rest-cases.ts";

export interface RestResult {
  name: string;
  outcome: "passed" | "failed" | "skipped";
  problems: string[];
}

export async function newRestContext(baseUrl: string, extra: { expiredToken?: string } = {}): Promise<RestContext> {
  return {
    runId: `${Date.now().toString(36)}${randomBytes(3).toString("hex")}`,
    password: PASSWORD,
    users: {},
    captured: {},
    uploads: {},
    forgedToken: await forgeToken(baseUrl),
    ...extra,
  };
}

/**
 * A well-formed token with the issuer's current kid, issuer and audience —
 * signed by a key of our own. Only the signature gives it away.
 */
async function forgeToken(baseUrl: string): Promise<string> {
  const jwks = (await (await fetch(new URL("/.well-known/jwks.json", baseUrl))).json()) as { keys: Array<{ kid: string }> };
  const kid = jwks.keys[0]?.kid;
  if (!kid) throw new Error(`no key in ${baseUrl}/.well-known/jwks.json`);
  const { privateKey } = await generateKeyPair("ES256");
  return new SignJWT({ sid: crypto.randomUUID() })
    .setProtectedHeader({ alg: "ES256", kid, typ: "at+jwt" })
    .setIssuer("aviary-auth")
    .setAudience("aviary")
    .setSubject(crypto.randomUUID())
    .setIssuedAt()
    .setExpirationTime("10m")
    .sign(privateKey);
}

export async function runRestCases(baseUrl: string, context: RestContext, cases: RestCase[] = restCases): Promise<RestResult[]> {
  const results: RestResult[] = [];
  for (const row of cases) {
    if (row.needs && context[row.needs] === undefined) {
      results.push({ name: row.name, outcome: "skipped", problems: [`needs ${row.needs}`] });
      continue;
    }
    if (row.before) {
      try {
        await row.before(context);
      } catch (error) {
        results.push({ name: row.name, outcome: "failed", problems: [`before the request: ${String(error)}`] });
        continue;
      }
    }
    const deadline = Date.now() + (row.eventuallyMs ?? 0);
    for (;;) {
      let problems: string[];
      try {
        problems = await runCase(baseUrl, row, context);
      } catch (error) {
        problems = [String(error)];
      }
      if (problems.length === 0 || Date.now() >= deadline) {
        results.push({ name: row.name, outcome: problems.length === 0 ? "passed" : "failed", problems });
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
  return results;
}

async function runCase(baseUrl: string, row: RestCase, context: RestContext): Promise<string[]> {
  const path = typeof row.path === "function" ? row.path(context) : row.path;
  const body = row.body?.(context);
  // Concatenated, not resolved with new URL(path, base): `//v1/…` must reach Envoy as written.
  const url = `${baseUrl.replace(/\/$/, "")}${path}`;
  const response = await fetch(url, {
    method: row.method,
    headers: row.headers?.(context) ?? {},
    ...(body === undefined ? {} : { body: typeof body === "string" ? body : JSON.stringify(body) }),
  });
  const text = await response.text();
  const problems: string[] = [];
  if (response.status !== row.expect.status) problems.push(`status: expected ${row.expect.status}, got ${response.status}: ${text.slice(0, 300)}`);
  for (const [name, expected] of Object.entries(row.expect.headers ?? {})) {
    const actual = response.headers.get(name);
    if (expected === null ? actual !== null : actual === null || !expected.test(actual)) {
      problems.push(`header ${name}: expected ${expected === null ? "absent" : String(expected)}, got ${JSON.stringify(actual)}`);
    }
  }
  const expected = row.expect.jsonFor?.(context) ?? row.expect.json;
  if (expected !== undefined || row.capture) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return [...problems, `body is not JSON: ${text.slice(0, 300)}`];
    }
    if (expected !== undefined) problems.push(...mismatches(parsed, expected));
    if (problems.length === 0) row.capture?.(parsed, context);
  }
  return problems;
}
