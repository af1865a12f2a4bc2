// UpdateProfile.avatar_media_id checked against the real media service (real
// uploads to the S3 server from infra.sh, confirmed): only a ready avatar
// image of the caller's own may be set; anything else is a field violation
// and writes nothing; an unreachable media service is UNAVAILABLE.
import test from "ava";
import { Code, type ConnectError } from "@connectrpc/connect";
import { BadRequestSchema } from "@aviary/gen/google/rpc/error_details_pb";
import { MediaPurpose } from "@aviary/gen/aviary/media/v1/media_pb";
import { startTestAuth, type TestAuth } from "../../auth/test/harness.ts";
import { postUpload, samples, startTestMedia, type TestMedia } from "../../media/test/harness.ts";
import { rejection, startTestUser, type Account, type TestUser } from "./harness.ts";

let auth: TestAuth;
let media: TestMedia;
let users: TestUser;
/** A second user service whose MEDIA_URL points where nothing listens. */
let cutOff: TestUser;
test.before(async () => {
  auth = await startTestAuth();
  media = await startTestMedia({}, auth);
  [users, cutOff] = await Promise.all([startTestUser({}, auth, media), startTestUser({}, auth)]);
});
test.after.always(async () => {
  await Promise.all([users?.close(), cutOff?.close(), media?.close()]);
  await auth?.close();
});

function violations(error: ConnectError): Array<{ field: string; reason: string }> {
  return error.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map(({ field, reason }) => ({ field, reason })));
}

/** Creates an upload as `who`; unless `confirm` is false, POSTs a PNG to S3 and confirms it. */
async function upload(who: Account, purpose: MediaPurpose, confirm = true): Promise<string> {
  const bytes = samples.png(512);
  const created = await media.client.createUpload({ contentType: "image/png", sizeBytes: BigInt(bytes.length), purpose }, who.call);
  if (!confirm) return created.mediaId;
  const posted = await postUpload(created, bytes);
  if (posted.status !== 204) throw new Error(`upload to S3 failed: ${posted.status} ${posted.body}`);
  const { media: ready } = await media.client.confirmUpload({ mediaId: created.mediaId }, who.call);
  if (ready?.mediaId !== created.mediaId) throw new Error("confirm did not return the media item");
  return created.mediaId;
}

const profileRow = (service: TestUser, userId: string) =>
  service.query("select display_name, avatar_media_id, updated_at from users.profiles where user_id = $1", [userId]);

test("a confirmed avatar image of one's own is set, read back, replaced and cleared", async (t) => {
  const ada = await users.signUp({ label: "avatar-ok" });
  const first = await upload(ada, MediaPurpose.AVATAR);
  const set = await users.client.updateProfile({ avatarMediaId: first }, ada.call);
  t.is(set.profile?.avatarMediaId, first);
  t.is((await users.client.getProfile({ userId: ada.userId }, ada.call)).profile?.avatarMediaId, first);

  // Ids are stored as the media service spells them.
  const second = await upload(ada, MediaPurpose.AVATAR);
  const replaced = await users.client.updateProfile({ avatarMediaId: second.toUpperCase(), displayName: "Ada" }, ada.call);
  t.is(replaced.profile?.avatarMediaId, second);
  t.is(replaced.profile?.displayName, "Ada");

  const cleared = await users.client.updateProfile({ avatarMediaId: "" }, ada.call);
  t.is(cleared.profile?.avatarMediaId, "");
  t.deepEqual((await profileRow(users, ada.userId)).map((r) => r["avatar_media_id"]), [null]);
});

test("another user's, a pending, a POST-purpose, an unknown and a malformed media id: INVALID_ARGUMENT on avatar_media_id, nothing written", async (t) => {
  const [ada, bob] = await Promise.all([users.signUp({ label: "avatar-ada" }), users.signUp({ label: "avatar-bob" })]);
  const adas = await upload(ada, MediaPurpose.AVATAR);
  await users.client.updateProfile({ avatarMediaId: adas, displayName: "Ada" }, ada.call);
  const [bobs, pending, forPosts] = await Promise.all([
    upload(bob, MediaPurpose.AVATAR),
    upload(ada, MediaPurpose.AVATAR, false),
    upload(ada, MediaPurpose.POST),
  ]);
  const before = await profileRow(users, ada.userId);

  const cases: Array<[string, string, string]> = [
    ["another user's avatar", bobs, "NOT_OWNER"],
    ["a pending (unconfirmed) upload", pending, "NOT_FOUND"],
    ["a media item for posts", forPosts, "PURPOSE"],
    ["an unknown id", crypto.randomUUID(), "NOT_FOUND"],
    ["not a UUID", "not-a-media-id", "FORMAT_UUID"],
  ];
  for (const [label, avatarMediaId, reason] of cases) {
    // With a second field: a rejected request changes nothing at all.
    const error = await rejection(users.client.updateProfile({ avatarMediaId, displayName: "Mallory" }, ada.call));
    t.is(error.code, Code.InvalidArgument, label);
    t.deepEqual(violations(error), [{ field: "avatar_media_id", reason }], label);
  }
  t.deepEqual(await profileRow(users, ada.userId), before, "the profile is unchanged");
  t.is((await users.client.getProfile({ userId: ada.userId }, bob.call)).profile?.avatarMediaId, adas);
  // Bob's own avatar is fine for Bob.
  t.is((await users.client.updateProfile({ avatarMediaId: bobs }, bob.call)).profile?.avatarMediaId, bobs);
});

test("media service unreachable: UNAVAILABLE and nothing written; clearing needs no call", async (t) => {
  const ada = await cutOff.signUp({ label: "avatar-down" });
  await cutOff.client.updateProfile({ displayName: "Ada" }, ada.call);
  const before = await profileRow(cutOff, ada.userId);
  const error = await rejection(cutOff.client.updateProfile({ avatarMediaId: crypto.randomUUID(), displayName: "Changed" }, ada.call));
  t.is(error.code, Code.Unavailable);
  t.deepEqual(await profileRow(cutOff, ada.userId), before);
  // A malformed id is refused without asking.
  t.is((await rejection(cutOff.client.updateProfile({ avatarMediaId: "x" }, ada.call))).code, Code.InvalidArgument);
  t.is((await cutOff.client.updateProfile({ avatarMediaId: "" }, ada.call)).profile?.avatarMediaId, "");
});
