import test from "ava";
import {
  bool,
  ConfigError,
  duration,
  int,
  list,
  loadConfig,
  oneOf,
  optionalInt,
  optionalString,
  optionalUrl,
  parseDuration,
  port,
  string,
  url,
} from "../src/config.ts";

const spec = {
  port: port("PORT", { default: 8080 }),
  databaseUrl: optionalString("DATABASE_URL"),
  issuer: string("AUTH_ISSUER"),
  workers: int("WORKERS", { default: 2, min: 1, max: 16 }),
  debug: bool("DEBUG", { default: false }),
  accessTtl: duration("ACCESS_TOKEN_TTL", { default: "15m", max: "1h" }),
  jwksUrl: url("JWKS_URL", { protocols: ["http", "https"] }),
  otlp: optionalUrl("OTLP_ENDPOINT"),
  env: oneOf("APP_ENV", ["dev", "prod"] as const, { default: "dev" }),
  brokers: list("KAFKA_BROKERS", { default: [] }),
  retries: optionalInt("RETRIES", { min: 0 }),
};

test("a complete environment parses into typed values, with defaults filled in", (t) => {
  const config = loadConfig(spec, {
    AUTH_ISSUER: "https://auth.aviary.test",
    JWKS_URL: "http://auth:8080/.well-known/jwks.json",
    DEBUG: "yes",
    ACCESS_TOKEN_TTL: "1h",
    KAFKA_BROKERS: "k1:9092, k2:9092,",
    DATABASE_URL: "",
  });
  t.is(config.port, 8080);
  t.is(config.databaseUrl, undefined, "an empty value counts as unset");
  t.is(config.issuer, "https://auth.aviary.test");
  t.is(config.workers, 2);
  t.true(config.debug);
  t.is(config.accessTtl, 3_600_000);
  t.true(config.jwksUrl instanceof URL);
  t.is(config.jwksUrl.pathname, "/.well-known/jwks.json");
  t.is(config.otlp, undefined);
  t.is(config.env, "dev");
  t.deepEqual(config.brokers, ["k1:9092", "k2:9092"]);
  t.is(config.retries, undefined);
});

test("every bad variable is reported at once, each with its reason", (t) => {
  const error = t.throws(
    () =>
      loadConfig(spec, {
        PORT: "eighty",
        WORKERS: "99",
        DEBUG: "maybe",
        ACCESS_TOKEN_TTL: "15",
        JWKS_URL: "ftp://example.com/keys",
        OTLP_ENDPOINT: "not a url",
        APP_ENV: "staging",
        RETRIES: "-1",
        // AUTH_ISSUER missing
      }),
    { instanceOf: ConfigError },
  );
  const byVar = new Map(error.problems.map((p) => [p.variable, p.problem]));
  t.deepEqual(
    [...byVar.keys()].sort(),
    ["ACCESS_TOKEN_TTL", "APP_ENV", "AUTH_ISSUER", "DEBUG", "JWKS_URL", "OTLP_ENDPOINT", "PORT", "RETRIES", "WORKERS"],
  );
  t.regex(byVar.get("PORT") ?? "", /not an integer/);
  t.regex(byVar.get("AUTH_ISSUER") ?? "", /missing/);
  t.regex(byVar.get("WORKERS") ?? "", /out of range.*<= 16/);
  t.regex(byVar.get("RETRIES") ?? "", /out of range.*>= 0/);
  t.regex(byVar.get("DEBUG") ?? "", /not a boolean/);
  t.regex(byVar.get("ACCESS_TOKEN_TTL") ?? "", /bad duration/);
  t.regex(byVar.get("JWKS_URL") ?? "", /bad URL scheme "ftp"/);
  t.regex(byVar.get("OTLP_ENDPOINT") ?? "", /not a valid absolute URL/);
  t.regex(byVar.get("APP_ENV") ?? "", /must be one of dev, prod/);
  // One message an operator can read, one line per variable.
  t.regex(error.message, /^invalid configuration \(9 problems\):/);
  for (const v of byVar.keys()) t.true(error.message.includes(`  - ${v}: `), v);
});

test("URLs are not echoed back in errors (they may carry credentials)", (t) => {
  const error = t.throws(() => loadConfig({ db: url("DATABASE_URL", { protocols: ["postgres"] }) }, { DATABASE_URL: "mysql://user:hunter2@db/x" }), {
    instanceOf: ConfigError,
  });
  t.false(error.message.includes("hunter2"));
});

test("durations take units and combinations, and reject bare numbers", (t) => {
  t.is(parseDuration("500ms"), 500);
  t.is(parseDuration("30s"), 30_000);
  t.is(parseDuration("15m"), 900_000);
  t.is(parseDuration("1h30m"), 5_400_000);
  t.is(parseDuration("7d"), 604_800_000);
  t.is(parseDuration("15"), undefined);
  t.is(parseDuration("15 m"), undefined);
  t.is(parseDuration("-5s"), undefined);
  t.is(parseDuration("1.5h"), undefined);
  const e = t.throws(() => loadConfig({ ttl: duration("TTL", { max: "1h" }) }, { TTL: "2h" }), { instanceOf: ConfigError });
  t.regex(e.problems[0]?.problem ?? "", /at most 3600000ms/);
});

test("port range is enforced and 0 (any free port) is allowed", (t) => {
  t.is(loadConfig({ p: port("P") }, { P: "0" }).p, 0);
  const e = t.throws(() => loadConfig({ p: port("P") }, { P: "70000" }), { instanceOf: ConfigError });
  t.regex(e.problems[0]?.problem ?? "", /<= 65535/);
});
