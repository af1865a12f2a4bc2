import { appendFile, mkdir } from "node:fs/promises";
import { dirname } from "node:path";
import type { CodePurpose } from "./codes.ts";
import type { Identity } from "./identity.ts";

/** A message carrying a one-time code to an email address or phone. */
export interface CodeMessage {
  to: Identity;
  purpose: CodePurpose;
  code: string;
  expiresInSeconds: number;
}

/**
 * Delivers one-time codes. Production plugs in an email/SMS provider; the
 * development adapter below writes to a file that `make dev` users and tests read.
 */
export interface CodeSender {
  send(message: CodeMessage): Promise<void>;
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
        channel: message.to.kind === "email" ? "email" : "sms",
        to: message.to.value,
        purpose: message.purpose,
        code: message.code,
        expires_in_seconds: message.expiresInSeconds,
      };
      await appendFile(path, `${JSON.stringify(line)}\n`);
    },
  };
}
