import type { ServiceImpl } from "@connectrpc/connect";
import type { FeedService } from "@aviary/gen/aviary/feed/v1/feed_pb";
import { requirePrincipal } from "@aviary/runtime/context";
import { pageSize, type PageTokens } from "@aviary/runtime/pagination";
import { cursorPayload, parseCursor } from "./domain/page-token.ts";
import { homeFeedPage, type HomeFeedDeps } from "./read/home-feed.ts";
import { presentItems } from "./read/present.ts";

export interface FeedDeps extends HomeFeedDeps {
  pageTokens: PageTokens;
}

export function createFeedHandlers(deps: FeedDeps): ServiceImpl<typeof FeedService> {
  return {
    async getHomeFeed(request, context) {
      const principal = requirePrincipal(context);
      const size = pageSize(request.pageSize, { default: 20, max: 50 });
      const start = request.pageToken ? deps.pageTokens.decode(request.pageToken, parseCursor) : undefined;
      const page = await homeFeedPage(deps, context, principal.userId.toLowerCase(), size, start);
      return { items: presentItems(page.items), nextPageToken: page.next ? deps.pageTokens.encode(cursorPayload(page.next)) : "" };
    },
  };
}
