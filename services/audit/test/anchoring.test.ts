// Anchoring the chain head outside the database, on real PostgreSQL, Kafka
// and S3: the head's seq and hash land in the suite's bucket and VerifyChain
// checks the entry there; the timer anchors on its own; a tail rewritten
// consistently (every hash recomputed, so the chain alone finds nothing)
// fails VerifyChain at the anchor, and the job refuses to anchor the forgery.
// Serial: the last test rewrites the log.
import test from "ava";
import { sql } from "drizzle-orm";
import { openS3Storage } from "@aviary/runtime/blob/s3";
import type { BlobStorage } from "@aviary/runtime/blob/storage";
import { createLogger } from "@aviary/runtime/log";
import { eventually, infra } from "../../runtime/test-support/infra.ts";
import { APPLY_WAIT_MS } from "../../moderation/test/harness.ts";
import { dropBucket, s3Client } from "../../media/test/harness.ts";
import { anchorHistoryKey, LATEST_ANCHOR_KEY, parseAnchor, type Anchor } from "../src/domain/anchor.ts";
import { chain, GENESIS_HASH, type ChainedEntry } from "../src/domain/chain.ts";
import { startAnchoring } from "../src/anchoring.ts";
import { blobAnchorStore } from "../src/store/anchors.ts";
import { entriesAfter, rowOf } from "../src/store/entries.ts";
import { entries } from "../src/store/schema.ts";
import { walkChain } from "../src/store/verify.ts";
import { startTestAudit, type TestAudit } from "./harness.ts";

let audit: TestAudit;
let bucket: BlobStorage;

test.before(async () => {
  audit = await startTestAudit();
  const { s3 } = await infra();
  bucket = await openS3Storage({ endpoint: s3.endpoint, region: s3.region, accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey, bucket: audit.anchorBucket, forcePathStyle: true });
});

test.after.always(async () => {
  await bucket?.close();
  await audit?.close();
});

/** The whole chain, slice after slice, as an admin would check it. */
async function verifyWhole() {
  let afterSeq = 0n;
  for (;;) {
    const slice = await audit.client.verifyChain({ afterSeq }, audit.moderation.admin.call);
    if (!slice.intact || slice.nextAfterSeq === 0n) return slice;
    afterSeq = slice.nextAfterSeq;
  }
}

async function anchorIn(storage: BlobStorage, key = LATEST_ANCHOR_KEY): Promise<Anchor | undefined> {
  return (await storage.head(key)) === undefined ? undefined : parseAnchor(await storage.readStart(key, 4096));
}

async function signedUp(label: string): Promise<void> {
  const account = await audit.moderation.signUp(label);
  await eventually(`${label}'s registration in the log`, async () => (await audit.entriesAbout(account.userId)).length > 0, APPLY_WAIT_MS);
}

test.serial("the head's seq and hash are written to S3; VerifyChain reports none before and checks the anchored entry after", async (t) => {
  await signedUp("ana");
  const before = await verifyWhole();
  t.true(before.intact);
  t.is(before.anchorSeq, 0n, "no anchor yet");
  t.false(before.anchorChecked);

  const outcome = await audit.service.anchorNow();
  if (outcome.kind !== "anchored") return t.fail(`anchoring: ${outcome.kind}`);
  const { anchor } = outcome;
  t.deepEqual(await anchorIn(bucket), anchor, "the latest anchor is in the bucket");
  t.deepEqual(await anchorIn(bucket, anchorHistoryKey(anchor.seq)), anchor, "and in the history under its seq");
  const [stored] = await audit.query<{ hash: string }>("select hash from audit.entries where seq = $1", [anchor.seq]);
  t.is(stored?.hash, anchor.hash, "the anchored hash is the entry's");

  const after = await verifyWhole();
  t.true(after.intact);
  t.true(after.anchorChecked);
  t.is(after.anchorSeq, BigInt(anchor.seq));
  t.is(after.anchoredAt?.seconds, BigInt(Math.floor(anchor.anchoredAt.getTime() / 1000)));
});

