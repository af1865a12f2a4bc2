// Data exports end to end on real infrastructure: the auth service in the api
// role takes requests, a separate exporter-role process (same database and
// topic) builds the archives from the real user, post, media, chat,
// notification and moderation services with its service token, and stores
// them in MinIO. The archive is read
// back through its presigned URL and unzipped.
import test from "ava";
import { createHash, randomBytes } from "node:crypto";
import { Code, createClient, type Client } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { DeleteBucketCommand, DeleteObjectsCommand, HeadObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";
import yauzl from "yauzl";
import { DataExportService, DataExportState } from "@aviary/gen/aviary/auth/v1/data_export_pb";
import { ServiceAuthService } from "@aviary/gen/aviary/auth/v1/service_auth_pb";
import { UserInternalService } from "@aviary/gen/aviary/user/v1/user_internal_pb";
import { PostInternalService } from "@aviary/gen/aviary/post/v1/post_internal_pb";
import { MediaInternalService } from "@aviary/gen/aviary/media/v1/media_internal_pb";
import { ChatInternalService } from "@aviary/gen/aviary/chat/v1/chat_internal_pb";
import { NotificationInternalService } from "@aviary/gen/aviary/notification/v1/notification_internal_pb";
import { ModerationInternalService } from "@aviary/gen/aviary/moderation/v1/moderation_internal_pb";
import { ModerationService, ReportReason } from "@aviary/gen/aviary/moderation/v1/moderation_pb";
import { moderationConfigFromEnv, startModerationService, type RunningModerationService } from "@aviary/moderation";
import { eventually, infra, uniqueName } from "../../runtime/test-support/infra.ts";
import { s3Client, samples } from "../../media/test/harness.ts";
import { startTestPost, violatedFields, type Account, type TestPost } from "../../post/test/harness.ts";
import { startTestChat, type TestChat } from "../../chat/test/harness.ts";
import { notificationClientEntry, startTestNotification, type TestNotification } from "../../notification/test/harness.ts";
import { freshDatabase } from "../../runtime/test-support/database.ts";
import { drain } from "../../runtime/test-support/streams.ts";
import { as, password, rejection, startTestAuth, type TestAuth } from "./harness.ts";
import { authConfigFromEnv, startAuthService, type AuthAdapters, type RunningAuthService } from "../src/index.ts";

const secretsKey = randomBytes(32).toString("base64");
const exportTopic = uniqueName("auth_data_exports_test");
const exporterGroup = uniqueName("auth_exporter_test");
const bucket = `aviary-exports-${randomBytes(6).toString("hex")}`;
// A client whose token may read profiles but not export anything.
const otherClientSecret = randomBytes(32).toString("hex");

let auth: TestAuth;
let post: TestPost;
let chat: TestChat;
let notification: TestNotification;
let moderation: RunningModerationService;
let reports: Client<typeof ModerationService>;
let moderationDatabase: Awaited<ReturnType<typeof freshDatabase>> | undefined;
let exports: Client<typeof DataExportService>;
const exporters: RunningAuthService[] = [];
let s3Env: Record<string, string>;

async function startExporter(adapters: AuthAdapters = {}): Promise<RunningAuthService> {
  const urls = await infra();
  const exporter = await startAuthService(
    authConfigFromEnv({
      AUTH_PORT: "0",
      AUTH_INTERNAL_PORT: "0",
      AUTH_ROLE: "exporter",
      AUTH_SECRETS_KEY: secretsKey,
      DATABASE_URL: auth.databaseUrl,
      REDIS_URL: urls.redisUrl,
      KAFKA_BROKERS: urls.kafkaBrokers.join(","),
      AUTH_EXPORT_TOPIC: exportTopic,
      AUTH_EXPORTER_GROUP: exporterGroup,
      AUTH_DELIVERY_TOPIC: uniqueName("auth_code_deliveries_test"),
      USER_URL: post.user.service.peerUrl,
      POST_URL: post.service.peerUrl,
      MEDIA_URL: post.media.service.peerUrl,
      CHAT_URL: chat.service.peerUrl,
      NOTIFICATION_URL: notification.service.peerUrl,
      MODERATION_URL: moderation.peerUrl,
      // A sweep only when the test asks for one.
      AUTH_EXPORT_SWEEP_INTERVAL: "1h",
      LOG_LEVEL: "silent",
      ...s3Env,
    }),
    adapters,
  );
  exporters.push(exporter);
  return exporter;
}

test.before(async () => {
  const urls = await infra();
  s3Env = {
    S3_ENDPOINT: urls.s3.endpoint,
    S3_ACCESS_KEY: urls.s3.accessKey,
    S3_SECRET_KEY: urls.s3.secretKey,
    S3_REGION: urls.s3.region,
    S3_CREATE_BUCKET: "true",
    AUTH_EXPORT_BUCKET: bucket,
  };
  // The api role only: archives are built by the exporters this file starts.
  auth = await startTestAuth({
    AUTH_ROLE: "api",
    AUTH_SECRETS_KEY: secretsKey,
    AUTH_EXPORT_TOPIC: exportTopic,
    AUTH_EXPORT_COOLDOWN: "1h",
    // A deleted account is purged at once (the last test).
    AUTH_DELETION_GRACE: "0s",
    AUTH_DELETION_POLL_INTERVAL: "100ms",
    // The notification service's own client too: it reads profiles and devices as the service.
    AUTH_SERVICE_CLIENTS: [`notifier:user.profiles.read:${createHash("sha256").update(otherClientSecret).digest("hex")}`, notificationClientEntry].join(","),
    ...s3Env,
  });
  post = await startTestPost({}, { auth });
  chat = await startTestChat({}, { user: post.user });
  // Notifications come from the post and user services' events, as in production.
  notification = await startTestNotification({}, { post });
  moderationDatabase = await freshDatabase(urls.databaseUrl, "moderation_export_test");
  moderation = await startModerationService(
    moderationConfigFromEnv({
      MODERATION_PORT: "0",
      MODERATION_INTERNAL_PORT: "0",
      DATABASE_URL: moderationDatabase.url,
      REDIS_URL: urls.redisUrl,
      KAFKA_BROKERS: urls.kafkaBrokers.join(","),
      AUTH_JWKS_URL: `${auth.service.url}/.well-known/jwks.json`,
      MODERATION_EVENTS_TOPIC: uniqueName("moderation_events_export_test"),
      MODERATION_GROUP: uniqueName("moderation_export_test"),
      LOG_LEVEL: "silent",
    }),
  );
  reports = createClient(ModerationService, createGrpcTransport({ baseUrl: moderation.url }));
  exports = createClient(DataExportService, createGrpcTransport({ baseUrl: auth.service.url }));
});

test.after.always(async () => {
  for (const exporter of exporters) await exporter.close();
  await moderation?.close();
  await moderationDatabase?.drop();
  await notification?.close();
  await chat?.close();
  await post?.close();
  await auth?.close();
  const urls = await infra();
  const s3 = s3Client(urls.s3);
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket })).catch(() => undefined);
  const keys = (listed?.Contents ?? []).map((o) => ({ Key: o.Key! }));
  if (keys.length > 0) await s3.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: keys } }));
  await s3.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => undefined);
  s3.destroy();
});

