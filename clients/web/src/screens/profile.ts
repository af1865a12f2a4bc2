// Your profile (username, name, bio, avatar upload) and finding people to
// follow or message.
import { MediaPurpose } from "@aviary/gen/aviary/media/v1/media_pb";
import type { Profile } from "@aviary/gen/aviary/user/v1/user_pb";
import { h, field, errorLine, onSubmit, describeError } from "../dom.ts";
import { mediaUrl, uploadMedia } from "../media.ts";
import { navigate, type Screen } from "../shell.ts";
import { api, session } from "../transport.ts";

/** A round avatar, or the name's first letter while there is none. */
export function avatar(profile: Profile | undefined, url?: string): HTMLElement {
  const name = profile?.displayName || profile?.username || "?";
  if (url) return h("img", { class: "avatar", src: url, alt: "" });
  return h("span", { class: "avatar", "aria-hidden": "true" }, name.slice(0, 1).toUpperCase());
}

export function displayName(profile: Profile | undefined): string {
  if (!profile) return "Someone";
  return profile.displayName || (profile.username ? `@${profile.username}` : "New user");
}

export const profileScreen: Screen = (root, _params, query) => {
  const me = session.current()!.userId;
  const username = h("input", { type: "text", name: "username", autocomplete: "username", required: true, minlength: 3, maxlength: 30, pattern: "[A-Za-z0-9_]+" });
  const name = h("input", { type: "text", name: "displayName", autocomplete: "name", maxlength: 50 });
  const bio = h("textarea", { name: "bio", maxlength: 300, rows: 3 });
  const picture = h("input", { type: "file", name: "avatar", accept: "image/jpeg,image/png,image/webp,image/gif" });
  const preview = h("div", { class: "avatar-preview" });
  const status = h("p", { role: "status" });
  const error = errorLine();
  // Disabled until the saved profile has filled it in, so nothing typed meanwhile is overwritten.
  const fields = h("fieldset", { class: "plain", disabled: true }, preview, field("Avatar", picture), field("Username", username), field("Display name", name), field("Bio", bio));
  const form = h("form", { class: "card", "aria-busy": "true" }, fields, error.element, h("button", { type: "submit" }, "Save profile"), status);
  const show = async (profile: Profile | undefined) => {
    preview.replaceChildren(avatar(profile, await mediaUrl(profile?.avatarMediaId ?? "").catch(() => undefined)));
  };
  api.user.getProfile({ userId: me }).then(({ profile }) => {
    username.value = profile?.username ?? "";
    name.value = profile?.displayName ?? "";
    bio.value = profile?.bio ?? "";
    fields.disabled = false;
    form.setAttribute("aria-busy", "false");
    void show(profile);
  }, (failure: unknown) => error.show(describeError(failure)));

  onSubmit(form, error, async () => {
    status.textContent = "";
    const file = picture.files?.[0];
    let avatarMediaId: string | undefined;
    if (file) {
      status.textContent = "Uploading the avatar…";
      avatarMediaId = (await uploadMedia(file, MediaPurpose.AVATAR)).mediaId;
    }
    const { profile } = await api.user.updateProfile({
      username: username.value,
      displayName: name.value,
      bio: bio.value,
      ...(avatarMediaId ? { avatarMediaId } : {}),
    });
    picture.value = "";
    await show(profile);
    status.textContent = "Profile saved.";
    if (query.get("welcome")) navigate("feed");
  });
  root.append(
    h("h1", {}, query.get("welcome") ? "Welcome! Pick a username" : "Your profile"),
    form,
  );
};

/** Find someone by username, then follow them or write to them. */
export const peopleScreen: Screen = (root) => {
  const me = session.current()!.userId;
  const username = h("input", { type: "search", name: "username", required: true, autocomplete: "off" });
  const error = errorLine();
  const result = h("div", { "aria-live": "polite" });
  const form = h("form", { class: "card", role: "search" }, field("Username", username), error.element, h("button", { type: "submit" }, "Find"));
  onSubmit(form, error, async () => {
    result.replaceChildren();
    const { profile } = await api.user.getProfileByUsername({ username: username.value.replace(/^@/, "") });
    if (!profile) return;
    const { results } = await api.user.checkFollows({ pairs: [{ followerId: me, followeeId: profile.userId }] });
    let following = results[0]?.follows ?? false;
    const follow = h("button", { type: "button" });
    const label = () => {
      follow.textContent = following ? "Unfollow" : "Follow";
      follow.setAttribute("aria-pressed", String(following));
    };
    label();
    follow.addEventListener("click", () => {
      follow.disabled = true;
      const call = following ? api.user.unfollow({ userId: profile.userId }) : api.user.follow({ userId: profile.userId });
      call
        .then(() => ((following = !following), label()))
        .catch((failure: unknown) => error.show(describeError(failure)))
        .finally(() => (follow.disabled = false));
    });
    const message = h("button", { type: "button", class: "secondary" }, "Message");
    message.addEventListener("click", () => navigate(`chat/u/${profile.userId}`));
    const url = await mediaUrl(profile.avatarMediaId).catch(() => undefined);
    result.replaceChildren(
      h("article", { class: "card person", "aria-label": displayName(profile) },
        avatar(profile, url),
        h("div", {}, h("h2", {}, displayName(profile)), h("p", { class: "muted" }, `@${profile.username}`), profile.bio ? h("p", {}, profile.bio) : null,
          h("p", { class: "muted" }, `${profile.followerCount} followers · ${profile.followingCount} following`)),
        profile.userId === me ? h("p", {}, "That's you.") : h("div", { class: "actions" }, follow, message),
      ),
    );
  });
  root.append(h("h1", {}, "People"), form, result);
};
