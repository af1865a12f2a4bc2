// Signing-key rotation on a controllable clock (PGlite): a scheduled rotation
// publishes the new key before it signs, the old key signs until then and
// stays published until its last token expired; an immediate rotation
// switches at once.
import test from "ava";
import { openDatabase } from "@aviary/runtime/db/open";
import type { Database } from "@aviary/runtime/db/database";
import { loadKeyRing, type KeyRing } from "../src/domain/signing-keys.ts";
import { migrationsFolder } from "../src/server.ts";

const minute = 60_000;
const hour = 60 * minute;
let database: Database;

test.before(async () => {
  database = await openDatabase();
  await database.migrate(migrationsFolder, { schema: "auth" });
});
test.after.always(async () => {
  await database?.close();
});

function kids(ring: KeyRing): string[] {
  return ring.jwks().keys.map((key) => key.kid);
}

test.serial("scheduled rotation: published first, signs after the pre-publication window, old key unpublished after its tokens expired", async (t) => {
  let clock = Date.parse("2026-01-01T00:00:00Z");
  // accessTokenTtl 15 min → retired keys stay published 16 min; rotation every 24 h; pre-publish 5 min.
  const ring = await loadKeyRing(database.db, { accessTokenTtlSeconds: 900, rotationIntervalSeconds: 86_400, prepublishSeconds: 300, now: () => new Date(clock) });
  const first = ring.current().kid;
  t.deepEqual(kids(ring), [first], "the very first key signs at once");

  clock += 12 * hour;
  await ring.reload();
  t.deepEqual(kids(ring), [first], "not due yet: no new key");

  clock += 13 * hour;
  await ring.reload();
  const second = kids(ring)[1] ?? "";
  t.not(second, "", "due: a second key is published");
  t.is(ring.current().kid, first, "…but the old key still signs during pre-publication");

  clock += 4 * minute;
  t.is(ring.current().kid, first);
  clock += 1 * minute + 1;
  t.is(ring.current().kid, second, "the new key signs once its activation time passed, without a reload");
  await ring.reload();
  t.deepEqual(kids(ring), [first, second], "the old key stays published for its tokens");

  clock += 17 * minute;
  await ring.reload();
  t.deepEqual(kids(ring), [second], "unpublished once every token it signed has expired");
});

test.serial("immediate rotation switches at once, and overtakes a pending key", async (t) => {
  let clock = Date.parse("2027-01-01T00:00:00Z");
  const ring = await loadKeyRing(database.db, { accessTokenTtlSeconds: 900, rotationIntervalSeconds: 86_400, prepublishSeconds: 300, now: () => new Date(clock) });
  clock += 25 * hour;
  await ring.reload(); // schedules a pending key
  const pending = kids(ring).at(-1);
  const now = await ring.rotate();
  t.is(ring.current().kid, now);
  clock += 10 * minute; // past the pending key's activation time
  await ring.reload();
  t.is(ring.current().kid, now, "the overtaken pending key never signs");
  t.not(pending, now);
});
