// bench/alloc-sampler.ts, the benchmarks' bytes-per-call probe: its
// attribution, and a real process it is loaded into counting real calls.
import test from "ava";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { connect } from "node:http2";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { SUMMARY_WAIT_MS, summarize, type AllocationSummary, type ProfileNode } from "../../bench/alloc-summary.ts";

const repo = resolve(import.meta.dirname, "../..");
const node = (url: string, selfSize: number, children: ProfileNode[] = []): ProfileNode => ({ callFrame: { url }, selfSize, children });

test("bytes go to the package or repo file that allocated them, Node's internals to their caller", (t) => {
  const grpc = pathToFileURL(join(repo, "node_modules/@grpc/grpc-js/build/src/server.js")).href;
  const feed = pathToFileURL(join(repo, "services/feed/src/read/skeleton.ts")).href;
  const ioredis = join(repo, "node_modules/ioredis/built/Redis.js");
  const head = node("", 0, [
    node(grpc, 400, [node("node:internal/http2/core", 200), node("", 100)]),
    node(feed, 300, [node(ioredis, 100)]),
    node("node:internal/timers", 50),
  ]);
  const summary = summarize(head, 10);
  t.is(summary.bytes, 1150);
  t.is(summary.bytesPerCall, 115);
  t.deepEqual(
    summary.byOrigin.map(({ origin, bytesPerCall }) => [origin, bytesPerCall]),
    [
      ["@grpc/grpc-js", 70],
      ["services/feed/src/read/skeleton.ts", 30],
      ["ioredis", 10],
      ["(node internals, no caller of ours)", 5],
    ],
  );
  t.is(summarize(head, 0).bytesPerCall, 1150, "no call counted: the whole window");
});

test("loaded into a server, it counts the calls between two signals and reports bytes per call", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "aviary-alloc-test-"));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // A plain HTTP/2 server that allocates about 64 KB per request, so the sampler (one sample per 4 KB) sees it.
  const server = `
    const http2 = require("node:http2");
    const s = http2.createServer();
    s.on("stream", (stream) => { const junk = Array.from({ length: 1024 }, (_, i) => ({ i, s: "x" + i })); stream.respond({ ":status": 200 }); stream.end(String(junk.length)); });
    s.listen(0, "127.0.0.1", () => console.log(s.address().port));`;
  const child = spawn(process.execPath, [`--import=${join(repo, "bench/alloc-sampler.ts")}`, "-e", server], { env: { ...process.env, ALLOC_SAMPLER_DIR: dir }, stdio: ["ignore", "pipe", "pipe"] });
  t.teardown(() => child.kill("SIGKILL"));
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString("utf8")));
  const [portLine] = (await once(child.stdout, "data")) as [Buffer];
  const port = Number(portLine.toString("utf8").trim());

  /** Polls `condition` while the server lives, for at most SUMMARY_WAIT_MS (what bench/feed.ts allows too). */
  const until = async (what: string, condition: () => Promise<boolean> | boolean) => {
    const deadline = performance.now() + SUMMARY_WAIT_MS;
    while (!(await condition())) {
      if (child.exitCode !== null) throw new Error(`the server exited while waiting for ${what}: ${stderr}`);
      if (performance.now() > deadline) throw new Error(`timed out after ${SUMMARY_WAIT_MS} ms waiting for ${what}`);
      await new Promise((done) => setTimeout(done, 20));
    }
  };

  child.kill("SIGUSR2");
  await until("the sampler to start", () => stderr.includes("alloc-sampler: sampling"));
  const session = connect(`http://127.0.0.1:${port}`);
  t.teardown(() => session.close());
  const CALLS = 25;
  for (let i = 0; i < CALLS; i++) {
    const request = session.request({ ":path": "/" });
    request.resume();
    request.end();
    await once(request, "end");
  }
  child.kill("SIGUSR2");
  let files: string[] = [];
  await until("the summary", async () => (files = (await readdir(dir)).filter((name) => name.endsWith(".json"))).length > 0);
  t.deepEqual(files, [`alloc-${child.pid}-0.json`]);
  const summary = JSON.parse(await readFile(join(dir, files[0]!), "utf8")) as AllocationSummary;
  t.is(summary.calls, CALLS, "one call per HTTP/2 stream the server started while sampling");
  t.true(summary.bytesPerCall > 16 * 1024, `about 64 KB per call allocated, ${summary.bytesPerCall} reported`);
  t.is(summary.byOrigin[0]?.origin, "[eval]", `the server's own code allocated most: ${JSON.stringify(summary.byOrigin.slice(0, 3))}`);
});