async function archiveKeys(userId: string): Promise<string[]> {
  const s3 = s3Client((await infra()).s3);
  try {
    const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `exports/${userId}/` }));
    return (listed.Contents ?? []).map((o) => o.Key!);
  } finally {
    s3.destroy();
  }
}

/** The files of a zip archive by name. */
function unzip(bytes: Buffer): Promise<Map<string, Buffer>> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(bytes, { lazyEntries: true }, (error, zip) => {
      if (error) return reject(error);
      const files = new Map<string, Buffer>();
      zip.on("error", reject);
      zip.on("end", () => resolve(files));
      zip.on("entry", (entry: yauzl.Entry) => {
        zip.openReadStream(entry, (streamError, stream) => {
          if (streamError) return reject(streamError);
          const chunks: Buffer[] = [];
          stream.on("data", (chunk: Buffer) => chunks.push(chunk));
          stream.on("error", reject);
          stream.on("end", () => {
            files.set(entry.fileName, Buffer.concat(chunks));
            zip.readEntry();
          });
        });
      });
      zip.readEntry();
    });
  });
}

async function exportRows(userId: string): Promise<number> {
  const rows = await auth.query<{ n: string }>("select count(*) as n from auth.data_exports where user_id = $1", [userId]);
  return Number(rows[0]?.n ?? 0);
}

