// Which push providers this deployment has, from the environment.
//
// A provider whose credentials are absent is simply not opened (a deployment
// without an iOS app has no APNs key; the worker skips those devices). Half a
// configuration is a mistake, though, and fails startup with every missing or
// bad variable named at once, like loadConfig does for single variables.

import { readFile } from "node:fs/promises";
import { ConfigError, int, optionalString, optionalUrl, url, type ConfigOf, type ConfigProblem } from "@aviary/runtime/config";
import { APNS_PRODUCTION_URL, createApnsProvider } from "./apns.ts";
import { createFcmProvider, FCM_URL, parseServiceAccount, type FcmServiceAccount } from "./fcm.ts";
import type { PushPlatform, PushProvider } from "./provider.ts";
import { createWebPushProvider, vapidKeyProblems } from "./webpush.ts";

export const pushProvidersConfigSpec = {
  /** https://api.push.apple.com, or https://api.sandbox.push.apple.com for development builds. */
  apnsUrl: url("APNS_URL", { default: APNS_PRODUCTION_URL, protocols: ["https"] }),
  apnsKeyId: optionalString("APNS_KEY_ID"),
  apnsTeamId: optionalString("APNS_TEAM_ID"),
  /** The .p8 key as PEM text; or APNS_KEY_FILE, its path. */
  apnsKey: optionalString("APNS_KEY"),
  apnsKeyFile: optionalString("APNS_KEY_FILE"),
  /** The app's bundle id. */
  apnsTopic: optionalString("APNS_TOPIC"),
  /** Apple: refresh the provider token no more often than every 20 minutes and at least every 60. */
  apnsTokenRefreshMinutes: int("APNS_TOKEN_REFRESH_MINUTES", { default: 40, min: 20, max: 60 }),
  fcmUrl: url("FCM_URL", { default: FCM_URL, protocols: ["https"] }),
  /** The service-account key file's JSON; or FCM_SERVICE_ACCOUNT_FILE, its path. */
  fcmServiceAccount: optionalString("FCM_SERVICE_ACCOUNT"),
  fcmServiceAccountFile: optionalString("FCM_SERVICE_ACCOUNT_FILE"),
  /** Where to get OAuth tokens instead of the service account's token_uri. */
  fcmTokenUrl: optionalUrl("FCM_TOKEN_URL", { protocols: ["https"] }),
  webPushVapidPublicKey: optionalString("WEBPUSH_VAPID_PUBLIC_KEY"),
  webPushVapidPrivateKey: optionalString("WEBPUSH_VAPID_PRIVATE_KEY"),
  /** A contact for push service operators (RFC 8292 `sub`). */
  webPushSubject: optionalString("WEBPUSH_SUBJECT", { pattern: /^(mailto:|https:).+$/ }),
  /** How long push services keep an undelivered web push (RFC 8030 TTL; the common cap is 4 weeks). */
  webPushTtlSeconds: int("WEBPUSH_TTL_SECONDS", { default: 86_400, min: 0, max: 2_419_200 }),
  /** An extra CA (PEM file) trusted for provider endpoints: for local test servers only. */
  pushCaFile: optionalString("PUSH_CA_FILE"),
  pushRequestTimeoutMs: int("PUSH_REQUEST_TIMEOUT_MS", { default: 10_000, min: 100, max: 120_000 }),
};

export type PushProvidersConfig = ConfigOf<typeof pushProvidersConfigSpec>;

export interface OpenPushProvidersOptions {
  /** Milliseconds since the epoch, for every provider (tests). */
  readonly now?: () => number;
}

/** Collects problems while the providers are opened, so all are reported together. */
class Problems {
  readonly list: ConfigProblem[] = [];
  add(variable: string, problem: string): void {
    this.list.push({ variable, problem });
  }
}

