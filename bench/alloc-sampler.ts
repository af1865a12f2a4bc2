// Loaded into a service with `--import` by a benchmark (bench/feed.ts,
// BENCH_FEED_ALLOC=1): what the service allocates per call, by origin.
//
// SIGUSR2 starts V8's sampling heap profiler, counting every sampled
// allocation, also those a scavenge or a mark-compact collected since (a
// request's objects die young, so a plain heap profile would show none of
// them), and counts the HTTP/2 streams the server starts; the next SIGUSR2
// stops both and writes `<ALLOC_SAMPLER_DIR>/alloc-<pid>-<n>.json` (and,
// with ALLOC_SAMPLER_RAW=1, the profile as `.heapprofile`): bytes
// allocated per started stream (per call, when nothing else calls the
// service meanwhile), in total and by origin (the npm package, or the repo
// file, that allocated; Node's own internals count for the nearest frame of
// either that called them).
//
// Bytes allocated per call is the figure that holds on a busy machine, where
// latencies and throughput swing from run to run: the young generation fills
// (and a scavenge pauses the process) once per so many bytes allocated.
import { subscribe, unsubscribe } from "node:diagnostics_channel";
import { Session } from "node:inspector/promises";
import { renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { summarize, type ProfileNode } from "./alloc-summary.ts";

const SAMPLING_INTERVAL_BYTES = 4096;
const dir = process.env["ALLOC_SAMPLER_DIR"] ?? tmpdir();

const session = new Session();
session.connect();
let sampling = false;
let written = 0;
let calls = 0;
const countCall = () => {
  calls += 1;
};

// Signals arrive while the previous toggle may still be running: serialise.
let toggling: Promise<void> = Promise.resolve();
process.on("SIGUSR2", () => {
  toggling = toggling.then(toggle).catch((error: unknown) => {
    process.stderr.write(`alloc-sampler: ${String(error)}\n`);
  });
});

async function toggle(): Promise<void> {
  if (!sampling) {
    calls = 0;
    subscribe("http2.server.stream.start", countCall);
    await session.post("HeapProfiler.startSampling", { samplingInterval: SAMPLING_INTERVAL_BYTES, includeObjectsCollectedByMinorGC: true, includeObjectsCollectedByMajorGC: true });
    sampling = true;
    process.stderr.write("alloc-sampler: sampling\n");
    return;
  }
  const { profile } = await session.post("HeapProfiler.stopSampling");
  unsubscribe("http2.server.stream.start", countCall);
  sampling = false;
  const file = join(dir, `alloc-${process.pid}-${written++}.json`);
  // ALLOC_SAMPLER_RAW=1 keeps the profile itself too (for DevTools' Memory tab or a script), before the summary announces the window.
  if (process.env["ALLOC_SAMPLER_RAW"] === "1") writeFileSync(file.replace(/\.json$/, ".heapprofile"), JSON.stringify(profile));
  writeFileSync(`${file}.tmp`, JSON.stringify(summarize(profile.head as ProfileNode, calls)));
  renameSync(`${file}.tmp`, file);
}
