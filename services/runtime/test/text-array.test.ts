// The text[] / varchar[] parser (src/db/text-array.ts) against what
// PostgreSQL itself writes: arrays sent as parameters come back parsed
// exactly, and for every text form PostgreSQL produced the result is the
// one pg-types' own parser gives, including the forms this parser hands back
// to it (more dimensions, explicit bounds).
import test from "ava";
import pg from "pg";
import { infra, withClient } from "../test-support/infra.ts";
import { originalArrayParser, parseOneDimensionalTextArray, useFastTextArrays } from "../src/db/text-array.ts";

useFastTextArrays();

const TRICKY: (string | null)[] = [
  "",
  "NULL",
  "null",
  null,
  "a,b",
  "{braces}",
  "}",
  "{",
  'quo"te',
  "back\\slash",
  '\\"',
  "trailing\\",
  " leading and trailing spaces ",
  "tab\there",
  "new\nline",
  "ünïcödé",
  "emoji 🐦",
  "f47ac10b-58cc-4372-a567-0e02b2c3d479",
  "#hashtag",
  "@mention",
];

/** A deterministic pseudo-random generator (mulberry32), so a failure repeats. */
function generator(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALPHABET = ['a', 'Z', '0', ' ', ',', '"', "\\", '{', '}', 'N', 'U', 'L', '\t', 'é', '🐦', '-', "'"];

function randomArrays(count: number): (string | null)[][] {
  const random = generator(17);
  return Array.from({ length: count }, () =>
    Array.from({ length: Math.floor(random() * 6) }, () => {
      if (random() < 0.08) return null;
      if (random() < 0.05) return "NULL";
      return Array.from({ length: Math.floor(random() * 8) }, () => ALPHABET[Math.floor(random() * ALPHABET.length)]!).join("");
    }),
  );
}

test("text[] and varchar[] parameters come back exactly as sent, the tricky elements and 300 random arrays", async (t) => {
  const { databaseUrl } = await infra();
  const arrays = [[], TRICKY, ...TRICKY.map((element) => [element]), ...randomArrays(300)];
  await withClient(databaseUrl, async (client) => {
    for (const array of arrays) {
      const { rows } = await client.query<{ text: unknown; varchar: unknown; form: string }>("SELECT $1::text[] AS text, $1::varchar[] AS varchar, $1::text[]::text AS form", [array]);
      const row = rows[0]!;
      t.deepEqual(row.text, array, `text[] ${row.form}`);
      t.deepEqual(row.varchar, array, `varchar[] ${row.form}`);
      t.deepEqual(parseOneDimensionalTextArray(row.form), originalArrayParser(1009)(row.form), `the same as pg-types for ${row.form}`);
    }
  });
});

test("forms with more dimensions or explicit bounds go to pg-types' parser, with its result", async (t) => {
  const { databaseUrl } = await infra();
  await withClient(databaseUrl, async (client) => {
    const { rows } = await client.query<{ nested: unknown; bounded: unknown; nestedForm: string; boundedForm: string }>(
      `SELECT '{{a,"b c"},{NULL,d}}'::text[] AS nested, '[0:1]={x,y}'::text[] AS bounded,
              '{{a,"b c"},{NULL,d}}'::text[]::text AS "nestedForm", '[0:1]={x,y}'::text[]::text AS "boundedForm"`,
    );
    const row = rows[0]!;
    t.is(parseOneDimensionalTextArray(row.nestedForm), undefined);
    t.is(parseOneDimensionalTextArray(row.boundedForm), undefined);
    t.deepEqual(row.nested, [["a", "b c"], [null, "d"]]);
    t.deepEqual(row.bounded, originalArrayParser(1009)(row.boundedForm));
  });
});

test("openPostgres' parser is the one node-postgres uses for text[] and varchar[]", (t) => {
  for (const oid of [1009, 1015] as const) {
    const installed = pg.types.getTypeParser(oid as Parameters<typeof pg.types.getTypeParser>[0], "text") as (source: string) => unknown;
    t.not(installed, originalArrayParser(oid));
    t.deepEqual(installed('{a,"b c"}'), ["a", "b c"]);
  }
});

test("malformed forms are not this parser's to read", (t) => {
  for (const form of ["", "{", "}", "{a,}", "{,a}", "{a,,b}", '{"open}', "{a}b", "x{a}"]) t.is(parseOneDimensionalTextArray(form), undefined, form);
  t.deepEqual(parseOneDimensionalTextArray("{}"), []);
  t.deepEqual(parseOneDimensionalTextArray('{"",NULL,"NULL"}'), ["", null, "NULL"]);
});
