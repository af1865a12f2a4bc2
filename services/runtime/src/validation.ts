// Input validation from the `aviary.validate.v1` options on the request's own
// descriptors: the rules live next to the fields in the .proto, and this engine
// walks a message with protobuf-es reflection to check them.
//
// Semantics (documented here because the .proto comments are terse):
// - `required`: the field is set. Strings/bytes non-empty, messages present,
//   repeated/map fields non-empty, numbers/enums/bools non-zero (proto3
//   implicit presence cannot tell zero from unset), explicit-presence
//   (`optional`, oneof member) fields present.
// - Every other rule applies only to a value that is there: an empty string in
//   an implicit-presence field, or an unset optional/oneof member, is "absent"
//   and only `required` can reject it. Numbers and enums with implicit presence
//   are always checked (0 is a real value for them).
// - On repeated fields `required` and `max_items` constrain the list; the other
//   rules apply to each item (path `tags[2]`). Map fields: same, per value.
// - Nested messages (singular, repeated, map values) are validated recursively
//   whenever present; paths are dotted proto field names ("tokens.access_token",
//   "items[1].name", `labels["k"].value`).
// - Lengths are Unicode code points; max_bytes is UTF-8 bytes (bytes: length);
//   `pattern` must match the whole value.
// - No string, whatever its rules (or none), may contain U+0000: PostgreSQL
//   text cannot store it, so it would fail at the store as an internal error
//   instead of here as a field violation (found by the API fuzzer).
import { getOption, hasOption } from "@bufbuild/protobuf";
import type { DescField, DescMessage, DescOneof, MessageShape } from "@bufbuild/protobuf";
import { isReflectMessage, reflect } from "@bufbuild/protobuf/reflect";
import type { ReflectMessage } from "@bufbuild/protobuf/reflect";
import { FeatureSet_FieldPresence } from "@bufbuild/protobuf/wkt";
import { field as fieldRulesExt, oneof as oneofRulesExt, Format } from "@aviary/gen/aviary/validate/v1/validate_pb";
import type { FieldRules } from "@aviary/gen/aviary/validate/v1/validate_pb";
import { invalidArgument } from "./errors.ts";
import type { FieldViolation } from "./errors.ts";

export type { FieldViolation } from "./errors.ts";

// ------------------------------------------------------------------ formats

const ATEXT = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]";
const DOT_ATOM = new RegExp(`^${ATEXT}+(?:\\.${ATEXT}+)*$`);
const DNS_LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;
const encoder = new TextEncoder();

export function utf8Length(s: string): number {
  return encoder.encode(s).length;
}

/**
 * A practical addr-spec check: dot-atom local part (no quoted strings, no
 * comments), ASCII hostname of at least two labels (IDNs must be punycode),
 * local part at most 64 bytes, whole address at most 254.
 */
export function isEmail(s: string): boolean {
  if (utf8Length(s) > 254) return false;
  const at = s.lastIndexOf("@");
  if (at <= 0) return false;
  const local = s.slice(0, at);
  const labels = s.slice(at + 1).split(".");
  if (local.length > 64 || !DOT_ATOM.test(local)) return false;
  if (labels.length < 2 || !labels.every((l) => DNS_LABEL.test(l))) return false;
  return !/^\d+$/.test(labels[labels.length - 1] ?? "");
}

/**
 * Strips the visual separators people type (spaces, dashes, dots, parentheses)
 * and returns the E.164 form ("+" then 8 to 15 digits, no leading zero), or
 * undefined. This only checks plausibility; the auth service normalises with
 * libphonenumber-js, which knows per-country numbering plans.
 */
export function normalizePhone(s: string): string | undefined {
  if (!/^\s*\+[\d\s().-]+$/.test(s)) return undefined;
  const compact = s.replace(/[\s().-]/g, "");
  return /^\+[1-9]\d{7,14}$/.test(compact) ? compact : undefined;
}

