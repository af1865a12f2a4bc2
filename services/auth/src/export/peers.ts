// The services that own a share of a user's data, called by the exporter
// with a service token: there is no user behind a background build. The
// auth service issues service tokens itself, so the exporter signs its own
// (same ring key, same claims as IssueServiceToken's) instead of holding a
// client secret for a call to itself; the runtime's token source still caches
// and refreshes it like any other service's.
import { createClient, type Client } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { UserInternalService } from "@aviary/gen/aviary/user/v1/user_internal_pb";
import { PostInternalService } from "@aviary/gen/aviary/post/v1/post_internal_pb";
import { MediaInternalService } from "@aviary/gen/aviary/media/v1/media_internal_pb";
import { ChatInternalService } from "@aviary/gen/aviary/chat/v1/chat_internal_pb";
import { NotificationInternalService } from "@aviary/gen/aviary/notification/v1/notification_internal_pb";
import { ModerationInternalService } from "@aviary/gen/aviary/moderation/v1/moderation_internal_pb";
import { createServiceTokenSource, serviceTokenInterceptor } from "@aviary/runtime/auth/service-token";
import { createServiceTransport } from "@aviary/runtime/interceptors/client";
import { exportScope } from "@aviary/runtime/export";
import { signServiceToken, type ServiceTokenSettings } from "../domain/service-tokens.ts";
import type { KeyRing } from "../domain/signing-keys.ts";

/** The exporter's identity in its service tokens (`sub` = service:auth-exporter). */
export const exporterClientId = "auth-exporter";

/** What the exporter's token allows: each owning service's export RPC, nothing else. */
export const exporterScopes = ["user", "post", "media", "chat", "notification", "moderation"].map(exportScope);

export interface ExportPeers {
  user: Pick<Client<typeof UserInternalService>, "exportUserData">;
  post: Pick<Client<typeof PostInternalService>, "exportUserPosts">;
  media: Pick<Client<typeof MediaInternalService>, "exportUserMedia">;
  chat: Pick<Client<typeof ChatInternalService>, "exportUserMessages">;
  notification: Pick<Client<typeof NotificationInternalService>, "exportUserNotifications">;
  moderation: Pick<Client<typeof ModerationInternalService>, "exportUserReports">;
}

/** Where each owning service is (the exporter's USER_URL, POST_URL, ...). */
export type ExportPeerUrls = Record<keyof ExportPeers, string>;

export function connectExportPeers(options: { keys: KeyRing; tokens: ServiceTokenSettings; urls: ExportPeerUrls }): ExportPeers {
  const source = createServiceTokenSource({
    authUrl: "",
    clientId: exporterClientId,
    clientSecret: "",
    client: {
      async issueServiceToken() {
        const { token, expiresAt } = await signServiceToken(options.keys, options.tokens, { clientId: exporterClientId, scopes: exporterScopes });
        return { $typeName: "aviary.auth.v1.IssueServiceTokenResponse", accessToken: token, expiresAt: timestampFromDate(expiresAt), scopes: exporterScopes };
      },
    },
  });
  const transport = (url: string) => createServiceTransport(url.replace(/\/+$/, ""), { interceptors: [serviceTokenInterceptor(source)] });
  return {
    user: createClient(UserInternalService, transport(options.urls.user)),
    post: createClient(PostInternalService, transport(options.urls.post)),
    media: createClient(MediaInternalService, transport(options.urls.media)),
    chat: createClient(ChatInternalService, transport(options.urls.chat)),
    notification: createClient(NotificationInternalService, transport(options.urls.notification)),
    moderation: createClient(ModerationInternalService, transport(options.urls.moderation)),
  };
}