interface Fixture {
  ana: Account;
  ben: Account;
  anaPostText: string;
  benPostText: string;
  anaMediaId: string;
  benMediaId: string;
  anaCommentText: string;
  benPostId: string;
  anaMessageText: string;
  benMessageText: string;
  anaReportNote: string;
  benReportNote: string;
}

let fixture: Promise<Fixture> | undefined;

/** Ana and Ben: profiles, a post each with an image and one without, follows both ways, likes and a comment. */
function people(): Promise<Fixture> {
  fixture ??= (async () => {
    const [ana, ben] = await Promise.all([post.signUp(), post.signUp()]);
    const tag = randomBytes(4).toString("hex");
    await post.user.client.updateProfile({ displayName: `Ana ${tag}`, bio: `Ana's bio ${tag}` }, ana.call);
    await post.user.client.updateProfile({ displayName: `Ben ${tag}`, bio: `Ben's bio ${tag}` }, ben.call);
    const [anaMediaId, benMediaId] = await Promise.all([post.uploadMedia(ana), post.uploadMedia(ben)]);
    const anaPostText = `Ana's garden ${tag}`;
    const benPostText = `Ben's secret diary ${tag}`;
    const { post: anaPost } = await post.client.createPost({ text: anaPostText, mediaIds: [anaMediaId] }, ana.call);
    await post.client.createPost({ text: `Ana again ${tag}` }, ana.call);
    const { post: benPost } = await post.client.createPost({ text: benPostText, mediaIds: [benMediaId] }, ben.call);
    await post.user.client.follow({ userId: ben.userId }, ana.call);
    await post.user.client.follow({ userId: ana.userId }, ben.call);
    await post.client.likePost({ postId: benPost!.postId }, ana.call);
    await post.client.likePost({ postId: anaPost!.postId }, ben.call);
    const anaCommentText = `Ana comments ${tag}`;
    await post.client.createComment({ postId: benPost!.postId, text: anaCommentText }, ana.call);
    await post.client.createComment({ postId: anaPost!.postId, text: `Ben comments ${tag}` }, ben.call);
    const anaMessageText = `Ana writes to Ben ${tag}`;
    const benMessageText = `Ben answers Ana ${tag}`;
    const sent = await chat.client.sendMessage({ clientMessageId: crypto.randomUUID(), text: anaMessageText, target: { case: "directUserId", value: ben.userId } }, ana.call);
    await chat.client.sendMessage({ clientMessageId: crypto.randomUUID(), text: benMessageText, target: { case: "conversationId", value: sent.message!.conversationId } }, ben.call);
    // Each reports the other's content: a report is its reporter's, never its subject's.
    const anaReportNote = `Ana reports Ben's post ${tag}`;
    const benReportNote = `Ben reports Ana ${tag}`;
    await reports.createReport({ target: { kind: { case: "postId", value: benPost!.postId } }, reason: ReportReason.SPAM, note: anaReportNote }, ana.call);
    await reports.createReport({ target: { kind: { case: "userId", value: ana.userId } }, reason: ReportReason.HARASSMENT, note: benReportNote }, ben.call);
    // Each was followed, liked and commented on by the other: three notification groups each, from the events.
    for (const account of [ana, ben]) {
      await notification.until("the follow, like and comment notifications", async () => (await notification.client.listNotifications({}, account.call)).groups.length === 3);
    }
    return { ana, ben, anaPostText, benPostText, anaMediaId, benMediaId, anaCommentText, benPostId: benPost!.postId, anaMessageText, benMessageText, anaReportNote, benReportNote };
  })();
  return fixture;
}

test.serial("anonymous callers are refused everywhere, and nothing is written", async (t) => {
  const { ana } = await people();
  for (const call of [exports.requestDataExport({}), exports.listDataExports({}), exports.getDataExport({ exportId: crypto.randomUUID() })]) {
    t.is((await rejection(call)).code, Code.Unauthenticated);
  }
  t.is(await exportRows(ana.userId), 0);
});

