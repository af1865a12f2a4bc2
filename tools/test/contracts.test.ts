// Proves the contract gates bite: `buf breaking` must fail on a breaking edit
// and pass a compatible one, and `buf lint` must reject a style violation.
// Each case edits a scratch copy of the workspace, never proto/ itself.
import test from "ava";
import { execFile } from "node:child_process";
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const repo = fileURLToPath(new URL("../..", import.meta.url));
const buf = join(repo, "node_modules/.bin/buf");
const authProto = "proto/aviary/auth/v1/auth.proto";

/** A scratch workspace (buf.yaml, proto/, both third-party modules) with one file edited. */
async function scratchWith(edit: (source: string) => string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "aviary-contracts-"));
  await cp(join(repo, "buf.yaml"), join(dir, "buf.yaml"));
  await cp(join(repo, "proto"), join(dir, "proto"), { recursive: true });
  await cp(join(repo, "build/third_party"), join(dir, "build/third_party"), { recursive: true });
  await cp(join(repo, "third_party"), join(dir, "third_party"), { recursive: true });
  const source = await readFile(join(dir, authProto), "utf8");
  const edited = edit(source);
  if (edited === source) throw new Error("the edit changed nothing; the test would prove nothing");
  await writeFile(join(dir, authProto), edited);
  return dir;
}

async function breaking(dir: string): Promise<{ ok: boolean; output: string }> {
  try {
    const { stdout, stderr } = await run(buf, ["breaking", "proto", "--against", join(repo, "proto")], { cwd: dir });
    return { ok: true, output: stdout + stderr };
  } catch (error) {
    const failure = error as { stdout?: string; stderr?: string };
    return { ok: false, output: `${failure.stdout ?? ""}${failure.stderr ?? ""}` };
  }
}

test("buf breaking fails when a field changes type", async (t) => {
  const dir = await scratchWith((s) => s.replace("  string user_id = 1;\n  // The identity as stored", "  int64 user_id = 1;\n  // The identity as stored"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const result = await breaking(dir);
  t.false(result.ok);
  t.regex(result.output, /user_id.*type/i);
});

test("buf breaking fails when an RPC is removed", async (t) => {
  const dir = await scratchWith((s) => s.replace(/  \/\/ Who the access token belongs to\.\n  rpc GetMe[^}]*\};\n  \}\n/, ""));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const result = await breaking(dir);
  t.false(result.ok);
  t.regex(result.output, /GetMe/);
});

test("buf breaking accepts a new optional field", async (t) => {
  const dir = await scratchWith((s) => s.replace("message LogoutRequest {}", "message LogoutRequest {\n  bool everywhere = 1;\n}"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const result = await breaking(dir);
  t.true(result.ok, result.output);
});

test("buf lint rejects a field that is not lower_snake_case", async (t) => {
  const dir = await scratchWith((s) => s.replace("message LogoutRequest {}", "message LogoutRequest {\n  bool everyWhere = 1;\n}"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const error = await t.throwsAsync(run(buf, ["lint", "proto"], { cwd: dir }));
  t.regex(String((error as { stdout?: string }).stdout), /everyWhere/);
});

test("the make-breaking gate (tools/breaking.sh) fails a commit that breaks the previous one's contracts", async (t) => {
  // A scratch repository with two commits: the current contracts, then a breaking edit.
  const dir = await scratchWith((s) => s.replace("message LogoutRequest {}", "message LogoutRequest {\n  bool everywhere = 1;\n}"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await cp(join(repo, "tools/breaking.sh"), join(dir, "tools/breaking.sh"));
  const git = (...args: string[]) => run("git", ["-c", "user.name=test", "-c", "user.email=test@example.org", ...args], { cwd: dir });
  await git("init", "-q");
  await writeFile(join(dir, ".gitignore"), "build/\n");
  await git("add", "-A");
  await git("commit", "-qm", "contracts");
  const source = await readFile(join(dir, authProto), "utf8");
  await writeFile(join(dir, authProto), source.replace("  bool everywhere = 1;\n", "  string everywhere = 1;\n"));
  await git("commit", "-qam", "breaking edit");
  const env = { ...process.env, PATH: `${join(repo, "node_modules/.bin")}:${process.env["PATH"] ?? ""}` };
  const error = await t.throwsAsync(run("bash", [join(dir, "tools/breaking.sh"), "HEAD~1"], { cwd: dir, env }));
  t.regex(String((error as { stdout?: string }).stdout), /everywhere/);
  // And the same gate passes the first commit against itself.
  await git("checkout", "-q", "HEAD~1");
  await t.notThrowsAsync(run("bash", [join(dir, "tools/breaking.sh"), "HEAD"], { cwd: dir, env }));
});
