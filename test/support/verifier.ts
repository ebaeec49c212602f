import { createApiKeyVerifier, type ApiKeyVerifier } from "../../src/auth/api-key-verifier.js";
import type { PrismaClient } from "../../src/db/index.js";
import type { TestServer } from "./server.js";

/**
 * A key verifier of the test's own over the server's database, pub/sub and clock, whose database
 * calls the test can see: how many keys it looked up, and its `lastUsedAt` writes (which it makes
 * off the answer's path) to await.
 */
export interface WatchedVerifier {
  verifier: ApiKeyVerifier;
  /** Key lookups by secret in the database so far. */
  readonly databaseReads: number;
  /** Reads of keys by id (for ingest) in the database so far. */
  readonly idReads: number;
  /** Resolves once every `lastUsedAt` write started so far has finished. */
  writesSettled(): Promise<void>;
  close(): Promise<void>;
}

export function watchedVerifier(server: TestServer, now: () => Date): WatchedVerifier {
  const prisma = server.app.services.prisma;
  let databaseReads = 0;
  let idReads = 0;
  const writes: Array<Promise<unknown>> = [];
  // The delegate's methods are wrapped where they are called, so a call is seen the moment it is made.
  const apiKey = new Proxy(prisma.apiKey, {
    get(target, property) {
      const value = Reflect.get(target, property) as unknown;
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        const result = (value as (...a: unknown[]) => PromiseLike<unknown>).apply(target, args);
        if (property === "findFirst") databaseReads++;
        if (property === "findMany") idReads++;
        if (property === "updateMany") writes.push(Promise.resolve(result).catch(() => {}));
        return result;
      };
    },
  });
  const watched = new Proxy(prisma, {
    get: (target, property) => (property === "apiKey" ? apiKey : Reflect.get(target, property)),
  }) as PrismaClient;
  const verifier = createApiKeyVerifier({
    prisma: watched,
    pubsub: server.app.services.pubsub,
    connection: server.app.pubsub,
    hashKey: server.app.secrets.apiKeyHashSecret,
    environment: server.config.apiKeys.environment,
    now,
  });
  return {
    verifier,
    get databaseReads() {
      return databaseReads;
    },
    get idReads() {
      return idReads;
    },
    async writesSettled() {
      await Promise.all(writes);
    },
    close: () => verifier.close(),
  };
}
