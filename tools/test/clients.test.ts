// Clients in other languages, from the same contracts: the Go example
// (clients/go/cmd/aviary-example, built with the module's pinned
// dependencies) runs against the real mesh over plain gRPC — once at each
// service directly and once through the Envoy edge — and grpcurl finds every
// service's API through server reflection alone.
import test from "ava";
import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { startTestMesh, type TestMesh } from "../../services/runtime/test-support/mesh.ts";
import { infraSh, repoRoot } from "../../services/runtime/test-support/infra.ts";

const run = promisify(execFile);
let mesh: TestMesh;
let example: string;
let grpcurl: string;
let buildDir: string;

test.before(async () => {
  buildDir = await mkdtemp(path.join(tmpdir(), "aviary-go-client-"));
  example = path.join(buildDir, "aviary-example");
  // The first build on a machine downloads the module's dependencies from the Go proxy.
  const build = run("go", ["build", "-o", example, "./cmd/aviary-example"], { cwd: path.join(repoRoot, "clients/go"), timeout: 5 * 60_000 });
  const tool = infraSh(["tool", "grpcurl"]).then((out) => out.trim());
  [mesh, , grpcurl] = await Promise.all([startTestMesh(), build, tool]);
});
test.after.always(async () => {
  await mesh?.close();
  await rm(buildDir, { recursive: true, force: true });
});

interface Step {
  step: string;
  [field: string]: unknown;
}

async function runExample(args: string[]): Promise<Step[]> {
  try {
    const { stdout } = await run(example, [...args, "-codes", mesh.auth.codeSink, "-timeout", "90s"], { timeout: 100_000 });
    return stdout.trim().split("\n").map((line) => JSON.parse(line) as Step);
  } catch (e) {
    const failed = e as { stdout?: string; stderr?: string; message: string };
    throw new Error(`aviary-example failed: ${failed.message}\n${failed.stdout ?? ""}\n${failed.stderr ?? ""}`);
  }
}

/** What every run must show: the post seen live on the stream, then first in the home feed. */
function assertRun(t: import("ava").ExecutionContext, steps: Step[]): void {
  const names = steps.map((s) => s.step);
  t.deepEqual(
    names.filter((n) => n !== "live_feed_updated"),
    ["signed_in", "signed_in", "followed", "stream_ready", "posted", "home_feed", "done"],
  );
  const posted = steps.find((s) => s.step === "posted")!;
  const live = steps.filter((s) => s.step === "live_feed_updated");
  t.true(live.some((s) => s["newest_post_id"] === posted["post_id"]), "the post's FeedUpdated hint arrived on Ben's stream");
  const feed = steps.find((s) => s.step === "home_feed")!;
  t.is((feed["post_ids"] as string[])[0], posted["post_id"] as string);
}

test("the Go client registers, follows, streams, posts and reads the feed at each service directly", async (t) => {
  const u = mesh.upstreams;
  assertRun(t, await runExample(["-auth", u.auth!, "-user", u.user!, "-post", u.post!, "-feed", u.feed!, "-realtime", u.realtime!]));
});

test("the Go client does the same through the edge over gRPC", async (t) => {
  assertRun(t, await runExample(["-edge", mesh.envoy.url]));
});

test("grpcurl lists every service's own API through reflection", async (t) => {
  const expected: Record<string, string> = {
    auth: "aviary.auth.v1.AuthService",
    user: "aviary.user.v1.UserService",
    media: "aviary.media.v1.MediaService",
    post: "aviary.post.v1.PostService",
    feed: "aviary.feed.v1.FeedService",
    bff: "aviary.bff.v1.BffService",
    notification: "aviary.notification.v1.NotificationService",
    chat: "aviary.chat.v1.ChatService",
    realtime: "aviary.realtime.v1.RealtimeService",
  };
  for (const [name, url] of Object.entries(mesh.upstreams)) {
    const { stdout } = await run(grpcurl, ["-plaintext", new URL(url).host, "list"], { timeout: 30_000 });
    const services = stdout.trim().split("\n");
    const own = expected[name];
    if (own === undefined) t.true(services.some((s) => s.startsWith("aviary.")), `${name} lists an aviary service: ${services.join(", ")}`);
    else t.true(services.includes(own), `${name} lists ${own}: ${services.join(", ")}`);
    t.true(services.includes("grpc.health.v1.Health") && services.includes("grpc.reflection.v1.ServerReflection"), name);
  }
  // The edge routes only the annotated methods: reflection is not one of them.
  const edge = await run(grpcurl, ["-plaintext", new URL(mesh.envoy.url).host, "list"], { timeout: 30_000 }).then(
    () => "answered",
    (e: { stderr?: string }) => e.stderr ?? "",
  );
  t.not(edge, "answered");
});
