// AVIARY_PROCESSES=N (processes.ts): a supervisor and N workers sharing the
// service's ports; crashed workers replaced, a failed start fails, SIGTERM
// drains them all. The fixture is a real runService process.
import test from "ava";
import { spawn, type ChildProcess } from "node:child_process";
import http from "node:http";
import { resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

const fixture = resolve(import.meta.dirname, "fixtures/processes-service.ts");

interface Supervised {
  child: ChildProcess;
  /** Every JSON log line so far. */
  lines: Array<Record<string, unknown>>;
  exited: Promise<number | null>;
}

function startSupervised(env: Record<string, string>): Supervised {
  const child = spawn(process.execPath, ["--disable-warning=ExperimentalWarning", fixture], {
    env: { ...process.env, LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const lines: Array<Record<string, unknown>> = [];
  let pending = "";
  child.stdout!.on("data", (chunk: Buffer) => {
    pending += chunk.toString("utf8");
    const parts = pending.split("\n");
    pending = parts.pop() ?? "";
    for (const part of parts) {
      try {
        lines.push(JSON.parse(part) as Record<string, unknown>);
      } catch {
        // not a log line
      }
    }
  });
  child.stderr!.resume();
  const exited = new Promise<number | null>((done) => child.once("exit", (code) => done(code)));
  // A test that times out is not torn down: the supervisor must not outlive this test process.
  const kill = () => child.kill("SIGKILL");
  process.once("exit", kill);
  void exited.then(() => process.off("exit", kill));
  return { child, lines, exited };
}

/** Polls `condition` every 50 ms until it holds; fails after `ms` (a bound for a stuck run, not a timing assumption). */
async function until<T>(what: string, condition: () => T | undefined | Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await condition();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/**
 * GET /pid on a fresh connection each time, so the supervisor hands each to
 * the next worker. A connection handed to a worker at the moment it was
 * killed is lost (as a client of any crashed process sees it): such a call
 * is given up after 2 s.
 */
function pidAt(url: string): Promise<number> {
  return new Promise((done, fail) => {
    const req = http.get(`${url}/pid`, { agent: false, timeout: 2_000 }, (res) => {
      let body = "";
      res.on("data", (chunk: Buffer) => (body += chunk.toString("utf8")));
      res.on("end", () => done((JSON.parse(body) as { pid: number }).pid));
    });
    req.on("timeout", () => req.destroy(new Error("no answer within 2 s")));
    req.on("error", fail);
  });
}

const listening = (s: Supervised) => s.lines.filter((line) => line["msg"] === "listening");
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The pids that answered `calls` calls (calls lost to a dying worker are skipped). */
async function pidsAnswering(url: string, calls: number): Promise<Set<number>> {
  const pids = new Set<number>();
  for (let i = 0; i < calls; i++) {
    const pid = await pidAt(url).catch(() => undefined);
    if (pid !== undefined) pids.add(pid);
  }
  return pids;
}

test("two workers serve one port and one internal listener; a killed worker is replaced; SIGTERM stops them all and exits 0", async (t) => {
  const s = startSupervised({ AVIARY_PROCESSES: "2" });
  t.teardown(() => void s.child.kill("SIGKILL"));
  await until("both workers listening", () => (listening(s).length >= 2 ? true : undefined));
  const [first, second] = listening(s);
  t.is(first!["url"], second!["url"], "one main port");
  t.truthy(first!["grpcJsUrl"]);
  t.is(first!["grpcJsUrl"], second!["grpcJsUrl"], "one internal listener");
  const url = String(first!["url"]);

  const pids = await until("answers from both workers", async () => {
    const seen = await pidsAnswering(url, 10);
    return seen.size === 2 ? seen : undefined;
  });
  t.false(pids.has(s.child.pid!), "the supervisor serves nothing itself");

  // One worker dies: the supervisor starts another, and two processes answer again.
  const [victim, survivor] = [...pids];
  process.kill(victim!, "SIGKILL");
  const replaced = await until("a replacement worker answering", async () => {
    const seen = await pidsAnswering(url, 10);
    return seen.size === 2 && !seen.has(victim!) && seen.has(survivor!) ? seen : undefined;
  });
  t.is(replaced.size, 2);
  t.true(s.lines.some((line) => line["msg"] === "a worker process died; starting another"));

  s.child.kill("SIGTERM");
  t.is(await s.exited, 0);
  for (const pid of replaced) await until(`worker ${pid} gone`, () => (alive(pid) ? undefined : true));
});

test("workers do not outlive a supervisor that was killed: each sees it gone and exits", async (t) => {
  const s = startSupervised({ AVIARY_PROCESSES: "2" });
  t.teardown(() => void s.child.kill("SIGKILL"));
  await until("both workers listening", () => (listening(s).length >= 2 ? true : undefined));
  const url = String(listening(s)[0]!["url"]);
  const workers = await until("answers from both workers", async () => {
    const seen = await pidsAnswering(url, 10);
    return seen.size === 2 ? seen : undefined;
  });
  s.child.kill("SIGKILL");
  // Bounded by the workers' orphan grace (10 s) plus their exit.
  for (const pid of workers) await until(`orphaned worker ${pid} gone`, () => (alive(pid) ? undefined : true));
  t.deepEqual([...workers].filter(alive), []);
});

test("a worker that cannot start fails the whole start: the supervisor stops the others and exits 1", async (t) => {
  const s = startSupervised({ AVIARY_PROCESSES: "2", FIXTURE_FAIL: "1" });
  t.teardown(() => void s.child.kill("SIGKILL"));
  t.is(await s.exited, 1);
  t.true(s.lines.some((line) => line["msg"] === "a worker process exited before its service was up"));
  t.false(s.lines.some((line) => line["msg"] === "a worker process died; starting another"), "no restart loop");
});

test("AVIARY_PROCESSES out of range is a configuration error: exit 1 naming the variable, nothing started", async (t) => {
  const s = startSupervised({ AVIARY_PROCESSES: "0" });
  t.teardown(() => void s.child.kill("SIGKILL"));
  t.is(await s.exited, 1);
  const fatal = s.lines.find((line) => line["level"] === "fatal" || line["level"] === 60);
  t.truthy(fatal);
  t.regex(JSON.stringify(fatal), /AVIARY_PROCESSES/);
  t.is(listening(s).length, 0);
});

test("one process (the default) serves by itself, as before", async (t) => {
  const s = startSupervised({});
  t.teardown(() => void s.child.kill("SIGKILL"));
  const line = await until("listening", () => listening(s)[0]);
  const pid = s.child.pid!;
  t.is(await pidAt(String(line["url"])), pid);
  s.child.kill("SIGTERM");
  t.is(await s.exited, 0);
});
