// Per-kind channel preferences. Defaults: everything on, in the list and
// pushed, from anyone (not blocked). A stored row only holds what the user
// changed, so a default changed later reaches everyone who never touched it.
import { allKinds, type KindName } from "./kinds.ts";

export interface Channels {
  inApp: boolean;
  push: boolean;
}

export interface Preferences {
  channels: Readonly<Record<KindName, Channels>>;
  onlyFromFollowing: boolean;
}

export const defaultChannels: Readonly<Record<KindName, Channels>> = Object.fromEntries(allKinds.map((kind) => [kind, { inApp: true, push: true }])) as Record<KindName, Channels>;

export const defaultPreferences: Preferences = { channels: defaultChannels, onlyFromFollowing: false };

/** The stored changes over the defaults; unknown kinds in storage are ignored. */
export function resolvePreferences(stored: { channels: Record<string, Channels>; onlyFromFollowing: boolean } | undefined): Preferences {
  if (stored === undefined) return defaultPreferences;
  const channels = { ...defaultChannels };
  for (const kind of allKinds) {
    const changed = stored.channels[kind];
    if (changed !== undefined) channels[kind] = { inApp: changed.inApp, push: changed.push };
  }
  return { channels, onlyFromFollowing: stored.onlyFromFollowing };
}

/** Messages are never listed: their in-app flag is ignored and reads false. */
export function effectiveChannels(preferences: Preferences, kind: KindName): Channels {
  const channels = preferences.channels[kind];
  return kind === "message" ? { inApp: false, push: channels.push } : channels;
}
