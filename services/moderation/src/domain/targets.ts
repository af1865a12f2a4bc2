// What a report or removal is about, as stored ((kind, id)) and as the
// protos say it (the Target / ContentTarget oneofs, TargetKind).
import { create } from "@bufbuild/protobuf";
import { ContentTargetSchema, TargetKind, TargetSchema, type ContentTarget, type Target } from "@aviary/gen/aviary/moderation/v1/moderation_pb";

export type TargetKindName = "post" | "comment" | "user";
export type ContentKindName = Exclude<TargetKindName, "user">;

export interface StoredTarget<K extends TargetKindName = TargetKindName> {
  readonly kind: K;
  /** Lower-cased (Postgres prints UUIDs lower-case; ids are compared as strings). */
  readonly id: string;
}

const kinds = { postId: "post", commentId: "comment", userId: "user" } as const;
const cases = { post: "postId", comment: "commentId", user: "userId" } as const;

/** The oneof's set member (validation has required it already). */
export function storedTarget(target: Target): StoredTarget;
export function storedTarget(target: ContentTarget): StoredTarget<ContentKindName>;
export function storedTarget(target: Target | ContentTarget): StoredTarget {
  const kind = target.kind;
  if (kind.case === undefined) throw new Error("target without a kind");
  return { kind: kinds[kind.case], id: kind.value.toLowerCase() };
}

export function targetMessage(target: StoredTarget): Target {
  return create(TargetSchema, { kind: { case: cases[target.kind], value: target.id } });
}

export function contentTargetMessage(target: StoredTarget<ContentKindName>): ContentTarget {
  return create(ContentTargetSchema, { kind: { case: cases[target.kind], value: target.id } });
}

export const targetKindNames: Record<Exclude<TargetKind, TargetKind.UNSPECIFIED>, TargetKindName> = {
  [TargetKind.POST]: "post",
  [TargetKind.COMMENT]: "comment",
  [TargetKind.USER]: "user",
};

/** The proto field path of a target's set member, for field violations ("target.user_id"). */
export function targetField(prefix: string, target: StoredTarget): string {
  return `${prefix}.${target.kind}_id`;
}
