// Notifications, grouped by the service ("Ben and 2 others liked your post");
// the list follows the stream live, and opening it marks everything seen.
import { Kind, type NotificationGroup } from "@aviary/gen/aviary/notification/v1/notification_pb";
import { timestampDate, timestampNow } from "@bufbuild/protobuf/wkt";
import { h, errorLine, describeError, relativeTime } from "../dom.ts";
import { onLive, onResync } from "../realtime.ts";
import { badges, type Screen } from "../shell.ts";
import { api } from "../transport.ts";
import { displayName } from "./profile.ts";

const verbs: Partial<Record<Kind, string>> = {
  [Kind.FOLLOW]: "followed you",
  [Kind.LIKE]: "liked your post",
  [Kind.COMMENT]: "commented on your post",
  [Kind.REPLY]: "replied to your post",
  [Kind.MENTION]: "mentioned you",
  [Kind.MESSAGE]: "sent you a message",
};

export function describeGroup(group: NotificationGroup): string {
  const first = displayName(group.sampleActors[0]);
  const others = group.actorCount - 1;
  const who = others <= 0 ? first : `${first} and ${others} other${others === 1 ? "" : "s"}`;
  return `${who} ${verbs[group.kind] ?? "did something"}`;
}

export const notificationsScreen: Screen = (root) => {
  const list = h("ul", { class: "notifications", "aria-live": "polite" });
  const error = errorLine();
  const load = async () => {
    const page = await api.notification.listNotifications({ pageSize: 50 });
    list.replaceChildren(
      ...page.groups.map((group) => {
        const at = group.latestAt ? timestampDate(group.latestAt) : undefined;
        return h("li", { class: group.unread ? "card unread" : "card", "data-kind": Kind[group.kind] },
          group.unread ? h("span", { class: "visually-hidden" }, "Unread: ") : null,
          describeGroup(group),
          " ",
          h("time", { datetime: at?.toISOString() ?? "" }, relativeTime(at)),
        );
      }),
    );
    if (page.groups.length === 0) list.append(h("li", { class: "muted" }, "No notifications yet."));
  };
  const show = () => void load().catch((failure: unknown) => error.show(describeError(failure)));
  // Everything listed when the screen opens counts as seen.
  load()
    .then(() => api.notification.markSeen({ upTo: { case: "time", value: timestampNow() } }))
    .then(({ unreadCount }) => badges.notifications(unreadCount))
    .catch((failure: unknown) => error.show(describeError(failure)));
  const stopChanges = onLive("notificationsChanged", show);
  const stopResync = onResync(show);
  root.append(h("h1", {}, "Notifications"), error.element, list);
  return () => {
    stopChanges();
    stopResync();
  };
};
