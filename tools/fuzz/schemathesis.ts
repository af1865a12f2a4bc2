// API fuzzing of the edge with Schemathesis (PyPI, pinned in the Makefile,
// installed into .tools/schemathesis-venv by `make schemathesis`): the whole
// mesh behind a real Envoy on the real infrastructure, a registered, verified
// and signed-in fuzz user whose bearer token goes with every request, and
// fixture data (a post, a comment, a conversation with a message, a second
// user) offered to the generator as path-parameter dictionaries so generated
// requests reach real resources as well as missing ones. Every operation of
// gen/openapi.json is fuzzed but the REST realtime stream (an endless
// response; tools/test/edge-realtime.test.ts covers it).
//
// Used by tools/test/fuzz.test.ts (bounded, in `make test`) and
// tools/fuzz/run.ts (`make fuzz`, long and stateful).
import { spawn } from "node:child_process";
import { randomInt, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { password, uniqueEmail } from "../../services/auth/test/harness.ts";
import { eventually, repoRoot } from "../../services/runtime/test-support/infra.ts";
import { CONSUMER_WAIT_MS } from "../../services/feed/test/harness.ts";
import { startTestMesh, type TestMesh } from "../../services/runtime/test-support/mesh.ts";

export const schemathesisBinary = path.join(repoRoot, ".tools/schemathesis-venv/bin/schemathesis");
export const openApiPath = path.join(repoRoot, "gen/openapi.json");

/** What every response is checked for (Schemathesis check names). */
export const FUZZ_CHECKS = [
  "not_a_server_error",
  "status_code_conformance",
  "content_type_conformance",
  "response_schema_conformance",
  "response_headers_conformance",
  "use_after_free",
  "ensure_resource_availability",
];

/**
 * Operations that end the caller's session or account (sign out, revoke a
 * session, change the password, delete the account): they are sent with the
 * token of a second, throwaway account, so the first of them to succeed does
 * not leave every later request of the run unauthenticated.
 */
export const SESSION_ENDING_OPERATIONS = ["AuthService_Logout", "AuthService_RevokeSession", "AuthService_ChangePassword", "AuthService_DeleteAccount"];

/** Operations not fuzzed, with the reason (Schemathesis operation ids). */
export const EXCLUDED_OPERATIONS: Record<string, string> = {
  RealtimeService_Subscribe: "a server stream that only ends when the client leaves; covered by tools/test/edge-realtime.test.ts",
};

export interface FuzzTarget {
  baseUrl: string;
  token: string;
  /** The throwaway account's token, for SESSION_ENDING_OPERATIONS. */
  throwawayToken: string;
  /** Path-parameter values of real resources, by parameter name. */
  fixtures: Record<string, string[]>;
  mesh: TestMesh;
  close(): Promise<void>;
}

interface Session {
  userId: string;
  token: string;
}

async function call<T>(baseUrl: string, method: string, route: string, body: unknown, token?: string): Promise<T> {
  const response = await fetch(`${baseUrl}${route}`, {
    method,
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`fuzz fixture: ${method} ${route} answered ${response.status}: ${text}`);
  return JSON.parse(text) as T;
}

/** Registers, verifies (with the code from the auth service's sink) and signs in a user through the edge. */
async function signUp(mesh: TestMesh, label: string): Promise<Session> {
  const baseUrl = mesh.envoy.url;
  const email = uniqueEmail(label);
  await call(baseUrl, "POST", "/v1/auth/register", { email, password });
  const code = await mesh.auth.codeFor(email, "verify");
  await call(baseUrl, "POST", "/v1/auth/verification:verify", { email, code });
  const login = await call<{ userId: string; tokens: { accessToken: string } }>(baseUrl, "POST", "/v1/auth/login", { email, password });
  const session = { userId: login.userId, token: login.tokens.accessToken };
  // The user service makes the profile from the account event, so it exists a little after sign-up.
  await eventually(`the profile of ${label}`, async () => {
    const profile = await fetch(`${baseUrl}/v1/users/${session.userId}`, { headers: { authorization: `Bearer ${session.token}` } });
    return profile.status === 200;
  }, CONSUMER_WAIT_MS);
  return session;
}

export async function startFuzzTarget(): Promise<FuzzTarget> {
  // Tokens outlive the longest `make fuzz` run (the auth service's maximum).
  const mesh = await startTestMesh({ envoy: { discardOutput: true }, env: { auth: { AUTH_ACCESS_TOKEN_TTL: "1h" } } });
  try {
    const baseUrl = mesh.envoy.url;
    const [fuzzer, friend, throwaway] = await Promise.all([signUp(mesh, "fuzz"), signUp(mesh, "fuzzfriend"), signUp(mesh, "fuzzthrowaway")]);
    await call(baseUrl, "POST", `/v1/users/${friend.userId}:follow`, {}, fuzzer.token);
    await call(baseUrl, "POST", `/v1/users/${fuzzer.userId}:follow`, {}, friend.token);
    const post = await call<{ post: { postId: string } }>(baseUrl, "POST", "/v1/posts", { text: "a post for the fuzzer" }, fuzzer.token);
    const friendPost = await call<{ post: { postId: string } }>(baseUrl, "POST", "/v1/posts", { text: "a friend's post" }, friend.token);
    const comment = await call<{ comment: { commentId: string } }>(baseUrl, "POST", `/v1/posts/${friendPost.post.postId}/comments`, { text: "a comment" }, fuzzer.token);
    const sent = await call<{ message: { conversationId: string; seq: string } }>(
      baseUrl,
      "POST",
      "/v1/messages",
      { directUserId: friend.userId, clientMessageId: randomUUID(), text: "hello" },
      fuzzer.token,
    );
    const fixtures = {
      post_id: [post.post.postId, friendPost.post.postId],
      author_id: [fuzzer.userId, friend.userId],
      user_id: [friend.userId, fuzzer.userId],
      comment_id: [comment.comment.commentId],
      conversation_id: [sent.message.conversationId],
      seq: [sent.message.seq],
    };
    return { baseUrl, token: fuzzer.token, throwawayToken: throwaway.token, fixtures, mesh, close: () => mesh.close() };
  } catch (error) {
    await mesh.close();
    throw error;
  }
}

export interface FuzzOptions {
  maxExamples: number;
  /** Schemathesis phases (examples, coverage, fuzzing, stateful). */
  phases: string[];
  /** A random one when absent; always printed in the result. */
  seed?: number;
  /** Concurrent workers (default 1: two met a race inside Schemathesis' coverage phase). */
  workers?: number;
  /** Stop after this many seconds (the phases repeat until then). */
  maxTimeSeconds?: number;
}

export interface FuzzResult {
  exitCode: number;
  seed: number;
  /** What the CLI printed (its summary names every failure with a curl command to reproduce it). */
  output: string;
  /** The CLI invocation, to rerun by hand against a running edge. */
  command: string;
}

/** Runs the Schemathesis CLI against the target; exit code 0 means no check failed and nothing errored. */
export async function runSchemathesis(target: FuzzTarget, options: FuzzOptions): Promise<FuzzResult> {
  if (!existsSync(schemathesisBinary)) throw new Error(`${schemathesisBinary} is missing: run \`make schemathesis\` (installs the pinned schemathesis wheel into .tools/schemathesis-venv)`);
  const seed = options.seed ?? randomInt(2 ** 31);
  const dir = await mkdtemp(path.join(tmpdir(), "aviary-fuzz-"));
  try {
    // Headers here rather than with --header, which would win over the per-operation ones;
    // the tokens come from the environment, so the file (printed on failure) holds none.
    // Path parameters: real ids half of the time, generated ones (missing, malformed) the other half.
    const config = [
      'headers = { Authorization = "Bearer ${FUZZ_TOKEN}" }',
      "",
      ...Object.entries(target.fixtures).flatMap(([name, values]) => [`[dictionaries.${name}]`, `values = ${JSON.stringify(values)}`, ""]),
      "[parameters]",
      ...Object.keys(target.fixtures).map((name) => `"path.${name}" = { dictionary = "${name}", probability = 0.5 }`),
      "",
      "[[operations]]",
      `include-operation-id-regex = "^(${SESSION_ENDING_OPERATIONS.join("|")})$"`,
      'headers = { Authorization = "Bearer ${FUZZ_THROWAWAY_TOKEN}" }',
      "",
    ].join("\n");
    const configFile = path.join(dir, "schemathesis.toml");
    await writeFile(configFile, config);
    const args = [
      "--config-file",
      configFile,
      "run",
      openApiPath,
      "--url",
      target.baseUrl,
      "--checks",
      FUZZ_CHECKS.join(","),
      "--phases",
      options.phases.join(","),
      "--max-examples",
      String(options.maxExamples),
      "--seed",
      String(seed),
      "--workers",
      String(options.workers ?? 1),
      "--request-timeout",
      "20",
      "--no-color",
      "--output-truncate",
      "false",
      ...Object.keys(EXCLUDED_OPERATIONS).flatMap((id) => ["--exclude-operation-id", id]),
      ...(options.maxTimeSeconds ? ["--max-time", String(options.maxTimeSeconds)] : []),
    ];
    const child = spawn(schemathesisBinary, args, {
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, FUZZ_TOKEN: target.token, FUZZ_THROWAWAY_TOKEN: target.throwawayToken },
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    const exitCode = await new Promise<number>((resolve) => child.once("exit", (code) => resolve(code ?? 1)));
    return { exitCode, seed, output, command: `FUZZ_TOKEN=… FUZZ_THROWAWAY_TOKEN=… schemathesis ${args.join(" ")}\n# ${path.basename(configFile)}:\n${await readFile(configFile, "utf8")}` };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
