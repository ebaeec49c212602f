/**
 * A subscription source that hands its events over in whole batches (one per published message,
 * or one page of a replay) and says with whom it may be shared. The GraphQL layer runs one
 * execution per event for every group of subscribers of the same operation whose sources have
 * the same `shareKey`, and bounds what each subscriber holds by batches it has not yet sent.
 */
export interface BatchedSource<T> extends AsyncIterable<T> {
  /**
   * Subscribers of the same operation and variables whose sources have an equal key see the same
   * events and the same results; null shares with no one.
   */
  readonly shareKey: string | null;
  /** The batches until `signal` aborts (a generator waiting for the next message cannot be returned). */
  batches(signal?: AbortSignal): AsyncGenerator<Batch<T>, void, undefined>;
}

export interface Batch<T> {
  items: readonly T[];
  /**
   * Read from storage rather than published: the next one is read only once subscribers have
   * taken this one, so a long replay never piles up in memory.
   */
  replayed: boolean;
}

const BATCHED = Symbol("batched source");

/** Makes a batched source; iterating it directly yields its events one by one. */
export function batchedSource<T>(
  shareKey: string | null,
  batches: (signal?: AbortSignal) => AsyncGenerator<Batch<T>, void, undefined>,
): BatchedSource<T> {
  return {
    [BATCHED]: true,
    shareKey,
    batches,
    async *[Symbol.asyncIterator]() {
      for await (const batch of batches()) yield* batch.items;
    },
  } as BatchedSource<T>;
}

export function isBatchedSource(value: unknown): value is BatchedSource<unknown> {
  return typeof value === "object" && value !== null && BATCHED in value;
}
