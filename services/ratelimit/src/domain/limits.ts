// The limit table: which descriptors (the entry lists Envoy's rate_limits
// actions produce per request) are limited, and how much.
//
// A rule matches a descriptor when the descriptor has exactly the rule's
// entries, in the rule's order, with the same keys; a rule entry with a value
// matches only that value, one without a value matches any value and the value
// becomes part of the counter key (one counter per IP, per user, ...).
// The first matching rule wins; a descriptor no rule matches is not limited.

/** Units we count in fixed windows of one unit. Month and year (uneven lengths) are not supported. */
export const UNIT_SECONDS = { second: 1, minute: 60, hour: 3600, day: 86_400, week: 604_800 } as const;
export type LimitUnit = keyof typeof UNIT_SECONDS;

export interface RuleEntry {
  key: string;
  /** Absent: any value, counted separately per value. */
  value?: string;
}

export interface LimitRule {
  /** Reported as current_limit.name and used in logs. */
  name: string;
  entries: readonly RuleEntry[];
  requestsPerUnit: number;
  unit: LimitUnit;
}

export interface DescriptorEntry {
  key: string;
  value: string;
}

/** The limits Aviary's edge asks about (see README "Rate limiting"); RATELIMIT_RULES replaces them. */
export const defaultRules: readonly LimitRule[] = [
  { name: "auth_public_per_ip", entries: [{ key: "route_class", value: "auth_public" }, { key: "remote_address" }], requestsPerUnit: 30, unit: "minute" },
  { name: "read_per_user", entries: [{ key: "route_class", value: "read" }, { key: "user_id" }], requestsPerUnit: 600, unit: "minute" },
  { name: "write_per_user", entries: [{ key: "route_class", value: "write" }, { key: "user_id" }], requestsPerUnit: 120, unit: "minute" },
  // Opening a stream (realtime Subscribe): the edge sends both descriptors on
  // every open. Per user: a client in a reconnect loop; per address: one
  // machine opening streams for many accounts (a NAT or office shares it, so it is higher).
  { name: "stream_open_per_user", entries: [{ key: "route_class", value: "stream_open" }, { key: "user_id" }], requestsPerUnit: 30, unit: "minute" },
  { name: "stream_open_per_ip", entries: [{ key: "route_class", value: "stream_open" }, { key: "remote_address" }], requestsPerUnit: 120, unit: "minute" },
];

export function matchRule(rules: readonly LimitRule[], entries: readonly DescriptorEntry[]): LimitRule | undefined {
  return rules.find(
    (rule) =>
      rule.entries.length === entries.length &&
      rule.entries.every((wanted, i) => {
        const entry = entries[i]!;
        return entry.key === wanted.key && (wanted.value === undefined || entry.value === wanted.value);
      }),
  );
}

/**
 * Parses RATELIMIT_RULES: a JSON array of
 * `{"name": "...", "entries": [{"key": "...", "value"?: "..."}], "requests_per_unit": N, "unit": "second|minute|hour|day|week"}`
 * (`requestsPerUnit` is accepted too). Throws an Error whose message says what is wrong.
 */
export function parseRules(text: string): LimitRule[] {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new Error(`not JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(raw)) throw new Error("must be a JSON array of rules");
  const names = new Set<string>();
  return raw.map((item: unknown, i): LimitRule => {
    const where = `rule ${i}`;
    if (typeof item !== "object" || item === null) throw new Error(`${where}: must be an object`);
    const r = item as Record<string, unknown>;
    const name = r["name"];
    if (typeof name !== "string" || name === "") throw new Error(`${where}: "name" must be a non-empty string`);
    if (names.has(name)) throw new Error(`${where}: duplicate name ${JSON.stringify(name)}`);
    names.add(name);
    const entries = r["entries"];
    if (!Array.isArray(entries) || entries.length === 0) throw new Error(`${where} (${name}): "entries" must be a non-empty array`);
    const parsedEntries = entries.map((e: unknown, j): RuleEntry => {
      if (typeof e !== "object" || e === null) throw new Error(`${where} (${name}): entry ${j} must be an object`);
      const { key, value } = e as Record<string, unknown>;
      if (typeof key !== "string" || key === "") throw new Error(`${where} (${name}): entry ${j} needs a non-empty "key"`);
      if (value !== undefined && typeof value !== "string") throw new Error(`${where} (${name}): entry ${j} "value" must be a string`);
      return value === undefined ? { key } : { key, value };
    });
    const requestsPerUnit = r["requests_per_unit"] ?? r["requestsPerUnit"];
    if (typeof requestsPerUnit !== "number" || !Number.isSafeInteger(requestsPerUnit) || requestsPerUnit < 0 || requestsPerUnit > 0xffff_ffff) {
      throw new Error(`${where} (${name}): "requests_per_unit" must be an integer from 0 to 4294967295`);
    }
    const unit = r["unit"];
    if (typeof unit !== "string" || !Object.hasOwn(UNIT_SECONDS, unit)) {
      throw new Error(`${where} (${name}): "unit" must be one of ${Object.keys(UNIT_SECONDS).join(", ")}`);
    }
    return { name, entries: parsedEntries, requestsPerUnit, unit: unit as LimitUnit };
  });
}
