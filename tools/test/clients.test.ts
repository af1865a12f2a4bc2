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
import { infra, infraSh, repoRoot, uniqueName } from "../../services/runtime/test-support/infra.ts";
import { startGroupsAtPresent } from "../../services/runtime/test-support/consumer-groups.ts";
import { postEventsTopic, userEventsTopic } from "../../services/notification/src/events/consume.ts";
import { authEventsTopic } from "../../services/user/src/events/consume.ts";

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
  // The user service's profiles group and the feed's group are new on the
  // shared topics: started at the present, so the example's sign-ups, follow
  // and posts are not queued behind every earlier suite's events.
  const groups = { profiles: uniqueName("user_profiles_clients"), feed: uniqueName("feed_clients") };
  await startGroupsAtPresent((await infra()).kafkaBrokers, [
    { groupId: groups.profiles, topics: [authEventsTopic] },
    { groupId: groups.feed, topics: [postEventsTopic, userEventsTopic] },
  ]);
  const env = { user: { USER_PROFILES_GROUP: groups.profiles }, feed: { FEED_GROUP: groups.feed } };
  [mesh, , grpcurl] = await Promise.all([startTestMesh({ env }), build, tool]);
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

/** What every run must show: the first post read from the home feed, the second seen live on the stream, then first in the feed. */
function assertRun(t: import("ava").ExecutionContext, steps: Step[]): void {
  const names = steps.map((s) => s.step);
  t.deepEqual(
    names.filter((n) => n !== "live_feed_updated"),
    ["signed_in", "signed_in", "followed", "posted", "home_feed", "stream_ready", "posted", "home_feed", "done"],
  );
  const [first, second] = steps.filter((s) => s.step === "posted");
  const [feedBefore, feedAfter] = steps.filter((s) => s.step === "home_feed");
  t.is((feedBefore!["post_ids"] as string[])[0], first!["post_id"] as string);
  const live = steps.filter((s) => s.step === "live_feed_updated");
  t.true(live.some((s) => s["newest_post_id"] === second!["post_id"]), "the second post's FeedUpdated hint arrived on Ben's stream");
  t.deepEqual((feedAfter!["post_ids"] as string[]).slice(0, 2), [second!["post_id"] as string, first!["post_id"] as string]);
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
