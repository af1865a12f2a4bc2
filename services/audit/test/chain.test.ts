// The two hash rules side by side, on the real PostgreSQL: a log written
// under version 1 (migrations up to 0001, entries hashed over their
// cleartext), migrated by 0002 without touching those rows, then appended
// to under version 2. The whole chain verifies; erasing an account named in
// both kinds of entries keeps it verifying (version 1 entries by their link);
// an edit of an entry of either kind still fails at that entry.
import { cp, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { sql } from "drizzle-orm";
import { openDatabase } from "@aviary/runtime/db/open";
import { rowsOf } from "@aviary/runtime/db/rows";
import { infra, withClient } from "../../runtime/test-support/infra.ts";
import { freshDatabase } from "../../runtime/test-support/database.ts";
import { canonicalEncodingV1, firstBreak, GENESIS_HASH, type EntryFields } from "../src/domain/chain.ts";
import { appendEntries, entriesAfter } from "../src/store/entries.ts";
import { eraseAccount } from "../src/store/erasure.ts";
import { migrationsFolder } from "../src/server.ts";

const dora = crypto.randomUUID();
const eli = crypto.randomUUID();

const fields = (kind: string, actorId: string | undefined, subject: string, details: Record<string, string>, at: number): EntryFields => ({
  occurredAt: new Date(Date.UTC(2026, 0, 1, 0, 0, at)),
  kind,
  actorId,
  subject,
  details,
  sourceEventId: crypto.randomUUID(),
});

test("a version 1 log migrated and continued under version 2 verifies, before and after an erasure; edits of either kind fail at the entry", async (t) => {
  const urls = await infra();
  const database = await freshDatabase(urls.databaseUrl, "audit_chain_test");
  // The migrations as they were before version 2: 0000 and 0001 only.
  const before = await mkdtemp(join(tmpdir(), "aviary-audit-v1-"));
  const db = await openDatabase({ url: database.url });
  t.teardown(async () => {
    await db.close();
    await database.drop();
    await rm(before, { recursive: true, force: true });
  });
  await cp(migrationsFolder, before, { recursive: true });
  const journalPath = join(before, "meta", "_journal.json");
  const journal = JSON.parse(await readFile(journalPath, "utf8")) as { entries: Array<{ tag: string }> };
  journal.entries = journal.entries.filter((entry) => entry.tag.startsWith("0000") || entry.tag.startsWith("0001"));
  await writeFile(journalPath, JSON.stringify(journal));
  await db.migrate(before, { schema: "audit" });

  // Version 1 entries, as the old code wrote them.
  const old = [
    fields("auth.login_succeeded", dora, dora, { ip_address: "203.0.113.7", session_id: crypto.randomUUID() }, 1),
    fields("moderation.user_suspended", eli, dora, { reason: "spam" }, 2),
    fields("auth.login_succeeded", eli, eli, { ip_address: "203.0.113.8" }, 3),
  ];
  let prevHash = GENESIS_HASH;
  for (const [i, entry] of old.entries()) {
    const seq = i + 1;
    const hash = createHash("sha256").update(canonicalEncodingV1(seq, prevHash, entry)).digest("hex");
    await withClient(database.url, (pg) =>
      pg.query(`insert into audit.entries (seq, occurred_at, kind, actor_id, subject, details, source_event_id, prev_hash, hash) values ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, [
        seq,
        entry.occurredAt,
        entry.kind,
        entry.actorId ?? null,
        entry.subject,
        JSON.stringify(entry.details),
        entry.sourceEventId,
        prevHash,
        hash,
      ]),
    );
    prevHash = hash;
  }

  // The upgrade, then the current code appending.
  await db.migrate(migrationsFolder, { schema: "audit" });
  await appendEntries(db, [fields("moderation.report_created", eli, "report:1", { target: dora, reason: "spam" }, 4), fields("auth.login_succeeded", dora, dora, { ip_address: "203.0.113.9" }, 5)]);
  const versions = rowsOf(await db.db.execute(sql`select chain_version::int as v from audit.entries order by seq`)).map((row) => row["v"]);
  t.deepEqual(versions, [1, 1, 1, 2, 2], "the old entries keep version 1, new ones are version 2");
  const verify = async () => firstBreak({ seq: 0, hash: GENESIS_HASH }, await entriesAfter(db.db, 0, 100));
  t.is(await verify(), undefined, "both rules verify in one chain");

  t.is(await eraseAccount(db, dora, new Date()), 4, "every entry naming Dora, of either version");
  t.is(await verify(), undefined, "still intact after the erasure");
  const left = rowsOf(await db.db.execute(sql`select count(*)::int as n from audit.entries t where lower(t::text) like ${`%${dora}%`}`));
  t.is(left[0]?.["n"], 0, "Dora's id is in no entry");
  const ips = rowsOf(await db.db.execute(sql`select count(*)::int as n from audit.entries t where t::text like '%203.0.113.7%' or t::text like '%203.0.113.9%'`));
  t.is(ips[0]?.["n"], 0, "nor where she signed in from");
  const eliIp = rowsOf(await db.db.execute(sql`select count(*)::int as n from audit.entries t where t::text like '%203.0.113.8%'`));
  t.is(eliIp[0]?.["n"], 1, "Eli's entries are untouched");

  // Edits behind the trigger's back: an unerased version 1 entry, then a version 2 one.
  const edit = (statement: string) => withClient(database.url, (pg) => pg.query(`set session_replication_role = replica; ${statement}`));
  await edit(`update audit.entries set details = '{"ip_address": "198.51.100.1"}' where seq = 3`);
  t.deepEqual(await verify(), { seq: 3, problem: "hash" });
  await edit(`update audit.entries set details = '{"ip_address": "203.0.113.8"}' where seq = 3`);
  t.is(await verify(), undefined);
  await edit(`update audit.entries set details = details || '{"reason": "nothing"}' where seq = 4`);
  t.deepEqual(await verify(), { seq: 4, problem: "digest" });
});
