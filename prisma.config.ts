import { defineConfig } from "prisma/config";

// Prisma 7's CLI only generates the client here (`prisma generate`, run after install). It checks
// for its native schema engine first and would download it; pointing it at a stand-in keeps it
// offline. Migrations use Prisma 6.19's WebAssembly engine instead (prisma-migrate.config.ts).
process.env.PRISMA_SCHEMA_ENGINE_BINARY ??= "prisma/no-schema-engine";

export default defineConfig({ schema: "prisma/schema.prisma" });
