// The kinds of notification, as the contract numbers them and as the store
// names them (text columns read better in SQL than enum numbers).
import { Kind } from "@aviary/gen/aviary/notification/v1/notification_pb";

export type KindName = "follow" | "like" | "comment" | "reply" | "mention" | "message";

const NAMES: ReadonlyMap<Kind, KindName> = new Map([
  [Kind.FOLLOW, "follow"],
  [Kind.LIKE, "like"],
  [Kind.COMMENT, "comment"],
  [Kind.REPLY, "reply"],
  [Kind.MENTION, "mention"],
  [Kind.MESSAGE, "message"],
]);
const KINDS: ReadonlyMap<KindName, Kind> = new Map([...NAMES].map(([kind, name]) => [name, kind]));

/** Every kind, in contract order. */
export const allKinds: readonly KindName[] = [...NAMES.values()];

/** The kinds the list shows; messages are push only (chat keeps its own unread state). */
export const listedKinds: readonly KindName[] = allKinds.filter((kind) => kind !== "message");

export function kindName(kind: Kind): KindName {
  const name = NAMES.get(kind);
  if (name === undefined) throw new Error(`not a notification kind: ${kind}`);
  return name;
}

export function kindOf(name: string): Kind {
  const kind = KINDS.get(name as KindName);
  if (kind === undefined) throw new Error(`not a notification kind name: ${name}`);
  return kind;
}
