import { defineConfig } from "drizzle-kit";

// `make migrations` writes SQL migrations from the schema; `make test` fails
// when they are stale. The service applies them at startup.
export default defineConfig({
  dialect: "postgresql",
  schema: "./src/store/schema.ts",
  out: "./src/store/migrations",
  schemaFilter: ["moderation"],
});
