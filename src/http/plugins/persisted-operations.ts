import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { useAPQ, type APQStore } from "@graphql-yoga/plugin-apq";
import { usePersistedOperations } from "@graphql-yoga/plugin-persisted-operations";
import type { GraphQLParams, Plugin } from "graphql-yoga";
import { LRUCache } from "lru-cache";
import { ConfigError } from "../../config.js";
import { clientError } from "../../errors.js";

/** What a graphql-ws subscribe message carries. */
export interface SubscribeMessagePayload {
  query: string;
  operationName?: string | null;
  variables?: Record<string, unknown> | null;
  extensions?: Record<string, unknown> | null;
}

export interface PersistedOperations {
  plugin: Plugin;
  /** The same checks over graphql-ws, where Yoga's request hooks do not run: the params to execute. */
  resolve(message: SubscribeMessagePayload): Promise<GraphQLParams>;
}

/** Operations a codegen manifest lists: sha256 of the document -> the document. */
export type PersistedManifest = ReadonlyMap<string, string>;

// Registered documents are client input: bounded by their total size, not only their count.
const APQ_STORE_BYTES = 16 * 1024 * 1024;
const APQ_TTL_MS = 24 * 60 * 60 * 1000;

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

/**
 * Reads the manifest client codegen writes (client-preset's `persistedDocuments`, hashed as the
 * plain hex sha256 of each document, see codegen.ts): a JSON object from hash to document. A hash
 * that is not its document's sha256 stops the start, since no client could ever send it.
 */
export function loadPersistedManifest(path: string): PersistedManifest {
  const invalid = (problem: string) => new ConfigError([`PERSISTED_OPERATIONS_FILE: ${path}: ${problem}`]);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (error) {
    throw invalid((error as Error).message);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw invalid("expected a JSON object of sha256 hash -> document");
  }
  const manifest = new Map<string, string>();
  for (const [hash, document] of Object.entries(parsed)) {
    if (typeof document !== "string" || sha256(document) !== hash) {
      throw invalid(`"${hash}" is not the hex sha256 of its document`);
    }
    manifest.set(hash, document);
  }
  return manifest;
}

/**
 * Persisted operations, as Apollo Client's persisted-queries link sends them
 * (`extensions.persistedQuery.sha256Hash`):
 * - by default, automatic persisted queries: a hash alone answers PERSISTED_QUERY_NOT_FOUND until
 *   the client sends it once with its query; the manifest's operations are known from the start;
 * - with `only`, the manifest's operations and nothing else: any other document is refused with
 *   PERSISTED_QUERY_ONLY, an unknown hash with PERSISTED_QUERY_NOT_FOUND.
 */
export function createPersistedOperations(options: { only: boolean; manifest: PersistedManifest }): PersistedOperations {
  const { manifest } = options;
  const plugin: Plugin = options.only
    ? usePersistedOperations({
        getPersistedOperation: (hash) => manifest.get(hash) ?? null,
        allowArbitraryOperations: false,
        customErrors: {
          notFound: () => clientError("PERSISTED_QUERY_NOT_FOUND", "No persisted operation has this hash"),
          keyNotFound: () => clientError("PERSISTED_QUERY_ONLY", "Only persisted operations are accepted: send extensions.persistedQuery.sha256Hash"),
          persistedQueryOnly: () => clientError("PERSISTED_QUERY_ONLY", "Only persisted operations are accepted, not a query's text"),
        },
      })
    : useAPQ({ store: apqStore(manifest) });

  return {
    plugin,
    async resolve(message) {
      // graphql-ws requires a query string: a hash-only subscribe message sends "".
      let current: GraphQLParams = {
        query: message.query || undefined,
        operationName: message.operationName ?? undefined,
        variables: message.variables ?? undefined,
        extensions: message.extensions ?? undefined,
      };
      await plugin.onParams?.({
        params: current,
        setParams: (next: GraphQLParams) => (current = next),
        fetchAPI: globalThis,
        context: {},
      } as never);
      return current;
    },
  };
}

/** Documents clients registered (bounded, least recently used first out), over the manifest's. */
function apqStore(manifest: PersistedManifest): APQStore {
  const registered = new LRUCache<string, string>({
    maxSize: APQ_STORE_BYTES,
    sizeCalculation: (query) => Math.max(query.length, 1),
    ttl: APQ_TTL_MS,
  });
  return {
    get: (hash) => manifest.get(hash) ?? registered.get(hash) ?? null,
    set: (hash, query) => void (manifest.has(hash) || registered.set(hash, query)),
  };
}
