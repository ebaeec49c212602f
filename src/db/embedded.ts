import { existsSync } from "node:fs";
import { mkdir, rename, writeFile } from "node:fs/promises";
import path from "node:path";
import { Worker } from "node:worker_threads";
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

/** What the database's thread answers (embedded-worker.mjs). */
type WorkerReply = { ready: string } | { dump: ArrayBuffer } | { closed: true } | { error: string };

/**
 * PostgreSQL compiled to WebAssembly, persisted under `dataDir/pgdata` and served on a loopback
 * port speaking the wire protocol, from a worker thread of its own. PGlite runs one query at a
 * time; the socket server queues them and keeps each open transaction on the connection that
 * began it. A new database (an empty data folder, or memory) starts from the installed template
 * when there is one for these migrations, or from `template`; `null` makes it the long way.
 */
export async function startEmbeddedPostgres(dataDir: string, options: { template?: Blob | null } = {}): Promise<EmbeddedPostgres> {
  let location: string | undefined;
  if (dataDir !== IN_MEMORY) {
    location = path.resolve(dataDir, "pgdata");
    await mkdir(location, { recursive: true });
  }
  const isNew = !location || !existsSync(path.join(location, "PG_VERSION"));
  const template = isNew && options.template !== null ? (options.template ?? (await readTemplate())) : undefined;
  const packed = template && new Uint8Array(await template.arrayBuffer());
  const worker = new Worker(new URL("./embedded-worker.mjs", import.meta.url), {
    workerData: { location, template: packed },
    transferList: packed ? [packed.buffer] : [],
  });
  // Without a listener, a failure of the thread after start would end the process; instead its
  // connections close, queries fail and /readyz says so.
  worker.on("error", () => {});
  let exited = false;
  worker.once("exit", () => (exited = true));
  // One request at a time, each answered by the thread's next message (or its end).
  const next = () =>
    new Promise<WorkerReply>((resolve, reject) => {
      const onMessage = (reply: WorkerReply) => {
        worker.off("error", reject).off("exit", onExit);
        if ("error" in reply) reject(new Error(`Embedded PostgreSQL: ${reply.error}`));
        else resolve(reply);
      };
      const onExit = (code: number) => {
        worker.off("message", onMessage).off("error", reject);
        reject(new Error(`Embedded PostgreSQL stopped (thread exit code ${code})`));
      };
      worker.once("message", onMessage).once("error", reject).once("exit", onExit);
    });
  let queue: Promise<unknown> = next();
  const request = <T extends WorkerReply>(message: "dump" | "close"): Promise<T> => {
    const answered = queue.catch(() => {}).then(() => {
      worker.postMessage(message);
      return next() as Promise<T>;
    });
    queue = answered;
    return answered;
  };
  const ready = (await queue) as { ready: string };
  // The thread does not keep the process alive on its own: a server ends when its work ends.
  worker.unref();
  return {
    url: `postgresql://postgres:postgres@${ready.ready}/postgres?sslmode=disable`,
    dump: async () => new Blob([(await request<{ dump: ArrayBuffer }>("dump")).dump]),
    async close() {
      // A thread that already ended (it failed) has nothing left to close or flush.
      if (!exited) await request("close");
      await worker.terminate();
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
