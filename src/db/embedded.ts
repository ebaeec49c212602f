import { mkdir } from "node:fs/promises";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";

/** `DATA_DIR=memory://` keeps the embedded database in memory only (tests, throwaway demos). */
export const IN_MEMORY = "memory://";

export interface EmbeddedPostgres {
  /** A postgresql:// URL on loopback, so Prisma's pg adapter and `prisma migrate` use it like any server. */
  url: string;
  close(): Promise<void>;
}

/**
 * PostgreSQL compiled to WebAssembly, persisted under `dataDir/pgdata` and served on a loopback
 * port speaking the wire protocol. PGlite runs one query at a time; the socket server queues them
 * and keeps each open transaction on the connection that began it.
 */
export async function startEmbeddedPostgres(dataDir: string): Promise<EmbeddedPostgres> {
  let location: string | undefined;
  if (dataDir !== IN_MEMORY) {
    location = path.resolve(dataDir, "pgdata");
    await mkdir(location, { recursive: true });
  }
  const db = await PGlite.create(location);
  const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0, maxConnections: 64 });
  await server.start();
  return {
    url: `postgresql://postgres:postgres@${server.getServerConn()}/postgres?sslmode=disable`,
    async close() {
      await server.stop();
      // Closing checkpoints and flushes the data directory, so every committed row survives.
      await db.close();
    },
  };
}
