// The port every push provider sits behind (APNs, FCM HTTP v1, Web Push).
// An adapter turns one message for one device into one provider request, and
// the provider's answer into a verdict the worker acts on; what each status
// means is the adapter's knowledge, what to do about it is the worker's.

export type PushPlatform = "ios" | "android" | "web";

/** One device to push to. */
export interface PushTarget {
  readonly deviceId: string;
  readonly platform: PushPlatform;
  /** The APNs device token, the FCM registration token, or the Web Push subscription (JSON). */
  readonly token: string;
}

/** What to show, the same for every platform. */
export interface PushMessage {
  /** Unique per (notification, device): sent where a provider takes an id (apns-id). */
  readonly id: string;
  readonly title: string;
  readonly body: string;
  /** A later push with the same key replaces this one on the device (the notification group). */
  readonly collapseKey: string;
  /** The app badge: the recipient's unread count. */
  readonly badge: number;
  /** Passed to the app untouched (notification_id, group_id, kind). */
  readonly data: Readonly<Record<string, string>>;
}

/** The provider's answer, as the worker needs it. */
export type PushVerdict =
  /** Accepted by the provider. */
  | { readonly kind: "delivered" }
  /** The token is dead (APNs 410, FCM UNREGISTERED, Web Push 404/410): remove the device. `since`: when it stopped being valid, if the provider says. */
  | { readonly kind: "gone"; readonly reason: string; readonly since?: Date }
  /** The token is fine but not for us as configured (wrong APNs environment or topic, FCM sender mismatch, unparsable subscription): keep it, stop using it. */
  | { readonly kind: "quarantine"; readonly reason: string }
  /** Try again later (429, 5xx, timeouts, connection errors); `retryAfterMs` from Retry-After when the provider sent one. */
  | { readonly kind: "retry"; readonly reason: string; readonly retryAfterMs?: number }
  /** Will never succeed, and not the token's fault (payload too large, our credentials rejected): dead-letter it. */
  | { readonly kind: "failed"; readonly reason: string };

export interface PushProvider {
  readonly platform: PushPlatform;
  /** Never throws for a provider's answer or a network failure: those are verdicts. */
  send(target: PushTarget, message: PushMessage, signal?: AbortSignal): Promise<PushVerdict>;
  close(): Promise<void>;
}
