// A small JSON matcher for the REST contract table: objects match partially
// (extra keys in the answer are fine, so adding a response field never breaks
// the contract), arrays element-wise with equal length, strings by equality or
// RegExp, and a predicate for anything else.

export type JsonMatcher =
  | string
  | number
  | boolean
  | null
  | RegExp
  | ((value: unknown) => boolean)
  | JsonMatcher[]
  | { [key: string]: JsonMatcher };

/** Mismatches as `path: expected …, got …` lines; empty when it matches. */
export function mismatches(actual: unknown, expected: JsonMatcher, at = "$"): string[] {
  if (typeof expected === "function") return expected(actual) ? [] : [`${at}: predicate ${expected.name || "(anonymous)"} rejected ${show(actual)}`];
  if (expected instanceof RegExp) {
    return typeof actual === "string" && expected.test(actual) ? [] : [`${at}: expected a string matching ${expected}, got ${show(actual)}`];
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) return [`${at}: expected an array of ${expected.length}, got ${show(actual)}`];
    return expected.flatMap((item, i) => mismatches(actual[i], item, `${at}[${i}]`));
  }
  if (expected !== null && typeof expected === "object") {
    if (actual === null || typeof actual !== "object" || Array.isArray(actual)) return [`${at}: expected an object, got ${show(actual)}`];
    const record = actual as Record<string, unknown>;
    return Object.entries(expected).flatMap(([key, value]) => mismatches(record[key], value, `${at}.${key}`));
  }
  return Object.is(actual, expected) ? [] : [`${at}: expected ${show(expected)}, got ${show(actual)}`];
}

/** Matches when the key is absent (the transcoder omits default values). */
export function absent(value: unknown): boolean {
  return value === undefined;
}

export function anyString(value: unknown): boolean {
  return typeof value === "string" && value.length > 0;
}
export const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function show(value: unknown): string {
  const text = JSON.stringify(value);
  return text === undefined ? "undefined" : text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
