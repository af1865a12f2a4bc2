import type { Client, ServiceImpl } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { BffService, type GetHomeResponseSchema } from "@aviary/gen/aviary/bff/v1/bff_pb";
import type { GetProfileResponse, UserService } from "@aviary/gen/aviary/user/v1/user_pb";
import type { FeedService, GetHomeFeedResponse } from "@aviary/gen/aviary/feed/v1/feed_pb";
import { asCaller, requirePrincipal } from "@aviary/runtime/context";
import { callerError, loadSection, type SectionResult } from "./domain/sections.ts";
import type { UnreadCounts, UnreadSource } from "./domain/unread.ts";

/** Everything the handlers need; assembled by server.ts, replaced in tests. */
export interface BffDeps {
  users: Client<typeof UserService>;
  feed: Client<typeof FeedService>;
  unread: UnreadSource;
  /** Time each section may take; the call answers within about this much. */
  sectionBudgetMs: number;
  /** Items on the first feed page. */
  feedPageSize: number;
}

export function createBffHandlers(deps: BffDeps): ServiceImpl<typeof BffService> {
  return {
    async getHome(_req, ctx) {
      const viewer = requirePrincipal(ctx);
      // Each section calls as the viewer, under its own budget (never longer than the caller's deadline).
      const budget = Math.min(deps.sectionBudgetMs, ctx.timeoutMs() ?? Number.POSITIVE_INFINITY);
      const callAs = (signal: AbortSignal, timeoutMs: number) => ({ ...asCaller(ctx), signal, timeoutMs });

      const [profile, feed, unread] = await Promise.all([
        loadSection("profile", budget, ctx.signal, (signal, ms) => deps.users.getProfile({ userId: viewer.userId }, callAs(signal, ms))),
        loadSection("feed", budget, ctx.signal, (signal, ms) => deps.feed.getHomeFeed({ pageSize: deps.feedPageSize }, callAs(signal, ms))),
        loadSection("unread", budget, ctx.signal, (signal, ms) => deps.unread.counts(viewer.userId, callAs(signal, ms))),
      ]);
      const fatal = callerError([profile, feed, unread]);
      if (fatal !== undefined) throw fatal;
      return presentHome(profile, feed, unread);
    },
  };
}

/** The response from whatever sections loaded; each failed one becomes an entry in `errors`. */
export function presentHome(
  profile: SectionResult<GetProfileResponse>,
  feed: SectionResult<GetHomeFeedResponse>,
  unread: SectionResult<UnreadCounts>,
): MessageInitShape<typeof GetHomeResponseSchema> {
  return {
    ...(profile.ok && profile.value.profile ? { profile: profile.value.profile } : {}),
    feed: feed.ok ? feed.value.items : [],
    feedNextPageToken: feed.ok ? feed.value.nextPageToken : "",
    ...(unread.ok ? { unread: unread.value } : {}),
    errors: [profile, feed, unread].flatMap((s) => (s.ok ? [] : [s.failure])),
  };
}
