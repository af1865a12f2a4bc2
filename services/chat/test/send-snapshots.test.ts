// The per-instance snapshots behind a send without a lookup
// (src/write/send-snapshots.ts): newest number wins, least recently sent-to
// goes first, and sends of one conversation take turns.
import test from "ava";
import { sendSnapshots } from "../src/write/send-snapshots.ts";

const snapshot = (lastSeq: number, memberIds = ["a", "b"]) => ({ kind: "group", title: "t", lastSeq, memberIds });

test("remember keeps the snapshot with the highest number; forget drops it", (t) => {
  const snapshots = sendSnapshots();
  snapshots.remember("c", snapshot(5));
  snapshots.remember("c", snapshot(3));
  t.is(snapshots.get("c")?.lastSeq, 5);
  snapshots.remember("c", snapshot(6, ["a"]));
  t.deepEqual(snapshots.get("c"), snapshot(6, ["a"]));
  snapshots.forget("c");
  t.is(snapshots.get("c"), undefined);
});

test("past either limit, the conversations sent to least recently are dropped", (t) => {
  const snapshots = sendSnapshots({ conversations: 2, memberIds: 5 });
  const kept = () => ["a", "b", "c", "d"].filter((id) => snapshots.get(id) !== undefined);
  snapshots.remember("a", snapshot(1));
  snapshots.remember("b", snapshot(1));
  snapshots.remember("a", snapshot(2)); // a is now the most recent
  snapshots.remember("c", snapshot(1));
  t.deepEqual(kept(), ["a", "c"]);
  // Three conversations and 8 member ids: a (the least recent) goes, then c, until 4 ids are left.
  snapshots.remember("d", snapshot(1, ["a", "b", "c", "d"]));
  t.deepEqual(kept(), ["d"]);
  snapshots.forget("d");
  snapshots.remember("a", snapshot(3, ["a", "b", "c", "d", "e"]));
  t.deepEqual(kept(), ["a"]);
});

test("sends of one conversation run one at a time, in order, a failure not stopping the next; other conversations do not wait", async (t) => {
  const snapshots = sendSnapshots();
  const log: string[] = [];
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const first = snapshots.inTurn("c", async () => {
    log.push("first starts");
    await held;
    log.push("first ends");
    throw new Error("first failed");
  });
  const second = snapshots.inTurn("c", async () => {
    log.push("second runs");
    return 2;
  });
  const elsewhere = await snapshots.inTurn("d", async () => {
    log.push("elsewhere runs");
    return "d";
  });
  t.is(elsewhere, "d");
  t.deepEqual(log, ["first starts", "elsewhere runs"]);
  release();
  await t.throwsAsync(first, { message: "first failed" });
  t.is(await second, 2);
  t.deepEqual(log, ["first starts", "elsewhere runs", "first ends", "second runs"]);
});
