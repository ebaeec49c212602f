import { PrismaPg } from "@prisma/adapter-pg";
import pg from "pg";
import { PrismaClient } from "../generated/prisma/client.js";
import { startEmbeddedPostgres, type EmbeddedPostgres } from "./embedded.js";
import { migrateDatabase } from "./migrate.js";

export type { PrismaClient } from "../generated/prisma/client.js";
export { Prisma } from "../generated/prisma/client.js";

export interface Database {
  prisma: PrismaClient;
  /** True when the database is the embedded PGlite one. */
  embedded: boolean;
  /** Answers when the database answers a query (readiness). */
  ping(): Promise<boolean>;
  /** The connection pool's use right now (metrics). */
  poolUse(): { total: number; idle: number; waiting: number; max: number };
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** A PostgreSQL server; when absent, the embedded database under dataDir. */
  databaseUrl: string | undefined;
  dataDir: string;
  poolSize?: number;
  /** Told each step of opening, as it happens (start-up output). */
  progress?: (step: string) => void;
  /**
   * The embedded database, already starting (start-up begins it while the server's code loads);
   * the database then owns it. Started here when absent.
   */
  embedded?: Promise<EmbeddedPostgres>;
}

/** Opens PostgreSQL (a server, or the embedded one), applies migrations, and connects Prisma. */
export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  const progress = options.progress ?? (() => {});
  let embedded: EmbeddedPostgres | undefined;
  if (options.databaseUrl) progress(`Database: PostgreSQL at ${new URL(options.databaseUrl).host}`);
  else if (!options.embedded) progress(`Database: starting embedded PostgreSQL in ${options.dataDir}`);
  const url = options.databaseUrl ?? (embedded = await (options.embedded ?? startEmbeddedPostgres(options.dataDir))).url;
  try {
    progress("Migrations: checking");
    progress(`Migrations: ${await migrateDatabase(url)}`);
  } catch (error) {
    await embedded?.close();
    throw error;
  }
  // PGlite has one session, and its socket server queues each wire message on its own, so two
  // connections' extended-protocol steps (parse/bind/execute) can interleave and clobber each
  // other's unnamed statement. One connection avoids that and costs nothing: PGlite runs one
  // query at a time anyway. (Inside an interactive transaction, use its `tx`, never the client.)
  const poolSize = options.poolSize ?? (embedded ? 1 : 10);
  // The pool is made here, not by the adapter, so that its use can be read.
  const pool = new pg.Pool({ connectionString: url, max: poolSize });
  const prisma = new PrismaClient({
    adapter: new PrismaPg(pool, { disposeExternalPool: true }),
  });
  return {
    prisma,
    embedded: embedded !== undefined,
    async ping() {
      try {
        await prisma.$queryRaw`SELECT 1`;
        return true;
      } catch {
        return false;
      }
    },
    poolUse: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount, max: poolSize }),
    async close() {
      await prisma.$disconnect();
      await embedded?.close();
    },
  };
}
