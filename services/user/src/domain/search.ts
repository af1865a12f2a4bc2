// Search input normalisation. Ranking itself is a SQL expression (store/profiles.ts)
// that PGlite and PostgreSQL both run: no pg_trgm (PGlite lacks it), no
// text-search dictionaries, only lower() and LIKE prefixes.

/** Lower-cased, trimmed, a leading "@" dropped; "" when nothing is left. */
export function normaliseQuery(query: string): string {
  return query.trim().replace(/^@+/, "").trim().toLowerCase();
}

/** Escapes LIKE wildcards ("_" is common in usernames) with the default escape character. */
export function escapeLike(text: string): string {
  return text.replace(/[\\%_]/g, (c) => `\\${c}`);
}
