// post_find_posts (src/store/read-statements.ts) reads rows as the driver
// gives them and maps them itself; it must answer exactly what drizzle's
// select() of the table answers, on both adapters: real PostgreSQL
// (production) and PGlite (`make dev`), for live posts and tombstones, with
// and without media, mentions, hashtags, a reply and counts.
import test from "ava";
import { inArray } from "drizzle-orm";
import { openDatabase } from "@aviary/runtime/db/open";
import type { Database } from "@aviary/runtime/db/database";
import { freshDatabase } from "../../runtime/test-support/database.ts";
import { infra } from "../../runtime/test-support/infra.ts";
import { migrationsFolder } from "../src/server.ts";
import { postItems } from "../src/store/schema.ts";
import { postReadStatements } from "../src/store/read-statements.ts";
import type { PostRow } from "../src/store/posts.ts";

const adapters: Array<[string, () => Promise<{ database: Database; drop(): Promise<void> }>]> = [
  [
    "postgres",
    async () => {
      const fresh = await freshDatabase((await infra()).databaseUrl, "post_reads");
      return { database: await openDatabase({ url: fresh.url }), drop: fresh.drop };
    },
  ],
  ["pglite", async () => ({ database: await openDatabase({}), drop: async () => {} })],
];

function rows(): PostRow[] {
  const at = (ms: number) => new Date(Date.UTC(2026, 11, 4, 12, 0, 0) + ms);
  const base = { authorId: crypto.randomUUID(), replyToPostId: null, likeCount: 0, commentCount: 0, deletedAt: null, mediaIds: [], mentions: [], hashtags: [] };
  const first = crypto.randomUUID();
  return [
    { ...base, id: first, text: "plain", createdAt: at(1) },
    {
      ...base,
      id: crypto.randomUUID(),
      text: 'with "everything", {braces} and \\ a backslash',
      createdAt: at(123),
      mediaIds: [crypto.randomUUID(), crypto.randomUUID()],
      mentions: ["ada", "bob"],
      hashtags: ["birds", "two words", "NULL"],
      replyToPostId: first,
      likeCount: 9_007_199_254,
      commentCount: 3,
    },
    { ...base, id: crypto.randomUUID(), text: "", createdAt: at(999), deletedAt: at(5_000), likeCount: 2 },
  ];
}

for (const [name, open] of adapters) {
  test(`${name}: post_find_posts answers what drizzle's select() answers, tombstones included, and nothing for unknown ids`, async (t) => {
    const { database, drop } = await open();
    t.teardown(async () => {
      await database.close();
      await drop();
    });
    await database.migrate(migrationsFolder, { schema: "posts" });
    const written = rows();
    await database.db.insert(postItems).values(written);
    const ids = [...written.map((row) => row.id), crypto.randomUUID()];
    const byId = (a: PostRow, b: PostRow) => a.id.localeCompare(b.id);
    const viaStatement = (await postReadStatements(database.db).findPosts(ids)).sort(byId);
    const viaDrizzle = (await database.db.select().from(postItems).where(inArray(postItems.id, ids))).sort(byId);
    t.deepEqual(viaStatement, viaDrizzle);
    t.deepEqual(viaStatement, [...written].sort(byId), "as written");
    t.deepEqual(await postReadStatements(database.db).findPosts([]), []);
  });
}
