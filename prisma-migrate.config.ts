import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { PrismaPg } from "@prisma/adapter-pg";
import { defineConfig } from "prisma-migrate/config";

// Migrations run with Prisma 6.19's CLI (the `prisma-migrate` alias), whose WebAssembly schema
// engine works offline. It needs the datasource `url` that Prisma 7 forbids in the schema, so it
// reads a copy of prisma/schema.prisma with the url added, refreshed each time this file loads.
const PROVIDER_LINE = '  provider = "postgresql"';
export const MIGRATE_SCHEMA = "node_modules/.prisma-migrate/schema.prisma";

const schema = readFileSync("prisma/schema.prisma", "utf8");
if (!schema.includes(PROVIDER_LINE)) throw new Error(`prisma/schema.prisma: expected the line ${PROVIDER_LINE}`);
mkdirSync("node_modules/.prisma-migrate", { recursive: true });
writeFileSync(MIGRATE_SCHEMA, schema.replace(PROVIDER_LINE, `${PROVIDER_LINE}\n  url      = env("DATABASE_URL")`));

// The CLI falls back to downloading a native engine whenever DATABASE_URL is unset; a
// placeholder keeps offline commands (`migrate diff`) on the WebAssembly engine.
process.env.DATABASE_URL ??= "postgresql://localhost:5432/unused";

export default defineConfig({
  experimental: { adapter: true },
  engine: "js",
  schema: MIGRATE_SCHEMA,
  migrations: { path: "prisma/migrations" },
  // A short idle timeout lets the CLI exit as soon as its work is done.
  adapter: async () => new PrismaPg({ connectionString: process.env.DATABASE_URL!, idleTimeoutMillis: 50 }),
});
