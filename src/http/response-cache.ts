import { hash } from "node:crypto";
import { useResponseCache, type Cache } from "@envelop/response-cache";
import {
  getOperationAST,
  Kind,
  type DocumentNode,
  type ExecutionResult,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from "graphql";
import type { Plugin } from "graphql-yoga";
import { LRUCache } from "lru-cache";
import type { DataChanges } from "../realtime/changes.js";
import { listen, type AppPubSub, type PubSubConnection } from "../realtime/pubsub.js";
import type { Context } from "../schema/context.js";
import { isRecordUsageOnly } from "./plugins/compiled-gateway.js";

export interface ResponseCache extends DataChanges {
  /** The Yoga plugins: writes mark changes, queries are answered from the cache. */
  readonly plugins: Plugin[];
  close(): Promise<void>;
}

export const RESPONSE_CACHE_MAX_ENTRIES = 10_000;
/** What the cached answers of an instance may add up to (their JSON length). */
export const RESPONSE_CACHE_MAX_BYTES = 64 * 1024 * 1024;
const MAX_ENTRY_BYTES = 1024 * 1024;

/**
 * Root fields whose answer depends on the time as well as on the data: never cached.
 * `verifyApiKey` (expiry, a rotated secret's grace period) has its own cache in the verifier;
 * `usageSummary`'s window ends now by default.
 */
const UNCACHED_FIELDS = new Set(["verifyApiKey", "usageSummary"]);

interface Entry {
  result: ExecutionResult;
  version: string;
}

/**
 * Answers a repeated query of a signed-in viewer (or of the public, or of a service credential)
 * from memory, without running it, while nothing it could show has changed. An answer is cached
 * for one session (the key is the document, operation name, variables and the session), after
 * the token was checked as for any request, and only when it carried no error. Scope-auth decided
 * what it holds when it ran, for that viewer; the cache never serves it to anyone else.
 *
 * What invalidates: every mutation, on every transport, once it has run (before its answer is
 * sent, and after Redis took the message for the other instances); usage ingest, a key's
 * `lastUsedAt` and the retention sweep through `changed`. A partner's writes leave the cached
 * answers of other partners' people alone; staff answers see every change. A read that started
 * before a change is not cached. While Redis is unreachable a change elsewhere could be missed,
 * so nothing is cached or answered from the cache; the cache starts empty when it returns.
 * `ttlMs` bounds how long an answer lives without any of this, for writes made outside the
 * server (SQL, the CLI). `@live` queries, subscriptions and time-dependent fields are never cached.
 */
export function createResponseCache(options: {
  pubsub: AppPubSub;
  connection: Pick<PubSubConnection, "state" | "onStateChange" | "delivered">;
  ttlMs: number;
  maxEntries?: number;
  maxBytes?: number;
  /** Told of every lookup and whether the cache answered it (metrics). */
  observe?: { lookup(hit: boolean): void };
}): ResponseCache {
  const { pubsub, connection } = options;
  const entries = new LRUCache<string, Entry>({
    max: options.maxEntries ?? RESPONSE_CACHE_MAX_ENTRIES,
    maxSize: options.maxBytes ?? RESPONSE_CACHE_MAX_BYTES,
    // Measured once, when stored (a miss): the answer's length as sent.
    sizeCalculation: (entry) => Math.max(1, JSON.stringify(entry.result).length),
    // A larger answer is not kept: it would push out hundreds of others.
    maxEntrySize: MAX_ENTRY_BYTES,
    ttl: options.ttlMs || 1,
  });
  // Versions of what answers depend on: `everything` moves with every change, `shared` with a
  // change not limited to partners, `partners` with one partner's.
  let everything = 0;
  let shared = 0;
  const partners = new Map<string, number>();
  const versionOf = (partnerId: string | null) =>
    partnerId === null ? `${everything}` : `${shared}.${partners.get(partnerId) ?? 0}`;

  function apply(partnerIds: readonly string[] | null) {
    everything++;
    if (partnerIds === null) shared++;
    else for (const id of partnerIds) partners.set(id, (partners.get(id) ?? 0) + 1);
  }
  const usable = () => options.ttlMs > 0 && connection.state !== "disconnected";
  const stopWatching = connection.onStateChange(() => {
    apply(null);
    entries.clear();
  });
  const remote = listen(pubsub, "responses:changed", ({ partnerIds }) => apply(partnerIds));

  async function changed(partnerIds?: readonly string[]) {
    if (partnerIds?.length === 0) return;
    const ids = partnerIds ? [...new Set(partnerIds)] : null;
    apply(ids);
    pubsub.publish("responses:changed", { partnerIds: ids });
    // Cut off from Redis, this instance cannot tell the others now (the failed publish is logged
    // and counted): an instance that still reaches Redis keeps its answers until their TTL.
    // Waiting would only delay the write.
    if (connection.state === "connected") await connection.delivered();
  }

  // Operations this instance may answer from the cache: queries other than `@live` ones and
  // those asking for a time-dependent field (they would only pay for a lookup).
  const cacheable = new WeakSet<object>();
  const writes: Plugin = {
    onExecute({ args, executeFn, setExecuteFn }) {
      const operation = getOperationAST(args.document, args.operationName);
      if (operation?.operation === "query") {
        if (!operation.directives?.some((directive) => directive.name.value === "live") && !asksForUncached(args.document, operation)) {
          cacheable.add(args.contextValue);
        }
        return;
      }
      // Ingest says which partners it changed (DataChanges); every other mutation may change anything.
      if (operation?.operation !== "mutation" || isRecordUsageOnly(args.document, args.operationName)) return;
      setExecuteFn(async (executionArgs) => {
        try {
          return await executeFn(executionArgs);
        } finally {
          await changed();
        }
      });
    },
  };

  // One view per operation: it remembers the version its lookup saw, so an answer read before a
  // change is not stored as current.
  const view = (context: Context): Cache => {
    const partnerId = partnerOf(context);
    let seen: string | undefined;
    return {
      get(key) {
        seen = versionOf(partnerId);
        const entry = entries.get(key);
        const hit = entry !== undefined && entry.version === seen;
        options.observe?.lookup(hit);
        return hit ? entry.result : undefined;
      },
      set(key, result, _entities, ttl) {
        if (seen !== undefined && seen === versionOf(partnerId) && usable()) entries.set(key, { result, version: seen }, { ttl });
      },
      invalidate() {
        entries.clear();
      },
    };
  };

  const responses = useResponseCache<Context>({
    cache: (context) => view(context as Context),
    ttl: options.ttlMs,
    enabled: (context) => cacheable.has(context) && usable(),
    session: (context) =>
      context.viewer ? `session:${context.viewer.sessionId}` : context.service ? `service:${context.service.id}` : null,
    // The same fields again, wherever the document asks for them.
    ttlPerSchemaCoordinate: Object.fromEntries([...UNCACHED_FIELDS].map((field) => [`Query.${field}`, 0])),
    // One-shot: a few times cheaper than a hash object fed piece by piece, on every query.
    buildResponseCacheKey: ({ documentString, operationName, variableValues, sessionId }) =>
      hash("sha256", [documentString, operationName ?? "", JSON.stringify(variableValues ?? {}), sessionId ?? ""].join("\0"), "base64url"),
    // Changes are versioned above; the plugin's per-record invalidation would miss new rows.
    invalidateViaMutation: false,
    shouldCacheResult: ({ result }) => !result.errors?.length,
    includeExtensionMetadata: false,
  }) as Plugin;

  return {
    plugins: [writes, responses],
    changed,
    async close() {
      stopWatching();
      await remote.stop();
      entries.clear();
    },
  };
}

/** Whether an operation's root fields (through its fragments) include one never cached. */
function asksForUncached(document: DocumentNode, operation: OperationDefinitionNode): boolean {
  const seen = new Set<string>();
  const visit = (selectionSet: SelectionSetNode): boolean =>
    selectionSet.selections.some((selection) => {
      if (selection.kind === Kind.FIELD) return UNCACHED_FIELDS.has(selection.name.value);
      if (selection.kind === Kind.INLINE_FRAGMENT) return visit(selection.selectionSet);
      if (seen.has(selection.name.value)) return false;
      seen.add(selection.name.value);
      const fragment = document.definitions.find(
        (definition) => definition.kind === Kind.FRAGMENT_DEFINITION && definition.name.value === selection.name.value,
      );
      return fragment?.kind === Kind.FRAGMENT_DEFINITION ? visit(fragment.selectionSet) : false;
    });
  return visit(operation.selectionSet);
}

/** The partner whose data alone a viewer reads (partnerAdmin, developer); null: everyone's or public. */
function partnerOf(context: Context): string | null {
  const viewer = context.viewer;
  return viewer && (viewer.role === "partnerAdmin" || viewer.role === "developer") ? viewer.partnerId : null;
}
