/**
 * The mail catcher of the test run (Mailpit from deploy/local/infra.sh, or
 * whatever MAILPIT_URL / MAILPIT_SMTP name): a real SMTP server to send to,
 * and its HTTP API to read what arrived, as a mailbox would.
 */
import path from "node:path";
import { infraSh, readEnvFile, repoRoot } from "./infra.ts";

export interface MailCatcher {
  /** host:port of its SMTP listener. */
  smtp: string;
  /** Base URL of its HTTP API. */
  url: string;
}

export interface CaughtMessage {
  id: string;
  messageId: string;
  from: string;
  to: string[];
  subject: string;
  text: string;
  html: string;
  headers: Record<string, string[]>;
}

let shared: Promise<MailCatcher> | undefined;

export function mailCatcher(): Promise<MailCatcher> {
  shared ??= resolve();
  return shared;
}

async function resolve(): Promise<MailCatcher> {
  let { MAILPIT_URL: url, MAILPIT_SMTP: smtp } = process.env;
  if (!url || !smtp) {
    // Starts only what is missing; the other servers keep running.
    await infraSh(["up"]);
    const env = await readEnvFile(process.env["AVIARY_INFRA_DIR"] ?? path.join(repoRoot, ".infra"));
    url = env["MAILPIT_URL"];
    smtp = env["MAILPIT_SMTP"];
  }
  if (!url || !smtp) throw new Error("MAILPIT_URL / MAILPIT_SMTP are neither set nor written by infra.sh");
  return { url: url.replace(/\/+$/, ""), smtp };
}

interface Address {
  Address: string;
}

/** Every message that arrived for `to` (newest first). */
export async function messagesTo(catcher: MailCatcher, to: string): Promise<CaughtMessage[]> {
  const found = await getJson<{ messages: Array<{ ID: string }> }>(`${catcher.url}/api/v1/search?query=${encodeURIComponent(`to:"${to}"`)}`);
  const messages = await Promise.all(
    found.messages.map(async ({ ID }) => {
      const m = await getJson<{ ID: string; MessageID: string; From: Address; To: Address[]; Subject: string; Text: string; HTML: string }>(`${catcher.url}/api/v1/message/${ID}`);
      const headers = await getJson<Record<string, string[]>>(`${catcher.url}/api/v1/message/${ID}/headers`);
      return { id: m.ID, messageId: m.MessageID, from: m.From.Address, to: m.To.map((a) => a.Address), subject: m.Subject, text: m.Text, html: m.HTML, headers };
    }),
  );
  // Search matches substrings; keep exact recipients only.
  return messages.filter((m) => m.to.some((address) => address.toLowerCase() === to.toLowerCase()));
}

async function getJson<T>(url: string): Promise<T> {
  const response = await fetch(url, { headers: { accept: "application/json" } });
  if (!response.ok) throw new Error(`mailpit ${url}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}
