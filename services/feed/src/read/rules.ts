// Step 3 of GetHomeFeed: what the reader may see, as a plain function.
import type { Post } from "@aviary/gen/aviary/post/v1/post_pb";
import type { Profile } from "@aviary/gen/aviary/user/v1/user_pb";
import type { TimelineEntry } from "../store/timelines.ts";
import type { Hydrated } from "./hydrate.ts";

export interface VisibleItem {
  entry: TimelineEntry;
  post: Post;
  author: Profile;
}

/**
 * Keeps the entries whose post the post service returned (absent: deleted or
 * invisible), whose author the user service returned (absent: the author
 * blocked the reader), and whose author is the reader or someone the reader
 * follows now — a timeline may still hold posts of an account unfollowed or
 * blocked a moment ago, before the consumer removed them.
 */
export function applyRules(readerId: string, entries: readonly TimelineEntry[], hydrated: Hydrated): VisibleItem[] {
  const visible: VisibleItem[] = [];
  for (const entry of entries) {
    const post = hydrated.posts.get(entry.postId);
    if (!post) continue;
    const authorId = post.authorId.toLowerCase();
    const author = hydrated.profiles.get(authorId);
    if (!author) continue;
    if (authorId !== readerId && !hydrated.followed.has(authorId)) continue;
    visible.push({ entry, post, author });
  }
  return visible;
}
