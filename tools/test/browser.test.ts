// The web app (clients/web) in a real browser: Debian's chromium, headless,
// driven by playwright-core, against the whole mesh behind the real Envoy,
// which serves the built app itself (one origin: gRPC-web, no CORS). Two
// browser contexts, Ana on a desktop window and Ben on a phone: both sign up
// and verify with the codes from the auth service's sink, Ben follows Ana,
// Ana posts with an image and Ben sees it arrive live; Ben likes it and Ana's
// badge moves live; they chat and each sees the other's messages, typing and
// read receipts live. A screenshot of every step goes to build/artifacts/browser/.
import test, { type ExecutionContext } from "ava";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { crc32, deflateSync } from "node:zlib";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { NotificationService } from "@aviary/gen/aviary/notification/v1/notification_pb";
import { ChatService } from "@aviary/gen/aviary/chat/v1/chat_pb";
import { startTestMesh, type TestMesh } from "../../services/runtime/test-support/mesh.ts";
import { eventually, infra, infraSh, repoRoot, uniqueName } from "../../services/runtime/test-support/infra.ts";
import { startGroupsAtPresent } from "../../services/runtime/test-support/consumer-groups.ts";
import { chatEventsTopic, postEventsTopic, userEventsTopic } from "../../services/notification/src/events/consume.ts";
import { password } from "../../services/auth/test/harness.ts";
import { buildWebApp } from "../../clients/web/build.ts";

const artifacts = path.join(repoRoot, "build/artifacts/browser");
/**
 * How long one step may wait for the DOM: the auth harness's wait for a code
 * in the sink (30 s), which also bounds an event's trip through the outbox,
 * Kafka and the realtime stream on a loaded machine.
 */
const STEP_TIMEOUT_MS = 30_000;

/** The chat service's CHAT_TYPING_SECONDS default (5 s) halved: how often the app repeats SetTyping while one types. */
const TYPING_REPEAT_MS = 2_500;
/** The shortest access token the auth service allows; the scenario runs for several of them. */
const ACCESS_TOKEN_TTL_SECONDS = 5;
const groups = { feed: uniqueName("feed_browser"), notification: uniqueName("notification_browser"), chat: uniqueName("chat_browser") };

let mesh: TestMesh;
let browser: Browser;
let appDir: string;

test.before(async () => {
  appDir = await mkdtemp(path.join(tmpdir(), "aviary-web-"));
  await mkdir(artifacts, { recursive: true });
  const [executablePath] = await Promise.all([infraSh(["tool", "chromium"]).then((out) => out.trim()), buildWebApp(appDir)]);
  // The feed, notification and chat consumers are new groups on the shared topics: started at the
  // present, they do not work through what earlier suites left there before this test's events.
  const { kafkaBrokers } = await infra();
  await startGroupsAtPresent(kafkaBrokers, [
    { groupId: groups.feed, topics: [postEventsTopic, userEventsTopic] },
    { groupId: groups.notification, topics: [postEventsTopic, userEventsTopic] },
    { groupId: groups.chat, topics: [chatEventsTopic] },
  ]);
  [mesh, browser] = await Promise.all([
    // Envoy reads the app's files when it starts, so the build comes first.
    startTestMesh({
      envoy: { appDir },
      env: {
        // Access tokens outlive only a few steps: the app must refresh them (and resume its stream) mid-scenario.
        auth: { AUTH_ACCESS_TOKEN_TTL: `${ACCESS_TOKEN_TTL_SECONDS}s`, AUTH_SERVICE_TOKEN_TTL: `${ACCESS_TOKEN_TTL_SECONDS}s` },
        feed: { FEED_GROUP: groups.feed },
        notification: { NOTIFICATION_GROUP: groups.notification },
        chat: { CHAT_GROUP: groups.chat },
      },
    }),
    chromium.launch({ executablePath, headless: true, args: ["--no-sandbox"] }),
  ]);
});
test.after.always(async () => {
  await browser?.close();
  await mesh?.close();
  await rm(appDir, { recursive: true, force: true });
});

interface Person {
  name: string;
  username: string;
  email: string;
  context: BrowserContext;
  page: Page;
  /** Uncaught errors and console errors of the page: the run must end with none. */
  errors: string[];
  /** AuthService/Refresh calls the page made. */
  refreshes: number;
}

