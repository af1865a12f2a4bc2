// Which code senders this deployment has, from the environment. A channel
// whose provider is not configured writes to the development file
// (AUTH_CODE_SINK), which is what `make dev` wants; half a configuration is a
// mistake and fails startup naming every missing variable at once.
import { bool, ConfigError, duration, optionalString, optionalUrl, port, url, type ConfigOf, type ConfigProblem } from "@aviary/runtime/config";
import { channelCodeSender, fileCodeSender, type CodeSender } from "../domain/code-sender.ts";
import { smtpCodeSender } from "./smtp.ts";
import { twilioCodeSender } from "./sms.ts";

export const codeSendersConfigSpec = {
  /** smtp://user:pass@host:587 or smtps://user:pass@host:465; or AUTH_SMTP_HOST and friends. */
  smtpUrl: optionalUrl("AUTH_SMTP_URL", { protocols: ["smtp", "smtps"] }),
  smtpHost: optionalString("AUTH_SMTP_HOST"),
  smtpPort: port("AUTH_SMTP_PORT", { default: 587 }),
  /** TLS from the first byte (465); otherwise STARTTLS when offered. */
  smtpSecure: bool("AUTH_SMTP_SECURE", { default: false }),
  /** Refuse to send over a connection that was not upgraded with STARTTLS. */
  smtpRequireTls: bool("AUTH_SMTP_REQUIRE_TLS", { default: false }),
  smtpUser: optionalString("AUTH_SMTP_USER"),
  smtpPass: optionalString("AUTH_SMTP_PASS"),
  /** The From header, e.g. `Aviary <no-reply@example.org>`; required when SMTP is configured. */
  smtpFrom: optionalString("AUTH_SMTP_FROM"),
  smtpTimeoutMs: duration("AUTH_SMTP_TIMEOUT", { default: "10s", min: "100ms", max: "2m" }),
  /** Base URL of a Twilio-compatible API. */
  smsBaseUrl: url("AUTH_SMS_BASE_URL", { default: "https://api.twilio.com", protocols: ["http", "https"] }),
  smsAccountSid: optionalString("AUTH_SMS_ACCOUNT_SID"),
  smsAuthToken: optionalString("AUTH_SMS_AUTH_TOKEN"),
  /** The sender number (E.164) or sender id. */
  smsFrom: optionalString("AUTH_SMS_FROM"),
  smsTimeoutMs: duration("AUTH_SMS_TIMEOUT", { default: "10s", min: "100ms", max: "2m" }),
};

export type CodeSendersConfig = ConfigOf<typeof codeSendersConfigSpec>;

export interface OpenedSenders {
  sender: CodeSender;
  /** Which channels reach a real provider (the others go to the file). */
  providers: { email: "smtp" | "file"; sms: "sms" | "file" };
  close(): Promise<void>;
}

/** Checks the provider settings; throws a ConfigError naming every problem. */
export function codeSenderProblems(config: CodeSendersConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const smtp = config.smtpUrl !== undefined || config.smtpHost !== undefined;
  if (config.smtpUrl !== undefined && config.smtpHost !== undefined) problems.push({ variable: "AUTH_SMTP_HOST", problem: "set AUTH_SMTP_URL or AUTH_SMTP_HOST, not both" });
  if (smtp && config.smtpFrom === undefined) problems.push({ variable: "AUTH_SMTP_FROM", problem: "required when SMTP is configured" });
  if (!smtp && (config.smtpUser !== undefined || config.smtpFrom !== undefined)) problems.push({ variable: "AUTH_SMTP_URL", problem: "AUTH_SMTP_USER/AUTH_SMTP_FROM are set but no SMTP server is (AUTH_SMTP_URL or AUTH_SMTP_HOST)" });
  if (config.smtpPass !== undefined && config.smtpUser === undefined && config.smtpUrl === undefined) problems.push({ variable: "AUTH_SMTP_USER", problem: "required with AUTH_SMTP_PASS" });
  const sms = [config.smsAccountSid, config.smsAuthToken, config.smsFrom];
  if (sms.some((v) => v !== undefined) && sms.some((v) => v === undefined)) {
    for (const [variable, value] of [["AUTH_SMS_ACCOUNT_SID", config.smsAccountSid], ["AUTH_SMS_AUTH_TOKEN", config.smsAuthToken], ["AUTH_SMS_FROM", config.smsFrom]] as const) {
      if (value === undefined) problems.push({ variable, problem: "required when the SMS gateway is configured (AUTH_SMS_ACCOUNT_SID, AUTH_SMS_AUTH_TOKEN, AUTH_SMS_FROM)" });
    }
  }
  return problems;
}

export function openCodeSenders(config: CodeSendersConfig & { codeSink: string }): OpenedSenders {
  const problems = codeSenderProblems(config);
  if (problems.length > 0) throw new ConfigError(problems);
  const file = fileCodeSender(config.codeSink);
  const smtp =
    config.smtpFrom !== undefined && (config.smtpUrl !== undefined || config.smtpHost !== undefined)
      ? smtpCodeSender({
          ...(config.smtpUrl !== undefined ? { url: config.smtpUrl.toString() } : {}),
          ...(config.smtpHost !== undefined ? { host: config.smtpHost } : {}),
          port: config.smtpPort,
          secure: config.smtpSecure,
          requireTls: config.smtpRequireTls,
          ...(config.smtpUser !== undefined ? { user: config.smtpUser } : {}),
          ...(config.smtpPass !== undefined ? { pass: config.smtpPass } : {}),
          from: config.smtpFrom,
          timeoutMs: config.smtpTimeoutMs,
        })
      : undefined;
  const sms =
    config.smsAccountSid !== undefined && config.smsAuthToken !== undefined && config.smsFrom !== undefined
      ? twilioCodeSender({ baseUrl: config.smsBaseUrl.toString(), accountSid: config.smsAccountSid, authToken: config.smsAuthToken, from: config.smsFrom, timeoutMs: config.smsTimeoutMs })
      : undefined;
  return {
    sender: channelCodeSender({ email: smtp ?? file, sms: sms ?? file }),
    providers: { email: smtp ? "smtp" : "file", sms: sms ? "sms" : "file" },
    close: async () => smtp?.close(),
  };
}
