/**
 * A database of one's own on the shared PostgreSQL: for suites that run a
 * whole service, whose schema name is fixed ("auth", "users", …), so a fresh
 * schema is not enough to keep two suites apart.
 */
import { uniqueName, withClient } from "./infra.ts";

export async function freshDatabase(serverUrl: string, prefix = "db"): Promise<{ url: string; name: string; drop(): Promise<void> }> {
  const name = uniqueName(prefix);
  await withClient(serverUrl, (client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: () => withClient(serverUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}
