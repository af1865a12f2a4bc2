import { appendFile, mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import type { CodePurpose } from "./codes.ts";
import type { Identity } from "./identity.ts";

/** A message carrying a one-time code to an email address or phone. */
export interface CodeMessage {
  /** The delivery's id (the outbox event id): the same on every attempt, e.g. the email's Message-ID. */
  id: string;
  to: Identity;
  purpose: CodePurpose;
  /** The language asked for (delivery/locale.ts); templates fall back to English. */
  locale: string;
  code: string;
  expiresInSeconds: number;
}

/**
 * Delivers one-time codes: SMTP for emails and an SMS gateway for phones
 * (services/auth/src/delivery/), or the development file below. The sender
 * role calls it (delivery/worker.ts); RPCs only enqueue. A failure is thrown
 * as a DeliveryError saying whether trying again may help.
 */
export interface CodeSender {
  send(message: CodeMessage): Promise<void>;
}

/**
 * Why a send failed, as the sender role needs it: `transient` (the provider
 * is busy or unreachable: 429, 5xx, an SMTP 4xx, a timeout) is retried with
 * backoff; `permanent` (an invalid number, a refused mailbox, our credentials
 * rejected) is dead-lettered at once. `reason` is for logs and the dead
 * letter, so it never carries the code.
 */
export class DeliveryError extends Error {
  readonly kind: "transient" | "permanent";
  readonly retryAfterMs: number | undefined;
  constructor(kind: "transient" | "permanent", reason: string, options: { retryAfterMs?: number; cause?: unknown } = {}) {
    super(reason, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "DeliveryError";
    this.kind = kind;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/**
 * Appends each message as one JSON line to `path` (the "outbox" of a fake mail
 * and SMS gateway). `tail -f` it in `make dev` to read your codes.
 */
export function fileCodeSender(path: string): CodeSender {
  let ready: Promise<unknown> | undefined;
  return {
    async send(message) {
      ready ??= mkdir(dirname(path), { recursive: true });
      await ready;
      const line = {
        at: new Date().toISOString(),
        id: message.id,
        channel: message.to.kind === "email" ? "email" : "sms",
        to: message.to.value,
        purpose: message.purpose,
        locale: message.locale,
        code: message.code,
        expires_in_seconds: message.expiresInSeconds,
      };
      await appendFile(path, `${JSON.stringify(line)}\n`);
    },
  };
}

/** Emails to one sender, phones to another (each a provider, or the file when none is configured). */
export function channelCodeSender(senders: { email: CodeSender; sms: CodeSender }): CodeSender {
  return { send: (message) => (message.to.kind === "email" ? senders.email : senders.sms).send(message) };
}