/** Hyphenated 8-4-4-4-12 hex (either case), RFC variant with version 1-8, or the nil/max UUID. */
export function isUuid(s: string): boolean {
  if (/^0{8}-0{4}-0{4}-0{4}-0{12}$/.test(s) || /^f{8}-f{4}-f{4}-f{4}-f{12}$/i.test(s)) return true;
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i.test(s);
}

// ------------------------------------------------------------------ rules lookup

const fieldRulesCache = new WeakMap<DescField, FieldRules | null>();
const patternCache = new Map<string, RegExp>();

function rulesOf(field: DescField): FieldRules | undefined {
  let r = fieldRulesCache.get(field);
  if (r === undefined) {
    r = hasOption(field, fieldRulesExt) ? getOption(field, fieldRulesExt) : null;
    fieldRulesCache.set(field, r);
  }
  return r ?? undefined;
}

function oneofRequired(oneof: DescOneof): boolean {
  return hasOption(oneof, oneofRulesExt) && getOption(oneof, oneofRulesExt).required;
}

function compiledPattern(pattern: string): RegExp {
  let re = patternCache.get(pattern);
  if (re === undefined) {
    // Anchored here so "[0-9]{6}" cannot match inside a longer value; a bad
    // pattern is a schema bug and throws (surfacing as Internal, logged).
    re = new RegExp(`^(?:${pattern})$`, "u");
    patternCache.set(pattern, re);
  }
  return re;
}

// ------------------------------------------------------------------ engine

type Out = FieldViolation[];

function violation(out: Out, field: string, reason: string, description: string): void {
  out.push({ field, reason, description });
}

/** Returns every broken rule in `message` (empty when valid). */
export function validateMessage<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): FieldViolation[] {
  const out: Out = [];
  walk(reflect(schema, message, false), "", out);
  return out;
}

/** Throws InvalidArgument with a google.rpc.BadRequest detail when `message` breaks a rule. */
export function assertValid<Desc extends DescMessage>(schema: Desc, message: MessageShape<Desc>): void {
  const violations = validateMessage(schema, message);
  if (violations.length > 0) throw invalidArgument(violations);
}

function walk(r: ReflectMessage, prefix: string, out: Out): void {
  for (const oneof of r.oneofs) {
    if (oneofRequired(oneof) && r.oneofCase(oneof) === undefined) {
      violation(out, prefix + oneof.name, "ONEOF_REQUIRED", `one of ${oneof.fields.map((f) => f.name).join(", ")} is required`);
    }
  }
  for (const field of r.fields) {
    const path = prefix + field.name;
    const rules = rulesOf(field);
    const set = r.isSet(field);
    if (rules?.required === true && !set) {
      violation(out, path, "REQUIRED", "is required");
      continue;
    }
    switch (field.fieldKind) {
      case "message":
        if (set) walk(r.get(field), `${path}.`, out);
        break;
      case "list": {
        const list = r.get(field);
        if (rules?.maxItems !== undefined && list.size > rules.maxItems) {
          violation(out, path, "MAX_ITEMS", `must have at most ${rules.maxItems} items`);
        }
        let i = 0;
        for (const item of list) {
          const itemPath = `${path}[${i++}]`;
          if (isReflectMessage(item)) walk(item, `${itemPath}.`, out);
          else if (typeof item === "string" && hasNul(item, itemPath, out)) continue;
          else if (rules !== undefined) checkValue(field, rules, item, itemPath, out);
        }
        break;
      }
      case "map": {
        const map = r.get(field);
        if (rules?.maxItems !== undefined && map.size > rules.maxItems) {
          violation(out, path, "MAX_ITEMS", `must have at most ${rules.maxItems} entries`);
        }
        for (const [key, value] of map) {
          const entryPath = `${path}[${JSON.stringify(String(key))}]`;
          if (typeof key === "string" && hasNul(key, path, out)) continue;
          if (isReflectMessage(value)) walk(value, `${entryPath}.`, out);
          else if (typeof value === "string" && hasNul(value, entryPath, out)) continue;
          else if (rules !== undefined) checkValue(field, rules, value, entryPath, out);
        }
        break;
      }
      case "scalar":
      case "enum": {
        const value = r.get(field);
        if (typeof value === "string" && hasNul(value, path, out)) break;
        if (rules === undefined) break;
        const implicit = field.presence === FeatureSet_FieldPresence.IMPLICIT && field.oneof === undefined;
        // Absent values are only subject to `required` (see the header comment).
        const absent = implicit ? (typeof value === "string" || value instanceof Uint8Array) && !set : !set;
        if (!absent) checkValue(field, rules, value, path, out);
        break;
      }
    }
  }
}

