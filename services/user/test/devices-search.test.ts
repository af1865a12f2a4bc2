// Push devices and user search against real PostgreSQL, Redis and Kafka.
import test from "ava";
import { Code, type ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "@aviary/gen/google/rpc/error_details_pb";
import { Platform } from "@aviary/gen/aviary/user/v1/user_pb";
import { rejection, startTestUser, type Account, type TestUser } from "./harness.ts";

let users: TestUser;
test.before(async () => {
  users = await startTestUser();
});
test.after.always(async () => {
  await users?.close();
});

test("RegisterDevice is idempotent per (user, token); ListDevices pages; others' devices are NOT_FOUND", async (t) => {
  const [a, b] = await Promise.all([users.signUp({ label: "dev-a" }), users.signUp({ label: "dev-b" })]);
  const first = await users.client.registerDevice({ platform: Platform.IOS, token: "apns-token-1" }, a.call);
  const again = await users.client.registerDevice({ platform: Platform.IOS, token: "apns-token-1" }, a.call);
  t.is(again.device?.deviceId, first.device?.deviceId);
  await users.client.registerDevice({ platform: Platform.ANDROID, token: "fcm-token-2" }, a.call);
  await users.client.registerDevice({ platform: Platform.WEB, token: "https://push.example/3" }, a.call);
  // The same token for another user is another device.
  const bDevice = await users.client.registerDevice({ platform: Platform.IOS, token: "apns-token-1" }, b.call);
  t.not(bDevice.device?.deviceId, first.device?.deviceId);

  const page1 = await users.client.listDevices({ pageSize: 2 }, a.call);
  const page2 = await users.client.listDevices({ pageSize: 2, pageToken: page1.nextPageToken }, a.call);
  t.is(page2.nextPageToken, "");
  t.deepEqual(
    [...page1.devices, ...page2.devices].map((d) => [d.platform, d.token]),
    [
      [Platform.WEB, "https://push.example/3"],
      [Platform.ANDROID, "fcm-token-2"],
      [Platform.IOS, "apns-token-1"],
    ],
  );
  t.deepEqual((await users.client.listDevices({}, b.call)).devices.map((d) => d.deviceId), [bDevice.device?.deviceId]);

  t.is((await rejection(users.client.removeDevice({ deviceId: first.device?.deviceId ?? "" }, b.call))).code, Code.NotFound);
  await users.client.removeDevice({ deviceId: first.device?.deviceId ?? "" }, a.call);
  t.is((await rejection(users.client.removeDevice({ deviceId: first.device?.deviceId ?? "" }, a.call))).code, Code.NotFound);
  t.is((await users.client.listDevices({}, a.call)).devices.length, 2);
  t.is((await users.client.listDevices({}, b.call)).devices.length, 1, "b's device with the same token stays");

  t.is((await rejection(users.client.registerDevice({ platform: Platform.UNSPECIFIED, token: "x" }, a.call))).code, Code.InvalidArgument);
  t.is((await rejection(users.client.registerDevice({ platform: Platform.IOS, token: "x".repeat(4097) }, a.call))).code, Code.InvalidArgument);
  await users.client.registerDevice({ platform: Platform.IOS, token: "x".repeat(4096) }, a.call);
});

test("SearchUsers ranks exact username, username prefix, display-name prefix, then word prefix; pages; hides blocks", async (t) => {
  const tag = `q${Date.now().toString(36)}`;
  const [viewer, exact, prefixed, display, word, blocker] = await Promise.all(
    ["viewer", "exact", "prefixed", "display", "word", "blocker"].map((label) => users.signUp({ label })),
  );
  await users.client.updateProfile({ username: tag }, exact!.call);
  await users.client.updateProfile({ username: `${tag}_two` }, prefixed!.call);
  await users.client.updateProfile({ username: `zz_${tag}`, displayName: `${tag.toUpperCase()} Display` }, display!.call);
  await users.client.updateProfile({ username: `yy_${tag}`, displayName: `Someone ${tag}` }, word!.call);
  await users.client.updateProfile({ username: `${tag}_blocker` }, blocker!.call);
  await users.client.block({ userId: viewer!.userId }, blocker!.call);

  const all = await users.client.searchUsers({ query: `@${tag.toUpperCase()}` }, viewer!.call);
  t.deepEqual(
    all.profiles.map((p) => p.userId),
    [exact!.userId, prefixed!.userId, display!.userId, word!.userId],
  );

  const seen: string[] = [];
  let pageToken = "";
  do {
    const page = await users.client.searchUsers({ query: tag, pageSize: 1, pageToken }, viewer!.call);
    seen.push(...page.profiles.map((p) => p.userId));
    pageToken = page.nextPageToken;
  } while (pageToken !== "" && seen.length < 10);
  t.deepEqual(seen, all.profiles.map((p) => p.userId));

  // A token only continues its own query.
  const first = await users.client.searchUsers({ query: tag, pageSize: 1 }, viewer!.call);
  t.is((await rejection(users.client.searchUsers({ query: `${tag}_`, pageToken: first.nextPageToken }, viewer!.call))).code, Code.InvalidArgument);
  // LIKE wildcards are literal.
  t.deepEqual((await users.client.searchUsers({ query: "%" }, viewer!.call)).profiles, []);
  t.is((await rejection(users.client.searchUsers({ query: " @ " }, viewer!.call))).code, Code.InvalidArgument);
});

const fieldsOf = (error: ConnectError) => error.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field));

