// The short fault matrix (`make chaos` runs every fault, longer): a stack of
// its own (PostgreSQL, Redis, Kafka, toxiproxy in front of each, the services
// as processes) and four representative faults — a consumer SIGKILLed while
// events flow, the broker SIGKILLed, Redis flushed, the post service
// partitioned from PostgreSQL. After each heal the oracle, computed from the
// workload's own log, must match: nothing lost, nothing twice.
import test from "ava";
import { randomUUID } from "node:crypto";
import { eventually } from "../../services/runtime/test-support/infra.ts";
import { runFault, type MatrixOptions } from "../chaos/matrix.ts";
import { check, matches, type Verdict } from "../chaos/oracle.ts";
import { startChaosStack, type ChaosStack } from "../chaos/stack.ts";
import { connect, retrying, signUpCohort, Workload, type Clients } from "../chaos/workload.ts";

const options: MatrixOptions = { cohortSize: 5, followsPerAccount: 2, workers: 3, paceMs: 20, warmOps: 15, tailOps: 10 };

let stack: ChaosStack | undefined;
let clients: Clients;

test.before(async (t) => {
  // Its own Kafka JVM and nine service processes, on a busy 2-core machine.
  t.timeout(300_000);
  stack = await startChaosStack({ name: "chaos-test" });
  clients = connect(stack.urls);
});
test.after.always(async () => {
  await stack?.close();
});

for (const key of ["feed-consumer-kill", "kafka-kill", "redis-flush", "post-postgres-partition"]) {
  test.serial(`${key}: nothing lost, nothing doubled once healed`, async (t) => {
    t.timeout(240_000);
    const result = await runFault(stack!, clients, key, options, (line) => t.log(line));
    t.true(result.operations >= options.warmOps + options.tailOps, "the workload ran through the fault");
    t.deepEqual({ lost: result.lost, doubled: result.doubled, unexpected: result.unexpected }, { lost: 0, doubled: 0, unexpected: 0 }, result.details.join("\n"));
    t.not(result.recoveredMs, null, "recovered within the bound");
    if (result.lagAtKill !== undefined) t.true(result.lagAtKill > 0, "the consumer was killed with events it had not committed");
  });
}

// The matrix is only as good as its oracle: with no fault, a like taken back
// and a message sent behind the log's back must show as lost and unexpected.
test.serial("the oracle counts what the log does not explain and what went missing", async (t) => {
  t.timeout(120_000);
  const policy = { retryForMs: 30_000 };
  const log = { ops: [], failures: {}, refused: 0 };
  const accounts = await signUpCohort(clients, "chaos-oracle", 3, policy, log);
  const workload = new Workload(clients, accounts, policy, "chaos-oracle");
  await workload.followGraph(2);
  workload.start(2, 20);
  await eventually("some likes and messages", () => workload.log.ops.some((op) => op.kind === "like") && workload.log.ops.some((op) => op.kind === "message"), 60_000, 50);
  await workload.stop();
  // Each call has a 5 s deadline; on a loaded machine right after a fault test one can pass it,
  // so the oracle's reads and the two idempotent calls below are retried like the workload's.
  const checked = async (): Promise<Verdict> => {
    const answer = await retrying(policy, log, () => check(clients, workload, stack!.streams));
    if (answer === undefined) throw new Error("the oracle's reads kept failing past the retry policy");
    return answer;
  };
  let verdict: Verdict | undefined;
  await eventually("the untouched cohort to match", async () => matches((verdict = await checked())), 60_000, 500);

  const like = workload.log.ops.find((op) => op.kind === "like")!;
  await retrying(policy, log, () => clients.post.unlikePost({ postId: like.postId }, accounts.find((a) => a.userId === like.liker)!.call));
  const message = workload.log.ops.find((op) => op.kind === "message")!;
  const sender = accounts.find((a) => a.userId === message.sender)!;
  const outsider = { target: { case: "directUserId" as const, value: message.recipient }, clientMessageId: randomUUID(), text: "not in the log" };
  await retrying(policy, log, () => clients.chat.sendMessage(outsider, sender.call));
  verdict = await checked();
  t.log(verdict.details.join("\n"));
  t.true(verdict.lost >= 1, "the like taken back is missing from its post's count");
  t.true(verdict.unexpected >= 1, "the message nobody logged is unexpected");
  t.true(verdict.details.some((d) => d.startsWith("likes of post")));
  t.true(verdict.details.some((d) => d.startsWith("conversation")));
});
