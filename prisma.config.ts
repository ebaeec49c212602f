import { PrismaPg } from "@prisma/adapter-pg";
import { defineConfig } from "prisma/config";

// `prisma generate` needs no database, but the CLI falls back to downloading a native engine
// whenever DATABASE_URL is unset. A placeholder keeps every offline command on the JS engine.
process.env.DATABASE_URL ??= "postgresql://localhost:5432/unused";

export default defineConfig({
  experimental: { adapter: true },
  engine: "js",
  schema: "prisma/schema.prisma",
  // A short idle timeout lets the CLI exit as soon as its work is done instead of waiting for the
  // pool to close idle connections (10 s by default).
  adapter: async () =>
    new PrismaPg({ connectionString: process.env.DATABASE_URL!, idleTimeoutMillis: 50 }),
});