/** Changes one character of the token's signature part: a well-formed token that was never issued. */
function tamper(token: string): string {
  const [body, mac] = token.split(".") as [string, string];
  return `${body}.${mac.slice(0, -2)}${mac.endsWith("AA") ? "BB" : "AA"}`;
}

/** Another cursor body under the original signature: the signature no longer matches. */
function reforge(token: string, cursor: object): string {
  const mac = token.split(".")[1] ?? "";
  return `${Buffer.from(JSON.stringify(cursor)).toString("base64url")}.${mac}`;
}

async function walk<T>(fetchPage: (pageToken: string) => Promise<{ items: T[]; next: string }>, maxPages = 50): Promise<{ items: T[]; pages: number }> {
  const items: T[] = [];
  let pageToken = "";
  let pages = 0;
  do {
    const page = await fetchPage(pageToken);
    items.push(...page.items);
    pageToken = page.next;
    pages += 1;
  } while (pageToken !== "" && pages < maxPages);
  return { items, pages };
}

test("ListDevices pages walk every device once, newest first; tampered and foreign page tokens are INVALID_ARGUMENT on page_token", async (t) => {
  const [owner, other] = await Promise.all([users.signUp({ label: "devpages" }), users.signUp({ label: "devpages-other" })]);
  const tokens: string[] = [];
  for (let i = 0; i < 7; i++) {
    tokens.push(`push-${i}`);
    await users.client.registerDevice({ platform: Platform.ANDROID, token: `push-${i}` }, owner.call);
  }
  const { items, pages } = await walk(async (pageToken) => {
    const page = await users.client.listDevices({ pageSize: 3, pageToken }, owner.call);
    return { items: page.devices.map((d) => d.token), next: page.nextPageToken };
  });
  t.is(pages, 3);
  t.deepEqual(items, [...tokens].reverse(), "no gaps, no duplicates, newest first");

  const first = await users.client.listDevices({ pageSize: 3 }, owner.call);
  const bad = [
    tamper(first.nextPageToken),
    reforge(first.nextPageToken, { createdAt: new Date(0).toISOString(), id: crypto.randomUUID() }),
    "not-a-token",
    // A token of another method, signed with the same secret.
    await followersToken(owner, other),
  ];
  for (const pageToken of bad) {
    const error = await rejection(users.client.listDevices({ pageSize: 3, pageToken }, owner.call));
    t.is(error.code, Code.InvalidArgument, pageToken);
    t.deepEqual(fieldsOf(error), ["page_token"]);
  }
});

