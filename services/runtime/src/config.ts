// Typed configuration from the environment.
//
// Each combinator describes one variable and how to parse it; `loadConfig`
// parses them all, collects every problem, and throws a single ConfigError that
// lists each bad variable, so an operator fixes the deployment in one pass
// instead of one restart per typo.
//
// An empty value counts as unset: orchestrators and .env files often render
// "FOO=" for "no value", and treating it as the literal "" hides mistakes.

/** One variable: its name and how to turn the raw value into a T. */
export interface Var<T> {
  readonly variable: string;
  /** Returns the value, or throws a VarProblem explaining why the raw text is unusable. */
  readonly parse: (raw: string | undefined) => T;
}

/** What went wrong with one variable. */
export interface ConfigProblem {
  readonly variable: string;
  readonly problem: string;
}

export class ConfigError extends Error {
  readonly problems: readonly ConfigProblem[];
  constructor(problems: readonly ConfigProblem[]) {
    const noun = problems.length === 1 ? "problem" : "problems";
    super(
      `invalid configuration (${problems.length} ${noun}):\n` +
        problems.map((p) => `  - ${p.variable}: ${p.problem}`).join("\n"),
    );
    this.name = "ConfigError";
    this.problems = problems;
  }
}

/** Thrown by parsers; loadConfig turns it into a ConfigProblem. */
class VarProblem extends Error {}

export type ConfigOf<S extends Record<string, Var<unknown>>> = { readonly [K in keyof S]: S[K] extends Var<infer T> ? T : never };

/**
 * Parses every variable in `spec` from `env` (default process.env).
 * Throws ConfigError listing all problems at once.
 */
