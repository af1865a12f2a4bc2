// Diagnosis for the chat send path: CPU per SendMessage in a closed loop,
// for comparing two trees (run it on each, alternating). The open-loop chat
// bench (bench/chat.ts) near the machine's limit either holds or falls
// behind for good, so one run per rate says little about a change's cost;
// a closed loop below saturation measures the cost itself.
//
// The chat test harness runs chat, auth and user in this process (their CPU
// is this process's), on the real PostgreSQL, Redis and Kafka of
// `make infra-up` (DATABASE_URL, REDIS_URL, KAFKA_BROKERS from .infra/env).
// Three loads, each warmed up and then measured in rounds: sends spread over
// 8 groups of 10 and over 8 direct conversations (4 in flight), and 16 at
// once into one group (where concurrent sends of one conversation meet).
// Prints CPU per send of this process and of the PostgreSQL backends of the
// run's databases, and sends/s; writes bench/results/chat-send.json.
//
//   node bench/chat-send.ts   (BENCH_CHAT_SEND_ROUNDS, BENCH_CHAT_SEND_COUNT)
import { writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { startTestChat, type Signed, type TestChat } from "../services/chat/test/harness.ts";
import { fullMeter } from "./stack.ts";
import { repo, round } from "./support.ts";

const env = process.env;
const ROUNDS = Number(env["BENCH_CHAT_SEND_ROUNDS"] ?? 3);
const SENDS = Number(env["BENCH_CHAT_SEND_COUNT"] ?? 1_500);
const WARMUP = Math.ceil(SENDS / 3);

interface Load {
  name: string;
  conversations: string[];
  concurrency: number;
  /** Who sends the i-th message. */
  sender(i: number): Signed;
}

interface Round {
  processMsPerSend: number;
  postgresMsPerSend: number;
  sendsPerSecond: number;
}

if (!(env["DATABASE_URL"] && env["REDIS_URL"] && env["KAFKA_BROKERS"])) {
  console.error("bench/chat-send.ts needs the real stack: source .infra/env after deploy/local/infra.sh up");
  process.exit(2);
}

const chat = await startTestChat({ CHAT_SEND_RATE: "1000000/1s" });
try {
  const loads = await setUp(chat);
  const databases = await databaseNames(chat);
  const results: Record<string, Round[]> = {};
  for (const load of loads) {
    await run(chat, load, WARMUP);
    const rounds: Round[] = [];
    for (let r = 0; r < ROUNDS; r++) {
      const meter = fullMeter({ harness: process.pid }, databases);
      meter.start();
      await run(chat, load, SENDS);
      const cpu = meter.stop();
      rounds.push({
        processMsPerSend: round((cpu.msByProcess["harness"] ?? 0) / SENDS, 3),
        postgresMsPerSend: round((cpu.msByProcess["postgres"] ?? 0) / SENDS, 3),
        sendsPerSecond: Math.round(SENDS / (cpu.wallMs / 1000)),
      });
    }
    results[load.name] = rounds;
    console.log(`${load.name}: ${rounds.map((x) => `process ${x.processMsPerSend} ms, postgres ${x.postgresMsPerSend} ms, ${x.sendsPerSecond}/s`).join(" | ")}`);
  }
  const out = resolve(repo, "bench/results/chat-send.json");
  await writeFile(out, `${JSON.stringify({ at: new Date().toISOString(), sendsPerRound: SENDS, results }, null, 2)}\n`);
  console.log(`written to ${out}`);
} finally {
  await chat.close();
}

async function setUp(c: TestChat): Promise<Load[]> {
  const users = await Promise.all(Array.from({ length: 10 }, () => c.signUp()));
  const owner = users[0]!;
  const groups: string[] = [];
  for (let g = 0; g < 8; g++) {
    const { conversation } = await c.client.createGroup({ title: `bench ${g}`, memberIds: users.slice(1).map((u) => u.userId) }, owner.call);
    groups.push(conversation!.conversationId);
  }
  const directs: string[] = [];
  for (const other of users.slice(1, 9)) {
    const { message } = await c.client.sendMessage({ target: { case: "directUserId", value: other.userId }, clientMessageId: crypto.randomUUID(), text: "hi" }, owner.call);
    directs.push(message!.conversationId);
  }
  const anyMember = (i: number) => users[i % users.length]!;
  return [
    { name: "8 groups of 10, 4 in flight", conversations: groups, concurrency: 4, sender: anyMember },
    { name: "8 direct conversations, 4 in flight", conversations: directs, concurrency: 4, sender: () => owner },
    { name: "one group, 16 in flight", conversations: [groups[0]!], concurrency: 16, sender: anyMember },
  ];
}

/** `count` sends, `load.concurrency` at a time, round robin over the conversations. */
async function run(c: TestChat, load: Load, count: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < count; i = next++) {
      const target = { case: "conversationId" as const, value: load.conversations[i % load.conversations.length]! };
      await c.client.sendMessage({ target, clientMessageId: crypto.randomUUID(), text: `bench ${i}` }, load.sender(i).call);
    }
  };
  await Promise.all(Array.from({ length: load.concurrency }, worker));
}

/** The run's databases (chat's and the user service's), for the PostgreSQL meter. */
async function databaseNames(c: TestChat): Promise<string[]> {
  const [row] = await c.query<{ name: string }>("select current_database() as name");
  return [row!.name, new URL(c.user.databaseUrl).pathname.slice(1)];
}
