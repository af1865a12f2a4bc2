// Texts with codes through an HTTP SMS gateway with Twilio's request shape:
//   POST {base}/2010-04-01/Accounts/{sid}/Messages.json
//   form-encoded To, From, Body; HTTP basic auth sid:token
// answered 201 with the message as JSON, or an error document
// `{ code, message, status }` (e.g. 21211: invalid To number). Any provider
// offering this shape works by pointing AUTH_SMS_BASE_URL at it.
import { DeliveryError, type CodeSender } from "../domain/code-sender.ts";
import { renderSms } from "./templates.ts";

export interface SmsSettings {
  baseUrl: string;
  accountSid: string;
  authToken: string;
  /** The sender number (E.164) or alphanumeric sender id. */
  from: string;
  timeoutMs: number;
}

export function twilioCodeSender(settings: SmsSettings): CodeSender {
  const endpoint = `${settings.baseUrl.replace(/\/+$/, "")}/2010-04-01/Accounts/${encodeURIComponent(settings.accountSid)}/Messages.json`;
  const authorization = `Basic ${Buffer.from(`${settings.accountSid}:${settings.authToken}`).toString("base64")}`;
  return {
    async send(message) {
      const body = new URLSearchParams({ To: message.to.value, From: settings.from, Body: renderSms(message) });
      let response: Response;
      try {
        response = await fetch(endpoint, {
          method: "POST",
          headers: { authorization, "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
          body,
          signal: AbortSignal.timeout(settings.timeoutMs),
        });
      } catch (error) {
        // No answer: it may or may not have been sent. Trying again risks a second text, never a lost one.
        const reason = error instanceof Error && error.name === "TimeoutError" ? `no answer within ${settings.timeoutMs} ms` : describe(error);
        throw new DeliveryError("transient", `SMS gateway unreachable: ${reason}`, { cause: error });
      }
      const text = (await response.text().catch(() => "")).slice(0, 2_000);
      if (response.ok) return;
      throw classifySmsResponse(response.status, text, response.headers.get("retry-after"));
    },
  };
}

/** An error answer as a DeliveryError: 408, 429 and 5xx are worth retrying; other 4xx (bad number, bad credentials) are not. */
export function classifySmsResponse(status: number, body: string, retryAfter: string | null): DeliveryError {
  const error = parseError(body);
  const reason = `SMS gateway ${status}${error.code === undefined ? "" : ` (code ${error.code})`}: ${error.message}`;
  if (status === 408 || status === 429 || status >= 500) {
    const seconds = retryAfter === null ? Number.NaN : Number(retryAfter);
    return new DeliveryError("transient", reason, Number.isFinite(seconds) && seconds >= 0 ? { retryAfterMs: seconds * 1000 } : {});
  }
  return new DeliveryError("permanent", reason);
}

function parseError(body: string): { code?: number; message: string } {
  try {
    const parsed = JSON.parse(body) as { code?: unknown; message?: unknown };
    return {
      ...(typeof parsed.code === "number" ? { code: parsed.code } : {}),
      message: typeof parsed.message === "string" ? parsed.message.slice(0, 300) : "no message",
    };
  } catch {
    return { message: body.slice(0, 120) || "no body" };
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) {
    const cause = error.cause as NodeJS.ErrnoException | undefined;
    return cause?.code !== undefined ? `${cause.code}: ${error.message}` : error.message;
  }
  return String(error);
}