export function loadConfig<S extends Record<string, Var<unknown>>>(spec: S, env: NodeJS.ProcessEnv = process.env): ConfigOf<S> {
  const out: Record<string, unknown> = {};
  const problems: ConfigProblem[] = [];
  for (const [key, v] of Object.entries(spec)) {
    const raw = env[v.variable];
    try {
      out[key] = v.parse(raw === "" ? undefined : raw);
    } catch (e) {
      if (!(e instanceof VarProblem)) throw e;
      problems.push({ variable: v.variable, problem: e.message });
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return out as ConfigOf<S>;
}

// Values are echoed only for kinds that cannot hold secrets (numbers, flags,
// durations, enumerations); strings and URLs may carry passwords.
function shown(raw: string): string {
  return JSON.stringify(raw.length > 40 ? `${raw.slice(0, 40)}…` : raw);
}

function required<T>(variable: string, raw: string | undefined, dflt: T | undefined, parse: (raw: string) => T): T {
  if (raw === undefined) {
    if (dflt === undefined) throw new VarProblem("missing (required)");
    return dflt;
  }
  return parse(raw);
}

// ---------------------------------------------------------------- strings

export interface StringOptions {
  default?: string;
  /** The value must match this (whole-value) pattern. */
  pattern?: RegExp;
  minLength?: number;
}

function checkString(raw: string, o: StringOptions): string {
  if (o.minLength !== undefined && raw.length < o.minLength) throw new VarProblem(`must be at least ${o.minLength} characters`);
  if (o.pattern !== undefined && !o.pattern.test(raw)) throw new VarProblem(`does not match ${o.pattern}`);
  return raw;
}

export function string(variable: string, options: StringOptions = {}): Var<string> {
  return { variable, parse: (raw) => required(variable, raw, options.default, (r) => checkString(r, options)) };
}

export function optionalString(variable: string, options: Omit<StringOptions, "default"> = {}): Var<string | undefined> {
  return { variable, parse: (raw) => (raw === undefined ? undefined : checkString(raw, options)) };
}

/** One of a fixed set of strings, typed as the union. */
export function oneOf<const T extends string>(variable: string, choices: readonly T[], options: { default?: T } = {}): Var<T> {
  return {
    variable,
    parse: (raw) =>
      required(variable, raw, options.default, (r) => {
        if (!(choices as readonly string[]).includes(r)) throw new VarProblem(`must be one of ${choices.join(", ")} (got ${shown(r)})`);
        return r as T;
      }),
  };
}

/** A comma-separated list; items are trimmed and empty items dropped. */
export function list(variable: string, options: { default?: readonly string[] } = {}): Var<readonly string[]> {
  return {
    variable,
    parse: (raw) =>
      required(variable, raw, options.default, (r) =>
        r
          .split(",")
          .map((s) => s.trim())
          .filter((s) => s !== ""),
      ),
  };
}

// ---------------------------------------------------------------- numbers

export interface IntOptions {
  default?: number;
  min?: number;
  max?: number;
}

function parseInt10(raw: string, o: IntOptions): number {
  if (!/^[+-]?\d+$/.test(raw.trim())) throw new VarProblem(`not an integer (got ${shown(raw)})`);
  const n = Number(raw.trim());
  if (!Number.isSafeInteger(n)) throw new VarProblem(`integer out of range (got ${shown(raw)})`);
  if (o.min !== undefined && n < o.min) throw new VarProblem(`out of range: must be >= ${o.min} (got ${n})`);
  if (o.max !== undefined && n > o.max) throw new VarProblem(`out of range: must be <= ${o.max} (got ${n})`);
  return n;
}

export function int(variable: string, options: IntOptions = {}): Var<number> {
  return { variable, parse: (raw) => required(variable, raw, options.default, (r) => parseInt10(r, options)) };
}

export function optionalInt(variable: string, options: Omit<IntOptions, "default"> = {}): Var<number | undefined> {
  return { variable, parse: (raw) => (raw === undefined ? undefined : parseInt10(raw, options)) };
}

/** A TCP port; 0 means "any free port". */
export function port(variable: string, options: { default?: number } = {}): Var<number> {
  return int(variable, { ...options, min: 0, max: 65535 });
}

// ---------------------------------------------------------------- booleans

const TRUE = new Set(["1", "true", "yes", "on"]);
const FALSE = new Set(["0", "false", "no", "off"]);

export function bool(variable: string, options: { default?: boolean } = {}): Var<boolean> {
  return {
    variable,
    parse: (raw) =>
      required(variable, raw, options.default, (r) => {
        const v = r.trim().toLowerCase();
        if (TRUE.has(v)) return true;
        if (FALSE.has(v)) return false;
        throw new VarProblem(`not a boolean: use true/false, 1/0, yes/no, on/off (got ${shown(r)})`);
      }),
  };
}

// ---------------------------------------------------------------- URLs

export interface UrlOptions {
  default?: string;
  /** Allowed schemes without the colon, e.g. ["http", "https"]. Any when unset. */
  protocols?: readonly string[];
}

function parseUrl(raw: string, o: UrlOptions): URL {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new VarProblem("not a valid absolute URL");
  }
  const scheme = u.protocol.slice(0, -1);
  if (o.protocols !== undefined && !o.protocols.includes(scheme)) {
    throw new VarProblem(`bad URL scheme "${scheme}": must be one of ${o.protocols.join(", ")}`);
  }
  return u;
}

export function url(variable: string, options: UrlOptions = {}): Var<URL> {
  return {
    variable,
    parse: (raw) => parseUrl(required(variable, raw, options.default, (r) => r), options),
  };
}

export function optionalUrl(variable: string, options: Omit<UrlOptions, "default"> = {}): Var<URL | undefined> {
  return { variable, parse: (raw) => (raw === undefined ? undefined : parseUrl(raw, options)) };
}

// ---------------------------------------------------------------- durations

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/**
 * Parses "500ms", "30s", "15m", "1h30m", "7d" into milliseconds. A bare number
 * is rejected: "15" could mean seconds or minutes, and guessing wrong is silent.
 */
export function parseDuration(text: string): number | undefined {
  const s = text.trim();
  if (!/^(\d+(ms|s|m|h|d))+$/.test(s)) return undefined;
  let total = 0;
  for (const [, n, unit] of s.matchAll(/(\d+)(ms|s|m|h|d)/g)) {
    total += Number(n) * (UNIT_MS[unit ?? ""] ?? Number.NaN);
  }
  return Number.isSafeInteger(total) ? total : undefined;
}

export interface DurationOptions {
  /** Default as duration text ("15m") or milliseconds. */
  default?: string | number;
  /** Bounds in milliseconds or duration text. */
  min?: string | number;
  max?: string | number;
}

function toMs(v: string | number): number {
  if (typeof v === "number") return v;
  const ms = parseDuration(v);
  if (ms === undefined) throw new Error(`bad duration literal in code: ${v}`);
  return ms;
}

/** A duration, returned in milliseconds. */
export function duration(variable: string, options: DurationOptions = {}): Var<number> {
  const min = options.min === undefined ? undefined : toMs(options.min);
  const max = options.max === undefined ? undefined : toMs(options.max);
  const dflt = options.default === undefined ? undefined : toMs(options.default);
  return {
    variable,
    parse: (raw) =>
      required(variable, raw, dflt, (r) => {
        const ms = parseDuration(r);
        if (ms === undefined) throw new VarProblem(`bad duration ${shown(r)}: use a number with a unit, e.g. 500ms, 30s, 15m, 1h30m, 7d`);
        if (min !== undefined && ms < min) throw new VarProblem(`out of range: must be at least ${min}ms (got ${shown(r)})`);
        if (max !== undefined && ms > max) throw new VarProblem(`out of range: must be at most ${max}ms (got ${shown(r)})`);
        return ms;
      }),
  };
}
