// The oracle: what the cohort's services must show, derived from the
// workload's log alone, against what they show. Every follower's home feed
// holds every post of the people they follow and their own, each once; every
// post's like and comment counts; every user's notifications (one per follow,
// like and comment they received); every direct conversation's messages, each
// client message once, in a gapless sequence; and, unless the fault wiped
// Redis (where stream histories live by design), every member's realtime
// stream history: each message of their conversations once.
import { ListMessagesRequest_Direction } from "@aviary/gen/aviary/chat/v1/chat_pb";
import { decodeEvent } from "../../services/runtime/src/realtime/events.ts";
import type { UserStreamHub } from "../../services/runtime/src/realtime/user-streams.ts";
import { Kind } from "@aviary/gen/aviary/notification/v1/notification_pb";
import type { Account, Clients, Op, Workload } from "./workload.ts";

export interface Verdict {
  /** Expected and missing (or a count short by this much, or a sequence gap). */
  lost: number;
  /** Present more than once (or a count over by this much). */
  doubled: number;
  /** Present but derived from no logged operation. */
  unexpected: number;
  /** The first few discrepancies, for the log. */
  details: string[];
}

const clean = (v: Verdict) => v.lost === 0 && v.doubled === 0 && v.unexpected === 0;
export const matches = clean;

/**
 * Settles each "maybe" with the owning service's own records: a post or
 * comment that committed although its call failed is found by its unique
 * text; a like by liked_by_viewer; a follow by CheckFollows; a message by
 * resending it with its client_message_id (what a client does). Settled ones
 * become "ok" and are expected; the rest are dropped from the log.
 */
export async function resolveMaybes(clients: Clients, workload: Workload): Promise<{ committed: number; absent: number }> {
  const callOf = (userId: string) => workload.accounts.find((a) => a.userId === userId)!.call;
  let committed = 0;
  const kept: Op[] = [];
  for (const op of workload.log.ops) {
    if (op.status === "ok") {
      kept.push(op);
      continue;
    }
    let found = false;
    switch (op.kind) {
      case "post": {
        const posts = await allPostsBy(clients, op.author, callOf(op.author));
        const post = posts.find((p) => p.text === op.text);
        if (post !== undefined) {
          op.postId = post.postId;
          found = true;
        }
        break;
      }
      case "comment": {
        const comments = await allComments(clients, op.postId, callOf(op.commenter));
        found = comments.some((c) => c.text === op.text && c.authorId.toLowerCase() === op.commenter);
        break;
      }
      case "like": {
        const { post } = await clients.post.getPost({ postId: op.postId }, callOf(op.liker));
        found = post?.likedByViewer === true;
        break;
      }
      case "follow": {
        const { results } = await clients.user.checkFollows({ pairs: [{ followerId: op.follower, followeeId: op.followee }] }, callOf(op.follower));
        found = results[0]?.follows === true;
        break;
      }
      case "message":
        found = await workload.resend(op);
        break;
    }
    if (found) {
      op.status = "ok";
      committed += 1;
      kept.push(op);
    }
  }
  const absent = workload.log.ops.length - kept.length;
  workload.log.ops.splice(0, workload.log.ops.length, ...kept);
  return { committed, absent };
}

