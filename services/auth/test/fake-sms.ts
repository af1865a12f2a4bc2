// A local HTTP server speaking Twilio's Messages API, for the SMS adapter's
// tests: POST /2010-04-01/Accounts/{sid}/Messages.json with basic auth and a
// form body, answered 201 with the message resource, or with Twilio's error
// documents. Each number can be given a script of answers (then 201).
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export const fakeSid = "AC00000000000000000000000000000042";
export const fakeToken = "test-auth-token";

export interface ReceivedSms {
  to: string;
  from: string;
  body: string;
  /** The status this request was answered with. */
  status: number;
  at: number;
}

/** 201, or an error: 400 (code 21211, invalid To), 429, 500, 503; `delayMs` holds the answer back. */
export type SmsAnswer = { status: 201 | 400 | 429 | 500 | 503; retryAfter?: string; delayMs?: number };

export interface FakeSmsGateway {
  url: string;
  received: ReceivedSms[];
  /** The next answers for `to`, in order; afterwards 201. */
  script(to: string, answers: SmsAnswer[]): void;
  /** Accepted messages (201) for `to`. */
  delivered(to: string): ReceivedSms[];
  close(): Promise<void>;
}

const errors: Record<number, { code: number; message: string }> = {
  400: { code: 21211, message: "The 'To' number is not a valid phone number." },
  429: { code: 20429, message: "Too Many Requests" },
  500: { code: 20500, message: "An internal server error has occurred" },
  503: { code: 20503, message: "Service unavailable" },
};

export async function startFakeSmsGateway(): Promise<FakeSmsGateway> {
  const received: ReceivedSms[] = [];
  const scripts = new Map<string, SmsAnswer[]>();
  const server: Server = createServer(async (req, res) => {
    const form = new URLSearchParams(await bodyOf(req));
    const expectedAuth = `Basic ${Buffer.from(`${fakeSid}:${fakeToken}`).toString("base64")}`;
    const json = (status: number, body: object, headers: Record<string, string> = {}) => {
      res.writeHead(status, { "content-type": "application/json", ...headers });
      res.end(JSON.stringify(body));
    };
    if (req.method !== "POST" || req.url !== `/2010-04-01/Accounts/${fakeSid}/Messages.json`) return json(404, { code: 20404, message: "The requested resource was not found", status: 404 });
    if (req.headers.authorization !== expectedAuth) return json(401, { code: 20003, message: "Authenticate", status: 401 });
    if (req.headers["content-type"] !== "application/x-www-form-urlencoded") return json(400, { code: 21000, message: "form body expected", status: 400 });
    const to = form.get("To") ?? "";
    const answer = scripts.get(to)?.shift() ?? { status: 201 };
    if (answer.delayMs !== undefined) await new Promise((resolve) => setTimeout(resolve, answer.delayMs));
    received.push({ to, from: form.get("From") ?? "", body: form.get("Body") ?? "", status: answer.status, at: Date.now() });
    if (answer.status === 201) {
      return json(201, { sid: `SM${crypto.randomUUID().replaceAll("-", "")}`, account_sid: fakeSid, to, from: form.get("From"), body: form.get("Body"), status: "queued" });
    }
    const error = errors[answer.status]!;
    return json(answer.status, { ...error, status: answer.status, more_info: `https://www.twilio.com/docs/errors/${error.code}` }, answer.retryAfter === undefined ? {} : { "retry-after": answer.retryAfter });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    script: (to, answers) => void scripts.set(to, [...answers]),
    delivered: (to) => received.filter((m) => m.to === to && m.status === 201),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function bodyOf(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
