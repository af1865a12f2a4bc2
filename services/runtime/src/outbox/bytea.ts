import { customType } from "drizzle-orm/pg-core";

/**
 * PostgreSQL `bytea` as a plain Uint8Array. node-postgres reads bytea as a
 * Buffer (often a view into a shared pool), PGlite as a Uint8Array; copying
 * into a fresh Uint8Array gives callers one type that owns its bytes.
 */
export const bytea = customType<{ data: Uint8Array; driverData: Uint8Array }>({
  dataType: () => "bytea",
  toDriver: (value) => value,
  fromDriver: (value) => new Uint8Array(value),
});
