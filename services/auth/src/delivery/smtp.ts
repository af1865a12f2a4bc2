// Emails with codes over SMTP (nodemailer). One pooled transport per process;
// each message is rendered from the templates (plain text + HTML) in the
// asked-for language. SMTP answers 4xx for "try later" and 5xx for "never":
// the reverse of HTTP, so the classification lives here, next to the protocol.
import { createTransport } from "nodemailer";
import { DeliveryError, type CodeSender } from "../domain/code-sender.ts";
import { renderEmail } from "./templates.ts";

export interface SmtpSettings {
  /** smtp://user:pass@host:587 or smtps://…:465; or the parts below. */
  url?: string;
  host?: string;
  port: number;
  /** TLS from the first byte (port 465). Otherwise STARTTLS is used when the server offers it. */
  secure: boolean;
  /** Refuse to send unless the connection is upgraded with STARTTLS. */
  requireTls: boolean;
  user?: string;
  pass?: string;
  /** The From header, e.g. `Aviary <no-reply@example.org>`. */
  from: string;
  timeoutMs: number;
}

export function smtpCodeSender(settings: SmtpSettings): CodeSender & { close(): Promise<void> } {
  const timeouts = { connectionTimeout: settings.timeoutMs, greetingTimeout: settings.timeoutMs, socketTimeout: settings.timeoutMs };
  const auth = settings.user !== undefined ? { auth: { user: settings.user, pass: settings.pass ?? "" } } : {};
  const transport = createTransport({
    pool: true,
    maxConnections: 4,
    ...(settings.url !== undefined ? { url: settings.url } : { host: settings.host ?? "localhost", port: settings.port, secure: settings.secure }),
    requireTLS: settings.requireTls,
    ...auth,
    ...timeouts,
  });
  const domain = /@([^>\s]+)>?\s*$/.exec(settings.from)?.[1] ?? "aviary.invalid";
  return {
    async send(message) {
      const email = renderEmail(message);
      try {
        await transport.sendMail({
          from: settings.from,
          to: message.to.value,
          subject: email.subject,
          text: email.text,
          html: email.html,
          // The same on every attempt, so a receiving system can fold a retried duplicate.
          messageId: `<${message.id}@${domain}>`,
          headers: { "X-Aviary-Purpose": message.purpose, "Auto-Submitted": "auto-generated" },
        });
      } catch (error) {
        throw classifySmtpError(error);
      }
    },
    async close() {
      transport.close();
    },
  };
}

/** A nodemailer failure as a DeliveryError: 5xx replies and rejected credentials are permanent, everything else transient. */
export function classifySmtpError(error: unknown): DeliveryError {
  const details = typeof error === "object" && error !== null ? (error as { responseCode?: unknown; code?: unknown; message?: unknown }) : {};
  const responseCode = typeof details.responseCode === "number" ? details.responseCode : undefined;
  const code = typeof details.code === "string" ? details.code : "";
  const text = typeof details.message === "string" ? details.message.slice(0, 300) : String(error);
  if (responseCode !== undefined) {
    return new DeliveryError(responseCode >= 500 ? "permanent" : "transient", `SMTP ${responseCode}: ${text}`, { cause: error });
  }
  // Wrong credentials or a server that cannot do what the settings demand will not fix themselves between retries.
  if (code === "EAUTH" || code === "ENOAUTH" || code === "EREQUIRETLS" || code === "EENVELOPE" || code === "ECONFIG") {
    return new DeliveryError("permanent", `SMTP ${code}: ${text}`, { cause: error });
  }
  return new DeliveryError("transient", `SMTP ${code || "error"}: ${text}`, { cause: error });
}
