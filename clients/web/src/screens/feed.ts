// The home feed: write a post (with an image), read the timeline, like, and a
// live "new posts" banner from the stream's feed hints (never a silent reload
// under the reader's eyes).
import { MediaPurpose } from "@aviary/gen/aviary/media/v1/media_pb";
import type { Post } from "@aviary/gen/aviary/post/v1/post_pb";
import type { Profile } from "@aviary/gen/aviary/user/v1/user_pb";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { h, field, errorLine, onSubmit, describeError, relativeTime } from "../dom.ts";
import { mediaUrls, uploadMedia } from "../media.ts";
import { onLive, onReconnect, onResync } from "../realtime.ts";
import type { Screen } from "../shell.ts";
import { api } from "../transport.ts";
import { avatar, displayName } from "./profile.ts";

const PAGE_SIZE = 20;

function postView(post: Post, author: Profile | undefined, avatarUrl?: string): HTMLElement {
  const likes = h("span", { class: "count" }, String(post.likeCount));
  let liked = post.likedByViewer;
  const like = h("button", { type: "button", class: "like", "aria-pressed": String(liked) }, liked ? "Liked" : "Like", " · ", likes);
  like.addEventListener("click", () => {
    like.disabled = true;
    const call = liked ? api.post.unlikePost({ postId: post.postId }) : api.post.likePost({ postId: post.postId });
    call
      .then(({ likeCount }) => {
        liked = !liked;
        like.setAttribute("aria-pressed", String(liked));
        like.firstChild!.textContent = liked ? "Liked" : "Like";
        likes.textContent = String(likeCount);
      })
      .catch((failure: unknown) => alertFailure(like, failure))
      .finally(() => (like.disabled = false));
  });
  const created = post.createdAt ? timestampDate(post.createdAt) : undefined;
  return h("article", { class: "card post", "data-post-id": post.postId, "aria-label": `Post by ${displayName(author)}` },
    h("header", {}, avatar(author, avatarUrl), h("strong", {}, displayName(author)), h("time", { datetime: created?.toISOString() ?? "" }, relativeTime(created))),
    post.text ? h("p", { class: "text" }, post.text) : null,
    ...post.media.filter((m) => m.contentType.startsWith("image/")).map((m) => h("img", { class: "post-image", src: m.url, alt: `Image posted by ${displayName(author)}` })),
    h("footer", {}, like),
  );
}

function alertFailure(near: HTMLElement, failure: unknown): void {
  near.after(h("span", { class: "error", role: "alert" }, describeError(failure)));
}

export const feedScreen: Screen = (root) => {
  const text = h("textarea", { name: "text", rows: 3, maxlength: 500 });
  const image = h("input", { type: "file", name: "image", accept: "image/jpeg,image/png,image/webp,image/gif" });
  const error = errorLine();
  const compose = h("form", { class: "card compose", "aria-label": "New post" }, field("What's happening?", text), field("Image (optional)", image), error.element, h("button", { type: "submit" }, "Post"));
  const list = h("div", { class: "posts", "aria-label": "Home feed", role: "feed", "aria-busy": "true" });
  const more = h("button", { type: "button", class: "secondary", hidden: true }, "Load more");
  // The banner is an aria-live region: "New posts" is announced when it appears.
  const banner = h("div", { class: "banner", "aria-live": "polite" });
  let nextPageToken = "";

  const load = async (fresh: boolean) => {
    list.setAttribute("aria-busy", "true");
    const page = await api.feed.getHomeFeed({ pageSize: PAGE_SIZE, pageToken: fresh ? "" : nextPageToken });
    // The authors' avatars in one call; a page without them is still a page.
    const avatars = await mediaUrls(page.items.map((item) => item.author?.avatarMediaId ?? "")).catch(() => new Map<string, string>());
    if (fresh) list.replaceChildren();
    for (const item of page.items) if (item.post) list.append(postView(item.post, item.author, avatars.get(item.author?.avatarMediaId ?? "")));
    if (fresh && page.items.length === 0) list.append(h("p", { class: "muted empty" }, "Nothing here yet: follow people to fill your feed."));
    nextPageToken = page.nextPageToken;
    more.hidden = nextPageToken === "";
    list.setAttribute("aria-busy", "false");
  };
  const reload = () => {
    banner.replaceChildren();
    load(true).catch((failure: unknown) => error.show(describeError(failure)));
  };
  more.addEventListener("click", () => void load(false).catch((failure: unknown) => error.show(describeError(failure))));

  onSubmit(compose, error, async () => {
    const file = image.files?.[0];
    const mediaIds = file ? [(await uploadMedia(file, MediaPurpose.POST)).mediaId] : [];
    const { post } = await api.post.createPost({ text: text.value, mediaIds });
    text.value = "";
    image.value = "";
    if (post) {
      const { profile } = await api.user.getProfile({ userId: post.authorId });
      const avatars = await mediaUrls([profile?.avatarMediaId ?? ""]).catch(() => new Map<string, string>());
      list.querySelector(".empty")?.remove();
      list.prepend(postView(post, profile, avatars.get(profile?.avatarMediaId ?? "")));
    }
  });

  const offerNewPosts = (newestPostId: string) => {
    // One's own post is on screen already (added when it was sent).
    if (banner.childElementCount > 0 || list.querySelector(`[data-post-id="${CSS.escape(newestPostId)}"]`)) return;
    const show = h("button", { type: "button", class: "new-posts" }, "New posts: show them");
    show.addEventListener("click", reload);
    banner.append(show);
  };
  const stopHints = onLive("feedUpdated", (hint) => offerNewPosts(hint.newestPostId));
  // A hint sent while the stream was down is lost: after a reconnect, ask the feed itself.
  const stopReconnect = onReconnect(() => {
    api.feed.getHomeFeed({ pageSize: 1 }).then(({ items }) => {
      const newest = items[0]?.post?.postId;
      if (newest) offerNewPosts(newest);
    }, () => undefined);
  });
  const stopResync = onResync(reload);
  reload();
  root.append(h("h1", {}, "Home"), compose, banner, list, more);
  return () => {
    stopHints();
    stopReconnect();
    stopResync();
  };
};