test.serial("bad input is refused with field-level errors, and nothing is written", async (t) => {
  const { ana } = await people();
  const badId = await rejection(exports.getDataExport({ exportId: "not-a-uuid" }, ana.call));
  t.is(badId.code, Code.InvalidArgument);
  t.deepEqual(violatedFields(badId), ["export_id"]);
  const badSize = await rejection(exports.listDataExports({ pageSize: 51 }, ana.call));
  t.is(badSize.code, Code.InvalidArgument);
  t.deepEqual(violatedFields(badSize), ["page_size"]);
  const badToken = await rejection(exports.listDataExports({ pageToken: "forged" }, ana.call));
  t.is(badToken.code, Code.InvalidArgument);
  t.deepEqual(violatedFields(badToken), ["page_token"]);
  t.is((await rejection(exports.getDataExport({ exportId: crypto.randomUUID() }, ana.call))).code, Code.NotFound);
  t.is(await exportRows(ana.userId), 0);
});

test.serial("the internal export RPCs refuse anonymous callers, user tokens and service tokens without the scope", async (t) => {
  const { ana } = await people();
  const user = createClient(UserInternalService, createGrpcTransport({ baseUrl: post.user.service.url }));
  const posts = createClient(PostInternalService, createGrpcTransport({ baseUrl: post.service.url }));
  const media = createClient(MediaInternalService, createGrpcTransport({ baseUrl: post.media.service.url }));
  const messages = createClient(ChatInternalService, createGrpcTransport({ baseUrl: chat.service.url }));
  const notifications = createClient(NotificationInternalService, createGrpcTransport({ baseUrl: notification.service.url }));
  const filed = createClient(ModerationInternalService, createGrpcTransport({ baseUrl: moderation.url }));
  const issued = await createClient(ServiceAuthService, createGrpcTransport({ baseUrl: auth.service.url })).issueServiceToken({ clientId: "notifier", clientSecret: otherClientSecret });
  const calls = (options: { headers: Record<string, string> } | undefined) => [
    drain(user.exportUserData({ userId: ana.userId }, options)),
    drain(posts.exportUserPosts({ userId: ana.userId }, options)),
    drain(media.exportUserMedia({ userId: ana.userId }, options)),
    drain(messages.exportUserMessages({ userId: ana.userId }, options)),
    drain(notifications.exportUserNotifications({ userId: ana.userId }, options)),
    drain(filed.exportUserReports({ userId: ana.userId }, options)),
  ];
  for (const call of calls(undefined)) t.is((await rejection(call)).code, Code.Unauthenticated);
  for (const call of calls(ana.call)) t.is((await rejection(call)).code, Code.PermissionDenied);
  for (const call of calls(as({ token: issued.accessToken }))) t.is((await rejection(call)).code, Code.PermissionDenied);
});

