// `make chaos`: every fault of the matrix against a chaos stack of its own,
// one fresh cohort and workload per fault. Results go to
// bench/results/chaos.json and, as a table, to the "Fault matrix" section of
// docs/reliability.md. Exits non-zero when any fault lost, doubled or
// invented something, or did not recover within the bound.
//
//   node tools/chaos/run.ts [fault…]     only these faults (keys of `faults`)
//   node tools/chaos/run.ts --render     the section again from the saved JSON
import { readFile, writeFile } from "node:fs/promises";
import { cpus } from "node:os";
import { resolve } from "node:path";
import { serviceCommit, writeSection } from "../../bench/stack.ts";
import { repoRoot } from "../../services/runtime/test-support/infra.ts";
import { faults, RECOVERY_BOUND_MS, runFault, type FaultResult, type MatrixOptions } from "./matrix.ts";
import { startChaosStack } from "./stack.ts";
import { connect } from "./workload.ts";

const resultsPath = resolve(repoRoot, "bench/results/chaos.json");
const docsPath = resolve(repoRoot, "docs/reliability.md");
const START = "<!-- chaos:start (written by tools/chaos/run.ts) -->";
const END = "<!-- chaos:end -->";
const NEW_DOC = `# Reliability

How Aviary keeps its data when its infrastructure fails, measured on real
servers. Each section is written by the tool that measured it.
`;

/** Longer than the short matrix in make test (tools/test/chaos.test.ts): more users, more work around each fault. */
const options: MatrixOptions = { cohortSize: 8, followsPerAccount: 3, workers: 3, paceMs: 50, warmOps: 30, tailOps: 30 };

interface Saved {
  ranAt: string;
  commit: string;
  cores: number;
  options: MatrixOptions;
  recoveryBoundMs: number;
  results: FaultResult[];
}

const clean = (r: FaultResult) => r.lost === 0 && r.doubled === 0 && r.unexpected === 0 && r.recoveredMs !== null;

function render(saved: Saved): string {
  const seconds = (ms: number | null) => (ms === null ? `not within ${saved.recoveryBoundMs / 1000} s` : `${(ms / 1000).toFixed(1)} s`);
  const failed = (calls: Record<string, number>) => Object.entries(calls).map(([code, n]) => `${code} ${n}`).join(", ") || "none";
  const rows = saved.results.map((r) => `| ${r.fault} | ${r.what}${r.lagAtKill === undefined ? "" : ` (${r.lagAtKill} uncommitted at the kill)`}${r.streamsChecked ? "" : " ¹"} | ${r.operations} | ${r.maybe.committed + r.maybe.absent} (${r.maybe.committed} committed) | ${r.lost} | ${r.doubled} | ${r.unexpected} | ${seconds(r.recoveredMs)} | ${failed(r.failedCalls)} |`);
  const failing = saved.results.filter((r) => !clean(r));
  const notes = failing.map((r) => `- **${r.fault}**: ${r.details.join("; ") || "no discrepancy listed"}`);
  return [
    "## Fault matrix",
    "",
    `\`make chaos\` (tools/chaos/run.ts), ${saved.ranAt}, commit ${saved.commit}, ${saved.cores} cores. A stack of its own: PostgreSQL, Redis and Kafka from`,
    "deploy/local/infra.sh in a private state dir, toxiproxy in front of each for every service process (Kafka: one proxy, its",
    "advertised address), the services as processes with each consumer role on its own (feed, notification, chat delivery, user).",
    `Per fault a fresh cohort of ${saved.options.cohortSize} users follows, posts, likes, comments and sends direct messages (${saved.options.workers} workers)`,
    "through the public APIs while the fault is injected and healed. The oracle, from the workload's log alone, checks every",
    "home feed (own and followees' posts, each once), every like and comment count, every user's notifications (one per",
    "follow, like and comment received), every conversation (each client message once, seqs gapless) and every member's",
    "realtime stream history (each message of their conversations once: chat delivery).",
    "",
    "- *operations*: ops the API answered OK, plus *maybes*: CreatePost/CreateComment (no idempotency key) that failed",
    "  transiently; each is settled against the post service's own lists (committed anyway, or not) and never counted lost.",
    "  Likes, follows and messages are retried with the same request (messages: the same client_message_id).",
    "- *unexpected*: present although no logged operation explains it.",
    "- *time to recover*: from the heal until every check matched, polled every 0.5 s (the workload runs on for its tail first);",
    `  bound ${saved.recoveryBoundMs / 1000} s (twice the bus's session timeout, join timeout and retry cap).`,
    "- *failed calls*: every call of the workload that failed, by code, retried ones included (ResourceExhausted: the chat",
    "  send rate limit, retried). The cohort's setup before the fault is left out (bench/results/chaos.json has it).",
    "",
    "| fault | what | operations | maybes | lost | doubled | unexpected | time to recover | failed calls |",
    "|---|---|---|---|---|---|---|---|---|",
    ...rows,
    "",
    "¹ Stream histories not checked: they live in Redis, which this fault empties; a resuming client gets `recovered: false` and re-reads with the list RPCs, by design. Conversations are checked as everywhere.",
    "",
    "While Redis is stopped, authenticated calls fail UNAVAILABLE: every service's session revocation check reads the Redis",
    "denylist and fails closed (docs/decisions.md, Auth). Nothing is lost, but nothing authenticated is served either until it is back.",
    "",
    failing.length === 0 ? "Every fault: nothing lost, nothing doubled." : `Discrepancies left at the bound:\n\n${notes.join("\n")}`,
    "",
  ].join("\n");
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  if (args[0] === "--render") {
    const saved = JSON.parse(await readFile(resultsPath, "utf8")) as Saved;
    await writeSection(docsPath, START, END, render(saved), NEW_DOC);
    return 0;
  }
  const keys = args.length > 0 ? args : Object.keys(faults);
  for (const key of keys) if (faults[key] === undefined) throw new Error(`unknown fault ${key} (one of ${Object.keys(faults).join(", ")})`);
  const t0 = Date.now();
  const say = (line: string) => console.log(`[chaos ${((Date.now() - t0) / 1000).toFixed(0)}s] ${line}`);
  const stack = await startChaosStack({ name: "chaos", log: say });
  const results: FaultResult[] = [];
  try {
    const clients = connect(stack.urls);
    for (const key of keys) results.push(await runFault(stack, clients, key, options, say));
  } finally {
    await stack.close();
  }
  const saved: Saved = { ranAt: new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC", commit: serviceCommit("services"), cores: cpus().length, options, recoveryBoundMs: RECOVERY_BOUND_MS, results };
  await writeFile(resultsPath, `${JSON.stringify(saved, null, 2)}\n`);
  await writeSection(docsPath, START, END, render(saved), NEW_DOC);
  say(`results in ${resultsPath}; table in ${docsPath}; logs in ${stack.logDir}`);
  return results.every(clean) ? 0 : 1;
}

process.exitCode = await main();
