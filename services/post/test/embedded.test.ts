// `make dev` runs the post service on embedded defaults (PGlite, in-process
// bus, in-memory cache) shared with auth, user and media (disk storage).
// Posts with media, likes, comments, blocks and the outbox must work there too.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { AuthService } from "@aviary/gen/aviary/auth/v1/auth_pb";
import { UserService } from "@aviary/gen/aviary/user/v1/user_pb";
import { MediaPurpose, MediaService } from "@aviary/gen/aviary/media/v1/media_pb";
import { PostService } from "@aviary/gen/aviary/post/v1/post_pb";
import { openDatabase } from "@aviary/runtime/db/open";
import { openEventBus } from "@aviary/runtime/bus/open";
import { openCache } from "@aviary/runtime/cache/open";
import type { DeliveredEvent } from "@aviary/runtime/bus/bus";
import { authConfigFromEnv, startAuthService } from "@aviary/auth";
import { startUserService, userConfigFromEnv } from "@aviary/user";
import { mediaConfigFromEnv, startMediaService } from "@aviary/media";
import { eventually } from "../../runtime/test-support/infra.ts";
import { postUpload, samples } from "../../media/test/harness.ts";
import { rejection } from "./harness.ts";
import { postConfigFromEnv, postEventsTopic, startPostService } from "../src/index.ts";

test("posts with media, likes, comments and blocks on PGlite, the memory bus and the memory cache", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "aviary-post-embedded-"));
  const database = await openDatabase({});
  const cache = await openCache({});
  const bus = await openEventBus({ clientId: "embedded-test" });
  const auth = await startAuthService(
    authConfigFromEnv({ AUTH_PORT: "0", AUTH_CODE_SINK: join(dir, "codes.jsonl"), AUTH_ARGON2_MEMORY_KIB: "1024", AUTH_ARGON2_PASSES: "1", LOG_LEVEL: "silent" }),
    { database, cache, bus },
  );
  const jwks = `${auth.url}/.well-known/jwks.json`;
  const users = await startUserService(userConfigFromEnv({ USER_PORT: "0", AUTH_JWKS_URL: jwks, LOG_LEVEL: "silent" }), { database, cache, bus });
  const media = await startMediaService(
    mediaConfigFromEnv({ MEDIA_PORT: "0", AUTH_JWKS_URL: jwks, MEDIA_DISK_DIR: join(dir, "media"), MEDIA_DISK_SECRET: "embedded-test-secret-0123456789", LOG_LEVEL: "silent" }),
    { database, cache, bus },
  );
  const posts = await startPostService(
    postConfigFromEnv({ POST_PORT: "0", AUTH_JWKS_URL: jwks, USER_URL: users.peerUrl, MEDIA_URL: media.url, LOG_LEVEL: "silent" }),
    { database, cache, bus },
  );
  const events: DeliveredEvent[] = [];
  const subscription = await bus.subscribe({ groupId: "post-embedded-test", topics: [postEventsTopic], handle: async (e) => void events.push(e) });
  t.teardown(async () => {
    await subscription.stop();
    await posts.close();
    await media.close();
    await users.close();
    await auth.close();
    await bus.close();
    await cache.close();
    await database.close();
    await rm(dir, { recursive: true, force: true });
  });
  t.is(posts.database.kind, "pglite");
  t.is(posts.bus.kind, "memory");
  t.is(posts.cache.kind, "memory");

  const transport = (baseUrl: string) => createConnectTransport({ baseUrl, httpVersion: "1.1" });
  const authClient = createClient(AuthService, transport(auth.url));
  const userClient = createClient(UserService, transport(users.url));
  const mediaClient = createClient(MediaService, transport(media.url));
  const client = createClient(PostService, transport(posts.url));
  const password = "violet-harbour-teapot-42";
  const signUp = async (email: string) => {
    const identity = { case: "email" as const, value: email };
    const { userId } = await authClient.register({ identity, password });
    const login = await authClient.login({ identity, password });
    return { userId, call: { headers: { authorization: `Bearer ${login.tokens?.accessToken}` } } };
  };
  const ada = await signUp("ada@example.org");
  const bob = await signUp("bob@example.org");
  await eventually("both profiles", async () => (await userClient.batchGetProfiles({ userIds: [ada.userId, bob.userId] }, ada.call)).profiles.length === 2);

  // An upload through the disk adapter (its URLs carry the configured public URL; point them at this port).
  const upload = await mediaClient.createUpload({ contentType: "image/png", sizeBytes: 256n, purpose: MediaPurpose.POST }, ada.call);
  t.is((await postUpload({ ...upload, url: upload.url.replace("http://127.0.0.1:8083", media.url) }, samples.png())).status, 204);
  await mediaClient.confirmUpload({ mediaId: upload.mediaId }, ada.call);

  const { post } = await client.createPost({ text: "first post #dev @bob", mediaIds: [upload.mediaId] }, ada.call);
  t.deepEqual(post?.media.map((m) => m.mediaId), [upload.mediaId]);
  t.is((await client.likePost({ postId: post!.postId }, bob.call)).likeCount, 1n);
  await client.createComment({ postId: post!.postId, text: "welcome" }, bob.call);
  const seen = await client.getPost({ postId: post!.postId }, bob.call);
  t.like(seen.post, { likeCount: 1n, commentCount: 1n, likedByViewer: true, hashtags: ["dev"], mentions: ["bob"] });
  const page = await client.listPostsByAuthor({ authorId: ada.userId }, bob.call);
  t.deepEqual(page.posts.map((p) => p.postId), [post!.postId]);

  await userClient.block({ userId: bob.userId }, ada.call);
  t.is((await rejection(client.getPost({ postId: post!.postId }, bob.call))).code, Code.NotFound);

  await eventually("PostCreated, LikeCreated and CommentCreated on the memory bus", () => events.length >= 3);
  t.deepEqual(
    events.map((e) => e.headers["event-type"]),
    ["aviary.events.v1.PostCreated", "aviary.events.v1.LikeCreated", "aviary.events.v1.CommentCreated"],
  );
});