function message(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** PEM pasted into an environment variable often arrives with literal "\n"s. */
function unescapePem(text: string): string {
  return text.includes("\n") ? text : text.replaceAll("\\n", "\n");
}

/** A value given inline or as a file (never both); undefined when neither is set or reading failed (then a problem is recorded). */
async function inlineOrFile(inline: string | undefined, file: string | undefined, inlineVar: string, fileVar: string, problems: Problems): Promise<string | undefined> {
  if (inline !== undefined && file !== undefined) {
    problems.add(fileVar, `set ${inlineVar} or ${fileVar}, not both`);
    return undefined;
  }
  if (file === undefined) return inline;
  try {
    return await readFile(file, "utf8");
  } catch (e) {
    problems.add(fileVar, `cannot read ${JSON.stringify(file)}: ${message(e)}`);
    return undefined;
  }
}

/** Names every unset variable of a group when at least one of it is set; true when the group is complete. */
function complete(group: string, vars: readonly { variable: string; set: boolean }[], problems: Problems): boolean {
  const missing = vars.filter((v) => !v.set);
  if (missing.length === 0) return true;
  if (missing.length === vars.length) return false;
  const given = vars.filter((v) => v.set).map((v) => v.variable);
  const all = vars.map((v) => v.variable).join(", ");
  for (const v of missing) problems.add(v.variable, `missing: ${group} needs ${all} (${given.join(", ")} ${given.length === 1 ? "is" : "are"} set)`);
  return false;
}

/**
 * Opens the configured providers. Throws ConfigError (listing every problem)
 * when a provider is half configured or its credentials are unusable.
 */
export async function openPushProviders(config: PushProvidersConfig, options: OpenPushProvidersOptions = {}): Promise<Map<PushPlatform, PushProvider>> {
  const problems = new Problems();
  const clock = options.now === undefined ? {} : { now: options.now };
  const common = { requestTimeoutMs: config.pushRequestTimeoutMs, ...clock };
  let ca: string | undefined;
  if (config.pushCaFile !== undefined) {
    try {
      ca = await readFile(config.pushCaFile, "utf8");
    } catch (e) {
      problems.add("PUSH_CA_FILE", `cannot read ${JSON.stringify(config.pushCaFile)}: ${message(e)}`);
    }
  }
  const tls = ca === undefined ? {} : { ca };
  const opening: Promise<PushProvider | undefined>[] = [];

  // APNs
  const apnsKeyVar = config.apnsKeyFile !== undefined ? "APNS_KEY_FILE" : "APNS_KEY";
  const apnsComplete = complete(
    "APNs",
    [
      { variable: "APNS_KEY_ID", set: config.apnsKeyId !== undefined },
      { variable: "APNS_TEAM_ID", set: config.apnsTeamId !== undefined },
      { variable: "APNS_KEY or APNS_KEY_FILE", set: config.apnsKey !== undefined || config.apnsKeyFile !== undefined },
      { variable: "APNS_TOPIC", set: config.apnsTopic !== undefined },
    ],
    problems,
  );
  const apnsKey = await inlineOrFile(config.apnsKey, config.apnsKeyFile, "APNS_KEY", "APNS_KEY_FILE", problems);
  if (apnsComplete && apnsKey !== undefined && config.apnsKeyId !== undefined && config.apnsTeamId !== undefined && config.apnsTopic !== undefined) {
    opening.push(
      createApnsProvider({
        url: config.apnsUrl,
        keyId: config.apnsKeyId,
        teamId: config.apnsTeamId,
        key: unescapePem(apnsKey),
        topic: config.apnsTopic,
        tokenRefreshMinutes: config.apnsTokenRefreshMinutes,
        ...common,
        ...tls,
      }).catch((e: unknown) => void problems.add(apnsKeyVar, `not a usable APNs signing key (PKCS#8 P-256 .p8 file): ${message(e)}`)),
    );
  }

  // FCM
  const fcmVar = config.fcmServiceAccountFile !== undefined ? "FCM_SERVICE_ACCOUNT_FILE" : "FCM_SERVICE_ACCOUNT";
  const fcmJson = await inlineOrFile(config.fcmServiceAccount, config.fcmServiceAccountFile, "FCM_SERVICE_ACCOUNT", "FCM_SERVICE_ACCOUNT_FILE", problems);
  if (fcmJson === undefined && config.fcmServiceAccount === undefined && config.fcmServiceAccountFile === undefined && config.fcmTokenUrl !== undefined) {
    problems.add("FCM_SERVICE_ACCOUNT", "missing: FCM_TOKEN_URL is set, but FCM needs FCM_SERVICE_ACCOUNT or FCM_SERVICE_ACCOUNT_FILE");
  }
  if (fcmJson !== undefined) {
    let account: FcmServiceAccount | undefined;
    try {
      account = parseServiceAccount(fcmJson);
    } catch (e) {
      problems.add(fcmVar, `not a service-account key file: ${message(e)}`);
    }
    if (account !== undefined) {
      opening.push(
        createFcmProvider({
          serviceAccount: account,
          url: config.fcmUrl,
          ...(config.fcmTokenUrl === undefined ? {} : { tokenUrl: config.fcmTokenUrl }),
          ...common,
          ...tls,
        }).catch((e: unknown) => void problems.add(fcmVar, `private_key is not a usable RSA key: ${message(e)}`)),
      );
    }
  }

  // Web Push
  const webComplete = complete(
    "Web Push",
    [
      { variable: "WEBPUSH_VAPID_PUBLIC_KEY", set: config.webPushVapidPublicKey !== undefined },
      { variable: "WEBPUSH_VAPID_PRIVATE_KEY", set: config.webPushVapidPrivateKey !== undefined },
      { variable: "WEBPUSH_SUBJECT", set: config.webPushSubject !== undefined },
    ],
    problems,
  );
  if (webComplete && config.webPushVapidPublicKey !== undefined && config.webPushVapidPrivateKey !== undefined && config.webPushSubject !== undefined) {
    const keyProblems = vapidKeyProblems(config.webPushVapidPublicKey, config.webPushVapidPrivateKey);
    for (const p of keyProblems) problems.add(p.key === "public" ? "WEBPUSH_VAPID_PUBLIC_KEY" : "WEBPUSH_VAPID_PRIVATE_KEY", p.problem);
    if (keyProblems.length === 0) {
      opening.push(
        createWebPushProvider({
          vapidPublicKey: config.webPushVapidPublicKey,
          vapidPrivateKey: config.webPushVapidPrivateKey,
          subject: config.webPushSubject,
          ttlSeconds: config.webPushTtlSeconds,
          ...common,
          ...tls,
        }).catch((e: unknown) => void problems.add("WEBPUSH_SUBJECT", message(e))),
      );
    }
  }

  const opened = (await Promise.all(opening)).filter((p): p is PushProvider => p !== undefined);
  if (problems.list.length > 0) {
    await Promise.all(opened.map((p) => p.close()));
    throw new ConfigError(problems.list);
  }
  return new Map(opened.map((p) => [p.platform, p]));
}