test.serial("Ana's export: one at a time, rebuilt after a crash into exactly one archive, with her data and none of Ben's", async (t) => {
  const { ana, ben, anaPostText, benPostText, anaMediaId, benMediaId, anaCommentText, benPostId, anaMessageText, benMessageText, anaReportNote, benReportNote } = await people();

  // No exporter runs yet, so the first export stays PENDING: asking again answers it.
  const first = await exports.requestDataExport({}, ana.call);
  t.true(first.created);
  t.is(first.export?.state, DataExportState.PENDING);
  const exportId = first.export!.exportId;
  const again = await exports.requestDataExport({}, ana.call);
  t.false(again.created);
  t.is(again.export?.exportId, exportId);
  t.is(await exportRows(ana.userId), 1);

  // Ben cannot see it, and learns nothing: the same NOT_FOUND as a random id.
  const hidden = await rejection(exports.getDataExport({ exportId }, ben.call));
  t.is(hidden.code, Code.NotFound);
  t.deepEqual((await exports.listDataExports({}, ben.call)).exports, []);

  // The first exporter is stopped after storing the archive, before marking it ready: a crash at the worst point.
  let reached: (id: string) => void = () => {};
  const reachedUpload = new Promise<string>((resolve) => (reached = resolve));
  const crashing = await startExporter({
    exportAfterUpload: async (id, stopping) => {
      reached(id);
      await new Promise((resolve) => stopping.addEventListener("abort", resolve, { once: true }));
    },
  });
  t.is(await reachedUpload, exportId);
  t.deepEqual(await archiveKeys(ana.userId), [`exports/${ana.userId}/${exportId}.zip`]);
  exporters.splice(exporters.indexOf(crashing), 1);
  await crashing.close();
  t.is((await exports.getDataExport({ exportId }, ana.call)).export?.state, DataExportState.BUILDING);

  // A new exporter takes the event up again and finishes it.
  await startExporter();
  let ready: Awaited<ReturnType<typeof exports.getDataExport>>["export"];
  await eventually("Ana's export to be ready", async () => {
    ready = (await exports.getDataExport({ exportId }, ana.call)).export;
    return ready?.state === DataExportState.READY;
  }, 60_000);
  t.deepEqual(await archiveKeys(ana.userId), [`exports/${ana.userId}/${exportId}.zip`]);
  t.true(ready!.downloadUrl.startsWith("http"));
  t.truthy(ready!.expiresAt);

  const response = await fetch(ready!.downloadUrl);
  t.is(response.status, 200);
  const archive = Buffer.from(await response.arrayBuffer());
  t.is(BigInt(archive.length), ready!.sizeBytes);
  const files = await unzip(archive);
  const json = (name: string) => JSON.parse(files.get(name)?.toString("utf8") ?? "null") as Record<string, unknown>;
  t.deepEqual([...files.keys()].sort(), ["account.json", "chat.json", "media.json", `media/${anaMediaId}.png`, "moderation.json", "notifications.json", "posts.json", "user.json"].sort());

  const account = json("account.json") as { account: { userId: string; email: string }; sessions: unknown[] };
  t.is(account.account.userId, ana.userId);
  t.is(account.account.email, ana.identity);
  t.true(account.sessions.length >= 1);
  const user = json("user.json") as { profile: { userId: string; displayName: string }; following: Array<{ userId: string }>; followers: Array<{ userId: string }> };
  t.is(user.profile.userId, ana.userId);
  t.true(user.profile.displayName.startsWith("Ana "));
  t.deepEqual(user.following.map((f) => f.userId), [ben.userId]);
  t.deepEqual(user.followers.map((f) => f.userId), [ben.userId]);
  const posts = json("posts.json") as { posts: Array<{ text: string; mediaIds?: string[] }>; comments: Array<{ text: string }>; likes: Array<{ postId: string }> };
  t.is(posts.posts.length, 2);
  t.true(posts.posts.some((p) => p.text === anaPostText && p.mediaIds?.[0] === anaMediaId));
  t.deepEqual(posts.comments.map((c) => c.text), [anaCommentText]);
  t.deepEqual(posts.likes.map((l) => l.postId), [benPostId]);
  const messages = json("chat.json") as { messages: Array<{ text: string }> };
  t.deepEqual(messages.messages.map((m) => m.text), [anaMessageText]);
  const received = json("notifications.json") as { settings: { preferences: { kinds: unknown[] } } | null; notifications: Array<{ notificationId: string; kind: string; actorId: string; postId?: string }> };
  t.true((received.settings?.preferences.kinds.length ?? 0) > 0);
  t.deepEqual(received.notifications.map((n) => n.kind).sort(), ["KIND_COMMENT", "KIND_FOLLOW", "KIND_LIKE"]);
  t.true(received.notifications.every((n) => n.actorId === ben.userId), "what Ben did to Ana");
  const bensNotifications = await notification.query<{ id: string }>("select id from notification.notifications where recipient_id = $1", [ben.userId]);
  t.is(bensNotifications.length, 3);
  const filedReports = json("moderation.json") as { reports: Array<{ note: string; target: { postId?: string }; status: string }>; suspension: unknown };
  t.deepEqual(filedReports.reports.map((r) => [r.note, r.target.postId, r.status]), [[anaReportNote, benPostId, "REPORT_STATUS_OPEN"]]);
  t.is(filedReports.suspension, null);
  const media = json("media.json") as unknown as Array<{ mediaId: string; file: string; url?: string }>;
  t.deepEqual(media.map((m) => m.mediaId), [anaMediaId]);
  t.is(media[0]?.url, undefined);
  t.deepEqual(new Uint8Array(files.get(`media/${anaMediaId}.png`)!), samples.png());

  // Nothing of Ben's beyond his id in the follow lists and his post's id in her like and comment.
  const everything = [...files.values()].map((b) => b.toString("latin1")).join("\n");
  t.false(everything.includes(benPostText));
  t.false(everything.includes(benMediaId));
  t.false(everything.includes("Ben's bio"));
  t.false(everything.includes("Ben comments"));
  t.false(everything.includes(benMessageText));
  t.false(everything.includes(benReportNote), "a report about Ana is Ben's, not hers");
  for (const { id } of bensNotifications) t.false(everything.includes(id), "Ben's notifications are his");

  // Done: a new request within the cooldown is refused and writes nothing.
  const tooSoon = await rejection(exports.requestDataExport({}, ana.call));
  t.is(tooSoon.code, Code.ResourceExhausted);
  t.is(await exportRows(ana.userId), 1);
  t.deepEqual((await exports.listDataExports({}, ana.call)).exports.map((e) => e.exportId), [exportId]);
});

