// Step 4 of GetHomeFeed: the response items.
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { FeedItemSchema } from "@aviary/gen/aviary/feed/v1/feed_pb";
import type { VisibleItem } from "./rules.ts";

export function presentItems(items: readonly VisibleItem[]): Array<MessageInitShape<typeof FeedItemSchema>> {
  return items.map(({ post, author }) => ({ post, author }));
}
