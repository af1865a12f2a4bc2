// Whose presence a caller may see: the users whose profile the user service
// shows them with `omit_blocked`, that is, nobody separated from the caller by
// a block in either direction (and no unknown ids). One BatchGetProfiles as
// the caller per request.
import type { Client } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import type { UserService } from "@aviary/gen/aviary/user/v1/user_pb";
import { asCaller, type CallContext } from "@aviary/runtime/context";

export type VisibleUsers = (ctx: CallContext, userIds: readonly string[]) => Promise<string[]>;

export function visibleUsersVia(users: Client<typeof UserService>): VisibleUsers {
  return async (ctx, userIds) => {
    const wanted = [...new Set(userIds.map((id) => id.toLowerCase()))];
    if (wanted.length === 0) return [];
    try {
      const { profiles } = await users.batchGetProfiles({ userIds: wanted, omitBlocked: true }, asCaller(ctx));
      const shown = new Set(profiles.map((p) => p.userId.toLowerCase()));
      return wanted.filter((id) => shown.has(id));
    } catch (e) {
      const error = ConnectError.from(e);
      // The caller's own token problems are theirs; anything else means presence cannot be checked now.
      if (error.code === Code.Unauthenticated) throw error;
      throw new ConnectError("cannot check who you may see right now", Code.Unavailable);
    }
  };
}