test.serial("the timer anchors on its own, every interval", async (t) => {
  // A job of its own on the same log, into a second bucket: the service's timer is set to a day.
  const { s3 } = await infra();
  const timerBucket = `${audit.anchorBucket}-timer`;
  const storage = await openS3Storage({ endpoint: s3.endpoint, region: s3.region, accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey, bucket: timerBucket, forcePathStyle: true, createBucket: true });
  const intervalMs = 200;
  const lines: string[] = [];
  const logger = createLogger("audit", "info", { destination: { write: (line: string) => void lines.push(line) } });
  const job = startAnchoring({ database: audit.service.database, anchors: blobAnchorStore(storage), intervalMs, logger });
  t.teardown(async () => {
    await job.stop();
    await storage.close();
    const client = s3Client(s3);
    await dropBucket(client, timerBucket);
    client.destroy();
  });
  // Many intervals of slack: the machine is busy, and the first run walks the whole log.
  await eventually("an anchor from the timer", async () => (await anchorIn(storage)) !== undefined, Math.max(APPLY_WAIT_MS, intervalMs * 100));
  const anchor = (await anchorIn(storage))!;
  const logged = lines.map((line) => JSON.parse(line) as { msg: string; seq?: number; hash?: string }).find((record) => record.msg === "audit chain anchored" && record.seq === anchor.seq);
  t.is(logged?.hash, anchor.hash, "each anchor is logged too");
});

test.serial("a log that ends before its anchor is reported at the first missing entry", async (t) => {
  const [head] = await audit.query<{ seq: string; hash: string }>("select seq::text, hash from audit.entries order by seq desc limit 1");
  const headSeq = Number(head!.seq);
  // As if the last entries had been removed after an anchor of a later head (removing rows for real would spoil the next test).
  const walk = await walkChain(audit.service.database.db, { seq: 0, hash: GENESIS_HASH }, Number.POSITIVE_INFINITY, { seq: headSeq + 1_000_000, hash: "f".repeat(64), anchoredAt: new Date() });
  t.false(walk.intact);
  if (walk.intact) return;
  t.is(walk.problem, "anchor");
  t.true(walk.firstBadSeq > headSeq, "past the entries there are");
});

test.serial("a tail rewritten consistently passes the chain's own check but fails at the anchor, and is never anchored", async (t) => {
  await signedUp("ben");
  const outcome = await audit.service.anchorNow();
  t.not(outcome.kind, "broken");
  const anchor = (await anchorIn(bucket))!;
  t.true(anchor.seq > 2, "entries before the anchor to keep");

  // An attacker with database access rewrites the last entries from two before the anchor on, recomputing every hash,
  // holding the chain's lock so that no append slips in between (the consumer's appends then link to the forgery).
  const from = anchor.seq - 2;
  const forged = await audit.service.database.db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended('audit.entries', 0))`);
    await tx.execute(sql`set local session_replication_role = replica`);
    const tail = await entriesAfter(tx, from - 1, 1_000_000);
    const [previous] = await entriesAfter(tx, from - 2, 1);
    let link: { seq: number; hash: string } = previous ?? { seq: 0, hash: GENESIS_HASH };
    const rewritten: ChainedEntry[] = [];
    for (const row of tail) {
      const entry = chain(link, { occurredAt: row.occurredAt, kind: row.kind, actorId: row.actorId, subject: row.subject ?? "", details: { ...row.details, rewritten: "yes" }, sourceEventId: row.sourceEventId });
      rewritten.push(entry);
      link = entry;
    }
    await tx.execute(sql`delete from audit.entries where seq >= ${from}`);
    await tx.insert(entries).values(rewritten.map(rowOf));
    return rewritten;
  });
  t.not(forged.find((entry) => entry.seq === anchor.seq)?.hash, anchor.hash);

  // The chain alone: every link and hash after the anchor holds.
  const afterAnchor = await audit.client.verifyChain({ afterSeq: BigInt(anchor.seq) }, audit.moderation.admin.call);
  t.true(afterAnchor.intact, "the forgery is consistent in itself");
  // The whole check compares with the anchor.
  const whole = await verifyWhole();
  t.false(whole.intact);
  t.is(whole.problem, "anchor");
  t.is(whole.firstBadSeq, BigInt(anchor.seq));
  t.is(whole.anchorSeq, BigInt(anchor.seq));

  // The job will not anchor the rewritten head: the anchor in force stays the original.
  const refused = await audit.service.anchorNow();
  t.is(refused.kind, "broken");
  if (refused.kind === "broken") t.is(refused.firstBadSeq, anchor.seq);
  t.deepEqual(await anchorIn(bucket), anchor);
});
