// The embedded PostgreSQL's own thread (started by embedded.ts). PGlite runs each query on the
// thread that holds it; here that is not the server's, so loading the database overlaps loading
// the server's code at start-up, and under load the two use both cores. Plain JavaScript: a worker
// thread loads its file without the TypeScript loader the server runs under.
// Messages in: "dump", "close". Out: { ready: conn } once listening, { dump: ArrayBuffer },
// { closed: true }, or { error: message } when something failed.
import { parentPort, workerData } from "node:worker_threads";
import { PGlite } from "@electric-sql/pglite";
import { PGLiteSocketServer } from "@electric-sql/pglite-socket";

/** @type {{ location: string | undefined, template: Uint8Array<ArrayBuffer> | undefined }} */
const { location, template } = workerData;
const port = /** @type {import("node:worker_threads").MessagePort} */ (parentPort);

const reply = async (/** @type {() => Promise<object>} */ work) => {
  try {
    const [message, transfer] = /** @type {[object, ArrayBuffer[]?]} */ (await work());
    port.postMessage(message, transfer ?? []);
  } catch (error) {
    port.postMessage({ error: error instanceof Error ? error.message : String(error) });
  }
};

/** @type {PGlite} */
let db;
/** @type {PGLiteSocketServer | undefined} */
let server;
await reply(async () => {
  db = await PGlite.create(location, template ? { loadDataDir: new Blob([template]) } : {});
  const listening = new PGLiteSocketServer({ db, host: "127.0.0.1", port: 0, maxConnections: 64 });
  await listening.start();
  server = listening;
  return [{ ready: listening.getServerConn() }];
});
// Nothing to serve when it did not start: the thread ends.
if (!server) port.close();

port.on("message", (/** @type {"dump" | "close"} */ request) => {
  if (request === "dump") {
    void reply(async () => {
      const packed = await (await db.dumpDataDir("gzip")).arrayBuffer();
      return [{ dump: packed }, [packed]];
    });
  } else if (request === "close") {
    void reply(async () => {
      await server?.stop();
      // Closing checkpoints and flushes the data directory, so every committed row survives.
      await db.close();
      return [{ closed: true }];
    }).then(() => port.close());
  }
});
