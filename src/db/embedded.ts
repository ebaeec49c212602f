import { existsSync } from "node:fs";
import { mkdir, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";
import { readTemplate, TEMPLATE_DIR, templateFile } from "./embedded-template.js";
import { migrateDatabase } from "./migrate.js";

/** `DATA_DIR=memory://` keeps the embedded database in memory only (tests, throwaway demos). */
export const IN_MEMORY = "memory://";

export interface EmbeddedPostgres {
  /** A postgresql:// URL on loopback, so Prisma's pg adapter and `prisma migrate` use it like any server. */
  url: string;
  /** The whole database as a gzipped tar (see embedded-template.ts). */
  dump(): Promise<Blob>;
  close(): Promise<void>;
}

/**
 * PostgreSQL compiled to WebAssembly, persisted under `dataDir/pgdata` and served on a loopback
 * port speaking the wire protocol. PGlite runs one query at a time; the socket server queues them
 * and keeps each open transaction on the connection that began it. A new database (an empty data
 * folder, or memory) starts from the installed template when there is one for these migrations,
 * or from `template`; `null` makes it the long way.
 */
export async function startEmbeddedPostgres(dataDir: string, options: { template?: Blob | null } = {}): Promise<EmbeddedPostgres> {
  let location: string | undefined;
  if (dataDir !== IN_MEMORY) {
    location = path.resolve(dataDir, "pgdata");
    await mkdir(location, { recursive: true });
  }
  const isNew = !location || !existsSync(path.join(location, "PG_VERSION"));
  const template = isNew && options.template !== null ? (options.template ?? (await readTemplate())) : undefined;
  const db = await PGlite.create(location, template ? { loadDataDir: template } : {});
  const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0, maxConnections: 64 });
  await server.start();
  return {
    url: `postgresql://postgres:postgres@${server.getServerConn()}/postgres?sslmode=disable`,
    dump: () => db.dumpDataDir("gzip"),
    async close() {
      await server.stop();
      // Closing checkpoints and flushes the data directory, so every committed row survives.
      await db.close();
    },
  };
}

/** Packs the template (embedded-template.ts): a new in-memory database, migrated, then dumped. Answers its file. */
export async function writeTemplate(dir = TEMPLATE_DIR): Promise<string> {
  const database = await startEmbeddedPostgres(IN_MEMORY, { template: null });
  let packed: Blob;
  try {
    await migrateDatabase(database.url);
    packed = await database.dump();
  } finally {
    await database.close();
  }
  const file = await templateFile(dir);
  await mkdir(dir, { recursive: true });
  // Written under another name first, so a reader never finds half a file.
  const partial = `${file}.${process.pid}.partial`;
  await writeFile(partial, Buffer.from(await packed.arrayBuffer()));
  await rename(partial, file);
  return file;
}