/** A ListFollowers page token (two followers of `star`, page size 1). */
async function followersToken(star: Account, fan: Account): Promise<string> {
  const third = await users.signUp({ label: "devpages-fan" });
  await users.client.follow({ userId: star.userId }, fan.call);
  await users.client.follow({ userId: star.userId }, third.call);
  const page = await users.client.listFollowers({ userId: star.userId, pageSize: 1 }, star.call);
  if (page.nextPageToken === "") throw new Error("expected a second followers page");
  return page.nextPageToken;
}

test("SearchUsers pages walk every match once in rank order; tampered and foreign page tokens are INVALID_ARGUMENT on page_token", async (t) => {
  const tag = `p${Date.now().toString(36)}`;
  const viewer = await users.signUp({ label: "search-pages" });
  // 4 username prefixes, 3 display-name prefixes, 3 later words: three ranks, ties by id.
  const matches: Account[] = [];
  for (let i = 0; i < 10; i++) {
    const account = await users.signUp({ label: `sp${i}` });
    const change = i < 4 ? { username: `${tag}_${i}` } : i < 7 ? { displayName: `${tag} Number ${i}` } : { displayName: `Number ${i} ${tag}` };
    await users.client.updateProfile(change, account.call);
    matches.push(account);
  }
  const byRankThenId = [matches.slice(0, 4), matches.slice(4, 7), matches.slice(7)].flatMap((group) => group.map((a) => a.userId).sort());

  const { items, pages } = await walk(async (pageToken) => {
    const page = await users.client.searchUsers({ query: tag, pageSize: 3, pageToken }, viewer.call);
    return { items: page.profiles.map((p) => p.userId), next: page.nextPageToken };
  });
  t.is(pages, 4);
  t.deepEqual(items, byRankThenId, "no gaps, no duplicates, rank then id");

  // A later word that a rename removed no longer matches; the new one does.
  await users.client.updateProfile({ displayName: `Renamed ${tag}x` }, matches[9]!.call);
  const renamed = await users.client.searchUsers({ query: tag, pageSize: 50 }, viewer.call);
  t.deepEqual(renamed.profiles.map((p) => p.userId).slice(-3), [matches[7]!.userId, matches[8]!.userId, matches[9]!.userId].sort());
  await users.client.updateProfile({ displayName: "Nothing alike" }, matches[9]!.call);
  t.false((await users.client.searchUsers({ query: tag, pageSize: 50 }, viewer.call)).profiles.some((p) => p.userId === matches[9]!.userId));

  const first = await users.client.searchUsers({ query: tag, pageSize: 3 }, viewer.call);
  const bad = [
    tamper(first.nextPageToken),
    reforge(first.nextPageToken, { q: tag, rank: 0, id: "00000000-0000-4000-8000-000000000000" }),
    "not-a-token",
    // Tokens of other methods, signed with the same secret.
    await followersToken(viewer, matches[0]!),
    await devicesToken(viewer),
  ];
  for (const pageToken of bad) {
    const error = await rejection(users.client.searchUsers({ query: tag, pageSize: 3, pageToken }, viewer.call));
    t.is(error.code, Code.InvalidArgument, pageToken);
    t.deepEqual(fieldsOf(error), ["page_token"]);
  }
});

async function devicesToken(account: Account): Promise<string> {
  await users.client.registerDevice({ platform: Platform.WEB, token: "https://push.example/a" }, account.call);
  await users.client.registerDevice({ platform: Platform.WEB, token: "https://push.example/b" }, account.call);
  const page = await users.client.listDevices({ pageSize: 1 }, account.call);
  if (page.nextPageToken === "") throw new Error("expected a second devices page");
  return page.nextPageToken;
}