async function allPostsBy(clients: Clients, authorId: string, call: Account["call"]) {
  const posts = [];
  let pageToken = "";
  do {
    const page = await clients.post.listPostsByAuthor({ authorId, pageSize: 100, pageToken }, call);
    posts.push(...page.posts);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return posts;
}

async function allComments(clients: Clients, postId: string, call: Account["call"]) {
  const comments = [];
  let pageToken = "";
  do {
    const page = await clients.post.listComments({ postId, pageSize: 100, pageToken }, call);
    comments.push(...page.comments);
    pageToken = page.nextPageToken;
  } while (pageToken);
  return comments;
}

/** Compares expected counts per key with observed ones. */
function compareCounts(verdict: Verdict, what: string, expected: Map<string, number>, observed: Map<string, number>): void {
  for (const [key, want] of expected) {
    const got = observed.get(key) ?? 0;
    if (got < want) note(verdict, "lost", want - got, `${what} ${key}: ${got} of ${want}`);
    if (got > want) note(verdict, "doubled", got - want, `${what} ${key}: ${got}, expected ${want}`);
  }
  for (const [key, got] of observed) {
    if (!expected.has(key) && got > 0) note(verdict, "unexpected", got, `${what} ${key}: ${got}, expected none`);
  }
}

function note(verdict: Verdict, field: "lost" | "doubled" | "unexpected", n: number, detail: string): void {
  verdict[field] += n;
  if (verdict.details.length < 12) verdict.details.push(detail);
}

const bump = (map: Map<string, number>, key: string, by = 1) => map.set(key, (map.get(key) ?? 0) + by);

/** One pass of every check over the cohort; `streams`: also the stream histories (absent when the fault wiped them). */
export async function check(clients: Clients, workload: Workload, streams?: UserStreamHub): Promise<Verdict> {
  const verdict: Verdict = { lost: 0, doubled: 0, unexpected: 0, details: [] };
  const ops = workload.log.ops.filter((op) => op.status === "ok");
  const accounts = workload.accounts;

  // Home feeds: own posts and the followees' posts, each once.
  const following = new Map<string, Set<string>>(accounts.map((a) => [a.userId, new Set([a.userId])]));
  const posts: Array<{ postId: string; author: string }> = [];
  for (const op of ops) {
    if (op.kind === "follow") following.get(op.follower)!.add(op.followee);
    if (op.kind === "post") posts.push({ postId: op.postId!, author: op.author });
  }
  for (const account of accounts) {
    const expected = new Map(posts.filter((p) => following.get(account.userId)!.has(p.author)).map((p) => [p.postId, 1]));
    const observed = new Map<string, number>();
    let pageToken = "";
    do {
      const page = await clients.feed.getHomeFeed({ pageSize: 50, pageToken }, account.call);
      for (const item of page.items) bump(observed, item.post!.postId);
      pageToken = page.nextPageToken;
    } while (pageToken);
    compareCounts(verdict, `feed of ${account.userId.slice(0, 8)}: post`, expected, observed);
  }

  // Like and comment counts, as the post service answers them.
  const likes = new Map<string, number>(posts.map((p) => [p.postId, 0]));
  const comments = new Map<string, number>(posts.map((p) => [p.postId, 0]));
  for (const op of ops) {
    if (op.kind === "like") bump(likes, op.postId);
    if (op.kind === "comment") bump(comments, op.postId);
  }
  const observedLikes = new Map<string, number>();
  const observedComments = new Map<string, number>();
  for (let i = 0; i < posts.length; i += 100) {
    const ids = posts.slice(i, i + 100).map((p) => p.postId);
    const { posts: found } = await clients.post.batchGetPosts({ postIds: ids }, accounts[0]!.call);
    for (const [id, post] of Object.entries(found)) {
      observedLikes.set(id, Number(post.likeCount));
      observedComments.set(id, Number(post.commentCount));
    }
  }
  compareCounts(verdict, "likes of post", likes, observedLikes);
  compareCounts(verdict, "comments on post", comments, observedComments);

  // Notifications: per recipient, one per follow, like and comment received (grouped, so summed per group key).
  const expectedNotes = new Map<string, Map<string, number>>(accounts.map((a) => [a.userId, new Map()]));
  for (const op of ops) {
    if (op.kind === "follow") bump(expectedNotes.get(op.followee)!, "follow");
    if (op.kind === "like" && op.liker !== op.author) bump(expectedNotes.get(op.author)!, `like:${op.postId}`);
    if (op.kind === "comment" && op.commenter !== op.author) bump(expectedNotes.get(op.author)!, `comment:${op.postId}`);
  }
  for (const account of accounts) {
    const observed = new Map<string, number>();
    let pageToken = "";
    do {
      const page = await clients.notification.listNotifications({ pageSize: 50, pageToken }, account.call);
      for (const group of page.groups) {
        const key = group.kind === Kind.FOLLOW ? "follow" : `${Kind[group.kind].toLowerCase()}:${group.postId}`;
        bump(observed, key, group.notificationCount);
      }
      pageToken = page.nextPageToken;
    } while (pageToken);
    compareCounts(verdict, `notifications of ${account.userId.slice(0, 8)}:`, expectedNotes.get(account.userId)!, observed);
  }

  // Direct messages: each client message once, sequence numbers without gaps.
  const conversations = new Map<string, { reader: string; clientIds: Set<string> }>();
  for (const op of ops) {
    if (op.kind !== "message") continue;
    const entry = conversations.get(op.conversationId!) ?? { reader: op.sender, clientIds: new Set<string>() };
    entry.clientIds.add(op.clientMessageId);
    conversations.set(op.conversationId!, entry);
  }
  for (const [conversationId, { reader, clientIds }] of conversations) {
    const call = accounts.find((a) => a.userId === reader)!.call;
    const seqs: number[] = [];
    const observed = new Map<string, number>();
    let anchorSeq = 0n;
    for (;;) {
      const page = await clients.chat.listMessages({ conversationId, direction: ListMessagesRequest_Direction.AFTER, anchorSeq, pageSize: 100 }, call);
      for (const message of page.messages) {
        seqs.push(Number(message.seq));
        if (message.membership === undefined) bump(observed, message.clientMessageId);
        anchorSeq = message.seq;
      }
      if (!page.hasMore || page.messages.length === 0) break;
    }
    compareCounts(verdict, `conversation ${conversationId.slice(0, 8)}: message`, new Map([...clientIds].map((id) => [id, 1])), observed);
    let next = 1;
    for (const seq of seqs) {
      if (seq > next) note(verdict, "lost", seq - next, `conversation ${conversationId.slice(0, 8)}: seqs ${next}..${seq - 1} missing`);
      if (seq < next) note(verdict, "doubled", 1, `conversation ${conversationId.slice(0, 8)}: seq ${seq} again`);
      next = Math.max(next, seq + 1);
    }
  }

  // Chat delivery: each member's stream history holds each of their conversations' messages once (the sender's too: their other devices).
  if (streams !== undefined) {
    const expectedOnStream = new Map<string, Map<string, number>>(accounts.map((a) => [a.userId, new Map()]));
    for (const op of ops) {
      if (op.kind !== "message") continue;
      for (const member of [op.sender, op.recipient]) expectedOnStream.get(member)!.set(op.clientMessageId, 1);
    }
    for (const account of accounts) {
      const position = await streams.position(account.userId);
      const replay = await streams.replay(account.userId, { epoch: position.epoch, offset: 0 });
      const observed = new Map<string, number>();
      if (replay.recovered) {
        for (const item of replay.items) {
          const event = decodeEvent(item.payload);
          if (event.payload.case === "chatMessage" && event.payload.value.membership === undefined) bump(observed, event.payload.value.clientMessageId);
        }
      }
      compareCounts(verdict, `stream of ${account.userId.slice(0, 8)}: message`, expectedOnStream.get(account.userId)!, observed);
    }
  }
  return verdict;
}
