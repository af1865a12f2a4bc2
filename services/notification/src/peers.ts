// The user service, as the notification service needs it: names (mention
// resolution, push text) and push devices, over UserInternalService with the
// service's own identity (a service token from the auth service), never a
// user's token. Ports here, so tests and the dev launcher can hand in others.
import type { Client } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { Platform } from "@aviary/gen/aviary/user/v1/user_pb";
import { UserInternalService } from "@aviary/gen/aviary/user/v1/user_internal_pb";
import { createServiceTokenSource, serviceTokenInterceptor } from "@aviary/runtime/auth/service-token";
import { createServiceClient } from "@aviary/runtime/interceptors/client";
import type { PushPlatform } from "./push/provider.ts";

export interface UserSummary {
  userId: string;
  username: string;
  displayName: string;
}

export interface UserDirectory {
  /** User ids by lower-cased username; unknown names are absent. */
  idsByUsername(usernames: readonly string[]): Promise<Map<string, string>>;
  /** Names by user id; unknown users are absent. */
  summaries(userIds: readonly string[]): Promise<Map<string, UserSummary>>;
}

export interface PushDevice {
  deviceId: string;
  platform: PushPlatform;
  token: string;
  /** The session that registered it; "" when unknown. */
  sessionId: string;
}

export interface DeviceRegistry {
  /** The user's devices that are not quarantined. */
  devicesOf(userId: string): Promise<PushDevice[]>;
  /** The provider says the token is gone (kept when re-registered after `since`). */
  retire(deviceId: string, since: Date | undefined): Promise<void>;
  /** The provider refuses the token as configured; kept, but not used until registered again. */
  quarantine(deviceId: string, reason: string): Promise<void>;
}

const PLATFORMS: ReadonlyMap<Platform, PushPlatform> = new Map([
  [Platform.IOS, "ios"],
  [Platform.ANDROID, "android"],
  [Platform.WEB, "web"],
]);

export interface UserInternalOptions {
  userUrl: string;
  authUrl: string;
  clientId: string;
  clientSecret: string;
}

export function connectUserInternal(options: UserInternalOptions): { directory: UserDirectory; devices: DeviceRegistry } {
  const tokens = createServiceTokenSource({ authUrl: options.authUrl, clientId: options.clientId, clientSecret: options.clientSecret });
  const client: Client<typeof UserInternalService> = createServiceClient(UserInternalService, options.userUrl, {
    interceptors: [serviceTokenInterceptor(tokens)],
    defaultTimeoutMs: 5_000,
  });
  return { directory: userDirectory(client), devices: deviceRegistry(client) };
}

/** At most this many names per lookup call (the contract's max_items). */
const LOOKUP_BATCH = 100;

export function userDirectory(client: Pick<Client<typeof UserInternalService>, "batchLookupUsers">): UserDirectory {
  return {
    async idsByUsername(usernames) {
      const wanted = [...new Set(usernames.map((name) => name.toLowerCase()))].filter((name) => name !== "");
      const found = new Map<string, string>();
      for (let i = 0; i < wanted.length; i += LOOKUP_BATCH) {
        const { users } = await client.batchLookupUsers({ usernames: wanted.slice(i, i + LOOKUP_BATCH) });
        for (const user of users) if (user.username !== "") found.set(user.username.toLowerCase(), user.userId.toLowerCase());
      }
      return found;
    },
    async summaries(userIds) {
      const wanted = [...new Set(userIds)];
      const found = new Map<string, UserSummary>();
      for (let i = 0; i < wanted.length; i += LOOKUP_BATCH) {
        const { users } = await client.batchLookupUsers({ userIds: wanted.slice(i, i + LOOKUP_BATCH) });
        for (const user of users) found.set(user.userId.toLowerCase(), { userId: user.userId.toLowerCase(), username: user.username, displayName: user.displayName });
      }
      return found;
    },
  };
}

export function deviceRegistry(client: Pick<Client<typeof UserInternalService>, "batchGetDevices" | "retireDevice" | "quarantineDevice">): DeviceRegistry {
  return {
    async devicesOf(userId) {
      const { devices } = await client.batchGetDevices({ userIds: [userId] });
      return devices.flatMap(({ device, sessionId }) => {
        const platform = device === undefined ? undefined : PLATFORMS.get(device.platform);
        return device === undefined || platform === undefined ? [] : [{ deviceId: device.deviceId.toLowerCase(), platform, token: device.token, sessionId }];
      });
    },
    async retire(deviceId, since) {
      await client.retireDevice({ deviceId, ...(since === undefined ? {} : { goneSince: timestampFromDate(since) }) });
    },
    async quarantine(deviceId, reason) {
      await client.quarantineDevice({ deviceId, reason: reason.slice(0, 200) || "rejected by the provider" });
    },
  };
}
