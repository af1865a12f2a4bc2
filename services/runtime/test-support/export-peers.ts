// Data exports in the test mesh: the auth service starts first, before the
// services whose shares it exports, so its exporter gets peers that are
// connected later (once every URL is known), through service tokens of a
// client of its own (AUTH_SERVICE_CLIENTS), as a deployed exporter's calls
// would be authorised. A build that starts before they are connected fails
// UNAVAILABLE and is retried by the bus.
import { createHash, randomBytes } from "node:crypto";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { UserInternalService } from "@aviary/gen/aviary/user/v1/user_internal_pb";
import { PostInternalService } from "@aviary/gen/aviary/post/v1/post_internal_pb";
import { MediaInternalService } from "@aviary/gen/aviary/media/v1/media_internal_pb";
import { ChatInternalService } from "@aviary/gen/aviary/chat/v1/chat_internal_pb";
import { NotificationInternalService } from "@aviary/gen/aviary/notification/v1/notification_internal_pb";
import { ModerationInternalService } from "@aviary/gen/aviary/moderation/v1/moderation_internal_pb";
import { createServiceTokenSource, serviceTokenInterceptor } from "../src/auth/service-token.ts";
import { createServiceTransport } from "../src/interceptors/client.ts";
import { exporterScopes, type ExportPeers, type ExportPeerUrls } from "../../auth/src/export/peers.ts";

export interface LateExportPeers {
  /** For the auth service's `exportPeers` adapter. */
  peers: ExportPeers;
  /** Its AUTH_SERVICE_CLIENTS entry. */
  clientEntry: string;
  /** Connects the peers, with tokens from the auth service at `authUrl`. */
  connect(authUrl: string, urls: ExportPeerUrls): void;
}

export function lateExportPeers(): LateExportPeers {
  const clientId = "mesh-exporter";
  const secret = randomBytes(32).toString("hex");
  let connected: ExportPeers | undefined;
  const now = (): ExportPeers => {
    if (connected === undefined) throw new ConnectError("the mesh is still starting", Code.Unavailable);
    return connected;
  };
  return {
    clientEntry: `${clientId}:${exporterScopes.join("+")}:${createHash("sha256").update(secret).digest("hex")}`,
    peers: {
      user: { exportUserData: (request, options) => now().user.exportUserData(request, options) },
      post: { exportUserPosts: (request, options) => now().post.exportUserPosts(request, options) },
      media: { exportUserMedia: (request, options) => now().media.exportUserMedia(request, options) },
      chat: { exportUserMessages: (request, options) => now().chat.exportUserMessages(request, options) },
      notification: { exportUserNotifications: (request, options) => now().notification.exportUserNotifications(request, options) },
      moderation: { exportUserReports: (request, options) => now().moderation.exportUserReports(request, options) },
    },
    connect(authUrl, urls) {
      const source = createServiceTokenSource({ authUrl, clientId, clientSecret: secret });
      const transport = (url: string) => createServiceTransport(url, { interceptors: [serviceTokenInterceptor(source)] });
      connected = {
        user: createClient(UserInternalService, transport(urls.user)),
        post: createClient(PostInternalService, transport(urls.post)),
        media: createClient(MediaInternalService, transport(urls.media)),
        chat: createClient(ChatInternalService, transport(urls.chat)),
        notification: createClient(NotificationInternalService, transport(urls.notification)),
        moderation: createClient(ModerationInternalService, transport(urls.moderation)),
      };
    },
  };
}
