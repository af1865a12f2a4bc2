import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { GetHomeFeedResponseSchema, type FeedService, type GetHomeFeedResponse } from "@aviary/gen/aviary/feed/v1/feed_pb";
import { requirePrincipal } from "@aviary/runtime/context";
import { unchanging } from "@aviary/runtime/encoding-memo";
import { pageSize, type PageTokens } from "@aviary/runtime/pagination";
import { cursorPayload, parseCursor } from "./domain/page-token.ts";
import { homeFeedPage, type HomeFeedDeps, type HomeFeedPage } from "./read/home-feed.ts";
import { presentItems } from "./read/present.ts";

export interface FeedDeps extends HomeFeedDeps {
  pageTokens: PageTokens;
}

export function createFeedHandlers(deps: FeedDeps): ServiceImpl<typeof FeedService> {
  // The response of each page object. A page the view cache hands out again
  // is the same object, so its response (page token included: the token is
  // a deterministic MAC of the cursor) is built once, and marked unchanging,
  // encoded once on the grpc-js listener. Entries live as long as the page.
  const responses = new WeakMap<HomeFeedPage, GetHomeFeedResponse>();
  const respond = (page: HomeFeedPage): GetHomeFeedResponse => {
    let response = responses.get(page);
    if (response === undefined) {
      response = unchanging(create(GetHomeFeedResponseSchema, { items: presentItems(page.items), nextPageToken: page.next ? deps.pageTokens.encode(cursorPayload(page.next)) : "" }));
      responses.set(page, response);
    }
    return response;
  };
  return {
    async getHomeFeed(request, context) {
      const principal = requirePrincipal(context);
      const size = pageSize(request.pageSize, { default: 20, max: 50 });
      const start = request.pageToken ? deps.pageTokens.decode(request.pageToken, parseCursor) : undefined;
      return respond(await homeFeedPage(deps, context, principal.userId.toLowerCase(), size, start));
    },
  };
}
