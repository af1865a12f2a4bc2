// Shared pieces of the data export (the auth service's exporter asks every
// service that owns user data for one user's share through an internal,
// server-streaming RPC). Each service reads its tables a page at a time and
// streams the rows, so an export never holds a whole history in memory.

/** The scope a service token needs for a service's export RPC is `<service>.export`. */
export function exportScope(service: string): string {
  return `${service}.export`;
}

/** Rows per query while a service streams one user's data. */
export const EXPORT_PAGE_SIZE = 500;

/**
 * Every row of a keyset-paged query, in order: `page(after, limit)` returns
 * the rows after `after` (the last row of the previous page; undefined for
 * the first). Stops at the first short page.
 */
export async function* keysetRows<T>(page: (after: T | undefined, limit: number) => Promise<T[]>, limit = EXPORT_PAGE_SIZE): AsyncGenerator<T> {
  let after: T | undefined;
  for (;;) {
    const rows = await page(after, limit);
    yield* rows;
    if (rows.length < limit) return;
    after = rows[rows.length - 1];
  }
}