test.serial("the download link stops working at the archive's expiry, and the sweeper deletes the archive", async (t) => {
  const { ana } = await people();
  const [listed] = (await exports.listDataExports({}, ana.call)).exports;
  t.is(listed?.state, DataExportState.READY);
  const exportId = listed!.exportId;
  // Bring the expiry close instead of waiting a day; links are signed until the stored expiry.
  await auth.query("update auth.data_exports set expires_at = now() + interval '2 seconds' where id = $1", [exportId]);
  const { export: soon } = await exports.getDataExport({ exportId }, ana.call);
  const url = new URL(soon!.downloadUrl);
  t.true(Number(url.searchParams.get("X-Amz-Expires")) <= 2);
  // S3 refuses it once the signed expiry passes (polled: no guess at how long that takes here).
  await eventually("the expired link to be refused", async () => (await fetch(url)).status === 403, 30_000, 250);
  // The service agrees without waiting for the sweeper: no link, EXPIRED (links are signed to
  // expire on the whole second at or before the archive's expiry, so S3 may refuse first).
  let expired: typeof soon;
  await eventually("the export to read as expired", async () => {
    expired = (await exports.getDataExport({ exportId }, ana.call)).export;
    return expired?.state === DataExportState.EXPIRED;
  });
  t.is(expired?.downloadUrl, "");

  const sweeper = exporters.at(-1)!;
  t.is(await sweeper.sweepDataExports(), 1);
  const s3 = s3Client((await infra()).s3);
  const gone = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `exports/${ana.userId}/${exportId}.zip` })).catch((e: { $metadata?: { httpStatusCode?: number } }) => e.$metadata?.httpStatusCode);
  s3.destroy();
  t.is(gone, 404);
  t.deepEqual(await auth.query("select state from auth.data_exports where id = $1", [exportId]), [{ state: "expired" }]);
});

test.serial("Ben's own export has his data, not Ana's", async (t) => {
  const { ben, anaPostText, anaMediaId, anaReportNote, benReportNote } = await people();
  const { export: requested } = await exports.requestDataExport({}, ben.call);
  let ready: typeof requested;
  await eventually("Ben's export to be ready", async () => {
    ready = (await exports.getDataExport({ exportId: requested!.exportId }, ben.call)).export;
    return ready?.state === DataExportState.READY;
  }, 60_000);
  const files = await unzip(Buffer.from(await (await fetch(ready!.downloadUrl)).arrayBuffer()));
  const everything = [...files.values()].map((b) => b.toString("latin1")).join("\n");
  t.false(everything.includes(anaPostText));
  t.false(everything.includes(anaMediaId));
  t.false(everything.includes(anaReportNote));
  t.true([...files.keys()].some((name) => name.startsWith("media/")));
  const filed = JSON.parse(files.get("moderation.json")?.toString("utf8") ?? "null") as { reports: Array<{ note: string }> };
  t.deepEqual(filed.reports.map((r) => r.note), [benReportNote]);
});

test.serial("an account's purge deletes its exports and their archives", async (t) => {
  const { ben } = await people();
  t.is((await archiveKeys(ben.userId)).length, 1);
  await auth.client.deleteAccount({ proof: { case: "password", value: password } }, ben.call);
  // AccountDeleted reaches the exporter's account-deletion consumer on the shared auth topic.
  await eventually("Ben's exports to be purged", async () => (await exportRows(ben.userId)) === 0, 60_000);
  t.deepEqual(await archiveKeys(ben.userId), []);
});