async function open(name: string, options: Parameters<Browser["newContext"]>[0]): Promise<Person> {
  const context = await browser.newContext(options);
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(`${name}: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(`${name} console: ${message.text()}`);
  });
  const username = uniqueName(name.toLowerCase()).replace(/[^a-z0-9_]/g, "_").slice(0, 30);
  const person: Person = { name, username, email: `${username}@example.org`, context, page, errors, refreshes: 0 };
  page.on("request", (request) => {
    if (request.url().endsWith("/aviary.auth.v1.AuthService/Refresh")) person.refreshes += 1;
  });
  return person;
}

let shot = 0;
async function screenshot(person: Person, step: string): Promise<void> {
  shot += 1;
  await person.page.screenshot({ path: path.join(artifacts, `${String(shot).padStart(2, "0")}-${person.name.toLowerCase()}-${step}.png`), fullPage: false });
}

const heading = (page: Page, name: string | RegExp) => page.getByRole("heading", { level: 1, name }).waitFor();

/** Sign up, verify with the code from the sink, sign in, pick a username (and an avatar). */
async function signUp(person: Person, avatar?: Buffer): Promise<void> {
  const { page } = person;
  await page.goto(`${mesh.envoy.url}/#/signup`);
  await page.getByLabel("Email").fill(person.email);
  await page.getByLabel(/^Password/).fill(password);
  await page.getByRole("button", { name: "Create account" }).click();
  await heading(page, "Verify your email");
  const code = await mesh.auth.codeFor(person.email, "verify", { timeoutMs: STEP_TIMEOUT_MS });
  await page.getByLabel("Verification code").fill(code);
  await page.getByRole("button", { name: "Verify" }).click();
  await heading(page, "Sign in");
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await heading(page, "Welcome! Pick a username");
  await page.getByLabel("Username").fill(person.username);
  await page.getByLabel("Display name").fill(person.name);
  if (avatar) await page.getByLabel("Avatar").setInputFiles({ name: "avatar.png", mimeType: "image/png", buffer: avatar });
  await page.getByRole("button", { name: "Save profile" }).click();
  await heading(page, "Home");
  // The stream is open: live events from here on reach this page.
  await page.locator("#live-status[data-status=live]").waitFor();
}

/** The unread counts the services hold for a person, asked directly with the page's token: tells a slow event from a missing one. */
async function serverState(person: Person): Promise<string> {
  const stored = (await person.page.evaluate("sessionStorage.getItem('aviary.session')")) as string | null;
  if (!stored) return "not signed in";
  const headers = { authorization: `Bearer ${(JSON.parse(stored) as { accessToken: string }).accessToken}` };
  const notifications = createClient(NotificationService, createGrpcTransport({ baseUrl: mesh.notification.url }));
  const chat = createClient(ChatService, createGrpcTransport({ baseUrl: mesh.chat.url }));
  const [{ unreadCount }, { unreadConversations }] = await Promise.all([notifications.getUnreadCount({}, { headers }), chat.getUnreadCount({}, { headers })]);
  return `${unreadCount} unread notifications, ${unreadConversations} unread conversations`;
}

/** Waits until an <img> has really loaded (the presigned URL answered with an image). */
async function imageLoaded(page: Page, selector: string): Promise<void> {
  // A string runs in the page (this file is typed for Node, without the DOM).
  const loaded = `(() => { const image = document.querySelector(${JSON.stringify(selector)}); return image !== null && image.complete && image.naturalWidth > 0; })()`;
  await page.waitForFunction(loaded, undefined, { timeout: STEP_TIMEOUT_MS });
}

test("Ana and Ben: sign up, follow, a live post, a like on the badge, a live chat with receipts and typing, and a group chat", async (t) => {
  // Eleven steps, each bounded by STEP_TIMEOUT_MS; about a minute on an idle machine.
  t.timeout(4 * 60_000);
  const ana = await open("Ana", { viewport: { width: 1000, height: 760 } });
  const ben = await open("Ben", { viewport: { width: 375, height: 667 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  try {
    await scenario(t, ana, ben);
  } catch (error) {
    // What each page showed when it failed, next to the steps' screenshots, and what the services hold.
    await Promise.all([ana, ben].map((p) => p.page.screenshot({ path: path.join(artifacts, `failed-${p.name.toLowerCase()}.png`) }).catch(() => undefined)));
    for (const person of [ana, ben]) t.log(`${person.name}: ${await serverState(person).catch((e: unknown) => String(e))}`);
    throw error;
  } finally {
    await ana.context.close();
    await ben.context.close();
  }
  t.deepEqual([...ana.errors, ...ben.errors], [], "no page errors");
  t.log(`refreshes: Ana ${ana.refreshes}, Ben ${ben.refreshes}`);
});

async function scenario(t: ExecutionContext, ana: Person, ben: Person): Promise<void> {
  const started = Date.now();
  const step = (what: string) => t.log(`${((Date.now() - started) / 1000).toFixed(1)} s: ${what}`);

  await Promise.all([signUp(ana, png(96, 96, [214, 90, 60])), signUp(ben)]);
  await screenshot(ana, "signed-up");
  step("both signed up");

  // Ben finds Ana and follows her; her badge shows the follow at once (one unread group).
  await ben.page.getByRole("link", { name: "People" }).click();
  await heading(ben.page, "People");
  await ben.page.getByLabel("Username").fill(ana.username);
  await ben.page.getByRole("button", { name: "Find" }).click();
  await ben.page.getByRole("button", { name: "Follow", exact: true }).click();
  await ben.page.getByRole("button", { name: "Unfollow" }).waitFor();
  await ana.page.locator("#notifications-badge", { hasText: /^1 unread$/ }).waitFor();
  await screenshot(ben, "follows-ana");
  step("Ben follows Ana; Ana's badge shows it");

  // Ana posts with an image; Ben, on his home feed, gets the live "new posts" banner.
  await ben.page.getByRole("link", { name: "Home" }).click();
  await heading(ben.page, "Home");
  const text = "Sunrise over the harbour this morning";
  await ana.page.getByLabel("What's happening?").fill(text);
  await ana.page.getByLabel("Image (optional)").setInputFiles({ name: "sunrise.png", mimeType: "image/png", buffer: png(320, 180, [245, 170, 60]) });
  await ana.page.getByRole("button", { name: "Post", exact: true }).click();
  await ana.page.locator("article.post", { hasText: text }).waitFor();
  await ben.page.getByRole("button", { name: "New posts: show them" }).click();
  const post = ben.page.locator("article.post", { hasText: text });
  await post.waitFor();
  await imageLoaded(ben.page, "article.post img.post-image");
  await screenshot(ben, "sees-post-live");
  step("Ben sees Ana's post live");

  // Ben likes it; Ana's badge goes to two unread (the follow and the like), live.
  await post.getByRole("button", { name: /^Like/ }).click();
  await post.locator('button.like[aria-pressed="true"]', { hasText: "1" }).waitFor();
  await ana.page.locator("#notifications-badge", { hasText: /^2 unread$/ }).waitFor();
  await screenshot(ana, "badge-after-like");
  step("Ben's like reaches Ana's badge");
  await ana.page.getByRole("link", { name: /^Notifications/ }).click();
  await ana.page.getByText(`Ben liked your post`).waitFor();
  await ana.page.locator("#notifications-badge:empty").waitFor({ state: "attached" });
  await screenshot(ana, "notifications");
  step("Ana reads her notifications");

  // Ben writes to Ana: the first direct message opens the conversation.
  await ben.page.getByRole("link", { name: "People" }).click();
  await ben.page.getByLabel("Username").fill(ana.username);
  await ben.page.getByRole("button", { name: "Find" }).click();
  await ben.page.getByRole("button", { name: "Message" }).click();
  await heading(ben.page, "Ana");
  await ben.page.getByRole("textbox", { name: "Message" }).fill("Hi Ana! Loved the sunrise.");
  await ben.page.getByRole("button", { name: "Send", exact: true }).click();
  await ben.page.waitForURL(/#\/chat\/c\//);
  const benMine = ben.page.locator(".message.mine", { hasText: "Hi Ana!" });
  await benMine.locator(".receipt", { hasText: "Sent" }).waitFor();

  // Ana's chat badge lights up live; she opens the conversation, which reads it…
  await ana.page.locator("#chat-badge", { hasText: /^1 unread/ }).waitFor();
  await ana.page.getByRole("link", { name: /^Chat/ }).click();
  await ana.page.getByRole("link", { name: "Ben" }).click();
  await ana.page.locator(".message", { hasText: "Hi Ana!" }).waitFor();
  // …and Ben sees the read receipt arrive.
  await benMine.locator(".receipt", { hasText: "Read" }).waitFor();
  await ana.page.locator("#chat-badge:empty").waitFor({ state: "attached" });
  step("Ana reads Ben's message; Ben sees Read");

  // Ana types: Ben sees it; then her message arrives on his screen and clears the typing line.
  // Typing is ephemeral (never replayed): one sent while Ben's stream reconnects (every token
  // expiry) is lost, so, like a person, Ana keeps typing until Ben's screen shows it. The app
  // repeats SetTyping at most every half of CHAT_TYPING_SECONDS; each round waits that long.
  const benSeesTyping = ben.page.getByText("Ana is typing…");
  await eventually(
    "Ben to see Ana typing",
    async () => {
      await ana.page.getByRole("textbox", { name: "Message" }).pressSequentially("Thanks Ben ");
      return benSeesTyping.waitFor({ timeout: TYPING_REPEAT_MS }).then(() => true, () => false);
    },
    STEP_TIMEOUT_MS,
    0,
  );
  await screenshot(ben, "sees-typing");
  step("Ben sees Ana typing");
  await ana.page.getByRole("textbox", { name: "Message" }).fill("Thanks Ben! Come for coffee?");
  await ana.page.getByRole("button", { name: "Send", exact: true }).click();
  await ben.page.locator(".message:not(.mine)", { hasText: "Come for coffee?" }).waitFor();
  await ben.page.getByText("Ana is typing…").waitFor({ state: "hidden" });
  // Ben has the conversation open, so reading it is live too: Ana sees "Read".
  await ana.page.locator(".message.mine", { hasText: "Come for coffee?" }).locator(".receipt", { hasText: "Read" }).waitFor();
  await screenshot(ana, "chat-read");
  await screenshot(ben, "chat");
  step("Ana's reply read live");

  // Ana starts a group with Ben: it appears in Ben's conversation list live, and
  // messages go both ways live.
  await ana.page.getByRole("link", { name: /^Chat/ }).click();
  await heading(ana.page, "Chat");
  const group = ana.page.getByRole("form", { name: "New group" });
  await group.getByLabel("Title").fill("Harbour walks");
  await group.getByLabel(/^Members/).fill(ben.username);
  await group.getByRole("button", { name: "Create group" }).click();
  await heading(ana.page, "Harbour walks");
  // The group's creation is a line of its history, not an empty message.
  await ana.page.locator(".membership", { hasText: "You created the group with Ben" }).waitFor();
  await ana.page.getByRole("textbox", { name: "Message" }).fill("Walk on Saturday?");
  await ana.page.getByRole("button", { name: "Send", exact: true }).click();
  await ben.page.getByRole("link", { name: /^Chat/ }).click();
  await heading(ben.page, "Chat");
  await ben.page.getByRole("link", { name: "Harbour walks" }).click();
  await heading(ben.page, "Harbour walks");
  await ben.page.locator(".message:not(.mine)", { hasText: "Walk on Saturday?" }).waitFor();
  await ben.page.getByRole("textbox", { name: "Message" }).fill("Count me in!");
  await ben.page.getByRole("button", { name: "Send", exact: true }).click();
  await ana.page.locator(".message:not(.mine)", { hasText: "Count me in!" }).waitFor();
  // Ana has the group open, so Ben's message is read at once: her chat badge clears, and Ben sees "Read".
  await ana.page.locator("#chat-badge:empty").waitFor({ state: "attached" });
  await ben.page.locator(".message.mine", { hasText: "Count me in!" }).locator(".receipt", { hasText: "Read" }).waitFor();
  await screenshot(ana, "group-chat");
  step("a group chat, live both ways");

  // Both outlive their access tokens (the app refreshes at 80% of a token's life) and stay signed in.
  await eventually("both pages to refresh their tokens", () => ana.refreshes > 0 && ben.refreshes > 0, ACCESS_TOKEN_TTL_SECONDS * 1000 + STEP_TIMEOUT_MS);
  const stillLive = ana.page.locator("#live-status[data-status=live]");
  await stillLive.waitFor();
  await ana.page.getByRole("link", { name: "Home" }).click();
  await ana.page.locator("article.post", { hasText: text }).waitFor();
  step("both refreshed and still signed in");

}

/** A real PNG (solid colour with a lighter band), so screenshots show an image, not a broken icon. */
function png(width: number, height: number, [r, g, b]: [number, number, number]): Buffer {
  const row = 1 + width * 3;
  const pixels = Buffer.alloc(row * height);
  for (let y = 0; y < height; y++) {
    const light = y > height * 0.55 && y < height * 0.7 ? 50 : 0;
    for (let x = 0; x < width; x++) pixels.set([Math.min(255, r + light), Math.min(255, g + light), Math.min(255, b + light)], y * row + 1 + x * 3);
  }
  const chunk = (type: string, data: Buffer) => {
    const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([length, body, crc]);
  };
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, no interlace
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk("IHDR", header), chunk("IDAT", deflateSync(pixels)), chunk("IEND", Buffer.alloc(0))]);
}
