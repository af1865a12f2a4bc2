import type { ServiceImpl } from "@connectrpc/connect";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ServiceAuthService } from "@aviary/gen/aviary/auth/v1/service_auth_pb";
import { getPeer } from "@aviary/runtime/context";
import { resourceExhausted, unauthenticated } from "@aviary/runtime/errors";
import type { AttemptLimiter } from "./domain/attempt-limits.ts";
import type { KeyRing } from "./domain/signing-keys.ts";
import { authenticateClient, type ServiceClient } from "./domain/service-clients.ts";
import { signServiceToken, type ServiceTokenSettings } from "./domain/service-tokens.ts";

/** The one procedure of ServiceAuthService; callable without a token (it is how a service gets one). */
export const serviceAuthPublicProcedures = [`${ServiceAuthService.typeName}/IssueServiceToken`];

export interface ServiceAuthDeps {
  keys: KeyRing;
  clients: readonly ServiceClient[];
  /** Failed attempts per client id and caller address. */
  failures: AttemptLimiter;
  settings: ServiceTokenSettings;
  now?: () => Date;
}

// One message for an unknown client and a wrong secret: the answer must not
// tell which client ids exist.
const BAD_CREDENTIALS = "invalid client credentials";

export function createServiceAuthHandlers(deps: ServiceAuthDeps): ServiceImpl<typeof ServiceAuthService> {
  const now = deps.now ?? (() => new Date());
  return {
    async issueServiceToken(request, context) {
      // Counted per client id *and* address: a stranger guessing secrets can
      // then lock out only their own address, not the real service.
      const subject = `${request.clientId}@${getPeer(context).ip}`;
      const state = await deps.failures.state(subject);
      if (state.blocked) throw resourceExhausted("too many failed attempts for this client", state.retryAfterSeconds);
      const client = authenticateClient(deps.clients, request.clientId, request.clientSecret);
      if (client === undefined) {
        await deps.failures.count(subject);
        throw unauthenticated(BAD_CREDENTIALS);
      }
      const { token, expiresAt } = await signServiceToken(deps.keys, deps.settings, client, now());
      return { accessToken: token, expiresAt: timestampFromDate(expiresAt), scopes: [...client.scopes] };
    },
  };
}
