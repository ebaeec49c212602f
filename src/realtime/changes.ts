/**
 * What a write tells the response cache (http/response-cache.ts) once it has committed: only
 * these partners' data changed (usage ingest, a key's lastUsedAt), or, with no ids, anything may
 * have.
 */
export interface DataChanges {
  /** Resolves once every other instance was told (at once without Redis). */
  changed(partnerIds?: readonly string[]): Promise<void>;
}