/** Records a violation when `value` holds U+0000 (see the header comment). */
function hasNul(value: string, path: string, out: Out): boolean {
  if (!value.includes("\u0000")) return false;
  violation(out, path, "NO_NUL", "must not contain the NUL character (U+0000)");
  return true;
}

function checkValue(field: DescField, rules: FieldRules, value: unknown, path: string, out: Out): void {
  if (typeof value === "string") {
    checkString(rules, value, path, out);
  } else if (value instanceof Uint8Array) {
    if (rules.maxBytes !== undefined && value.length > rules.maxBytes) {
      violation(out, path, "MAX_BYTES", `must be at most ${rules.maxBytes} bytes`);
    }
  } else if (field.fieldKind === "enum" || (field.fieldKind === "list" && field.listKind === "enum") || (field.fieldKind === "map" && field.mapKind === "enum")) {
    if (rules.definedEnum && field.enum !== undefined) {
      const declared = field.enum.values.filter((v) => v.number !== 0);
      if (!declared.some((v) => v.number === value)) {
        violation(out, path, "DEFINED_ENUM", `must be one of ${declared.map((v) => v.name).join(", ")}`);
      }
    }
  } else if (typeof value === "number" || typeof value === "bigint") {
    checkNumber(rules, value, path, out);
  }
}

function checkNumber(rules: FieldRules, value: number | bigint, path: string, out: Out): void {
  // int64 rule bounds are bigints; compare in the value's own domain so large
  // int64/uint64 values stay exact and doubles keep their fraction.
  const below = (bound: bigint) => (typeof value === "bigint" ? value < bound : value < Number(bound));
  const above = (bound: bigint) => (typeof value === "bigint" ? value > bound : value > Number(bound));
  if (rules.min !== undefined && below(rules.min)) violation(out, path, "MIN", `must be at least ${rules.min}`);
  if (rules.max !== undefined && above(rules.max)) violation(out, path, "MAX", `must be at most ${rules.max}`);
}

function checkString(rules: FieldRules, value: string, path: string, out: Out): void {
  if (rules.minLen !== undefined || rules.maxLen !== undefined) {
    let codePoints = 0;
    for (const _ of value) codePoints++;
    if (rules.minLen !== undefined && codePoints < rules.minLen) {
      violation(out, path, "MIN_LEN", `must be at least ${rules.minLen} characters`);
    }
    if (rules.maxLen !== undefined && codePoints > rules.maxLen) {
      violation(out, path, "MAX_LEN", `must be at most ${rules.maxLen} characters`);
    }
  }
  if (rules.maxBytes !== undefined && utf8Length(value) > rules.maxBytes) {
    violation(out, path, "MAX_BYTES", `must be at most ${rules.maxBytes} bytes`);
  }
  if (rules.pattern !== "" && !compiledPattern(rules.pattern).test(value)) {
    violation(out, path, "PATTERN", `must match ${rules.pattern}`);
  }
  switch (rules.format) {
    case Format.EMAIL:
      if (!isEmail(value)) violation(out, path, "FORMAT_EMAIL", "must be a valid email address");
      break;
    case Format.PHONE:
      if (normalizePhone(value) === undefined) {
        violation(out, path, "FORMAT_PHONE", "must be a phone number in international format, e.g. +14155550123");
      }
      break;
    case Format.UUID:
      if (!isUuid(value)) violation(out, path, "FORMAT_UUID", "must be a UUID");
      break;
    default:
      break;
  }
}
