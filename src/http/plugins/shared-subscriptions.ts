import {
  createSourceEventStream,
  execute,
  GraphQLError,
  print,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
} from "graphql";
import { isAsyncIterable, type Plugin, type YogaLogger } from "graphql-yoga";
import { clientError } from "../../errors.js";
import { isBatchedSource, type Batch } from "../../realtime/batches.js";

export interface SharedSubscriptionsOptions {
  /** Bytes of results one subscriber may have waiting before a new batch ends it with EVENTS_DROPPED. */
  backlogBytes: number;
  logger?: YogaLogger;
}

interface Delivery {
  result: ExecutionResult;
  /** Its size as JSON, measured once for every subscriber of the group. */
  bytes: number;
}

/**
 * Subscriptions executed once per event for every group of subscribers that may share them:
 * the same document, operation and variables, and a source whose `shareKey` (what the
 * subscriber may see, decided by the field's own policy when it subscribed) is the same. Each
 * subscriber is authorized on its own (the field's subscribe runs for it, as without groups),
 * then joins its group and only receives the group's results; it leaves when its stream ends
 * (the client stops, or session-streams ends it at logout or a change of rights).
 *
 * What a subscriber holds is bounded by bytes: a batch is taken whole by a subscriber holding
 * less than `backlogBytes` unsent, and ends one holding more with a final EVENTS_DROPPED error,
 * after what it holds, saying how many events it will not receive. Nothing is skipped silently.
 */
export function sharedSubscriptions(options: SharedSubscriptionsOptions): Plugin {
  const groups = new Map<string, Group>();
  const documentKeys = new WeakMap<DocumentNode, string>();
  const documentKey = (document: DocumentNode) => {
    let key = documentKeys.get(document);
    if (key === undefined) documentKeys.set(document, (key = print(document)));
    return key;
  };

  async function subscribe(args: ExecutionArgs): Promise<AsyncIterable<ExecutionResult> | ExecutionResult> {
    // Runs the field's authorization and subscribe for this subscriber; a source is lazy, so one
    // whose group already runs is never started.
    const source = await createSourceEventStream(args);
    if (!isAsyncIterable(source)) return source as ExecutionResult;
    const shareKey = isBatchedSource(source) ? source.shareKey : null;
    const key =
      shareKey === null
        ? null
        : JSON.stringify([shareKey, documentKey(args.document), args.operationName ?? null, args.variableValues ?? null]);
    let group = key === null ? undefined : groups.get(key);
    if (!group) {
      group = new Group(args, source, options, () => {
        if (key !== null && groups.get(key) === group) groups.delete(key);
      });
      if (key !== null) groups.set(key, group);
    }
    return group.join();
  }

  return {
    onSubscribe: ({ setSubscribeFn }) => setSubscribeFn(subscribe as never),
  };
}

class Group {
  private readonly members = new Set<Member>();
  private started = false;
  private stopped = false;
  private readonly abort = new AbortController();

  constructor(
    private readonly args: ExecutionArgs,
    private readonly source: AsyncIterable<unknown>,
    private readonly options: SharedSubscriptionsOptions,
    private readonly onEmpty: () => void,
  ) {}

  join(): AsyncIterableIterator<ExecutionResult> {
    const member = new Member(this.options.backlogBytes, () => this.leave(member));
    this.members.add(member);
    if (!this.started) {
      this.started = true;
      void this.run();
    }
    return member;
  }

  private leave(member: Member) {
    if (!this.members.delete(member) || this.members.size > 0) return;
    this.stopped = true;
    this.onEmpty();
    this.abort.abort();
  }

  private async run() {
    const source = this.source;
    const batches: AsyncIterator<Batch<unknown>> = isBatchedSource(source)
      ? source.batches(this.abort.signal)
      : (async function* () {
          for await (const item of source) yield { items: [item], replayed: false };
        })();
    let failure: unknown = null;
    try {
      while (!this.stopped) {
        const step = await batches.next();
        if (step.done || this.stopped) break;
        const deliveries: Delivery[] = [];
        let bytes = 0;
        for (const item of step.value.items) {
          const result = await execute({ ...this.args, rootValue: item });
          const size = Buffer.byteLength(JSON.stringify(result));
          deliveries.push({ result, bytes: size });
          bytes += size;
        }
        for (const member of this.members) member.offer(deliveries, bytes);
        // A replay reads its next page only once this one has gone out.
        if (step.value.replayed) await Promise.all([...this.members].map((member) => member.drained()));
      }
    } catch (error) {
      failure = error;
      // A coded error is the source's own answer to the client (e.g. EVENTS_DROPPED), not a fault.
      if (!isClientError(error)) this.options.logger?.error("A subscription's source failed", error);
    } finally {
      this.stopped = true;
      this.onEmpty();
      await batches.return?.(undefined);
      for (const member of this.members) member.finish(failure);
    }
  }
}

/** One subscriber of a group: its queue of results not yet taken, bounded by bytes. */
class Member implements AsyncIterableIterator<ExecutionResult> {
  private queue: Array<Delivery | undefined> = [];
  private head = 0;
  private bytes = 0;
  /** Events not delivered since the subscriber fell behind; null while it keeps up. */
  private dropped: number | null = null;
  private failure: unknown = null;
  private ended = false;
  private finished = false;
  private wake: (() => void) | null = null;
  private drainWaiters: Array<() => void> = [];

  constructor(
    private readonly limit: number,
    private readonly onLeave: () => void,
  ) {}

  offer(deliveries: readonly Delivery[], bytes: number) {
    if (this.ended) return;
    if (this.dropped !== null) {
      this.dropped += deliveries.length;
      return;
    }
    if (this.bytes > this.limit) {
      this.dropped = deliveries.length;
    } else {
      for (const delivery of deliveries) this.queue.push(delivery);
      this.bytes += bytes;
    }
    this.notify();
  }

  /** The group ended (its source finished or failed). */
  finish(failure: unknown) {
    this.finished = true;
    this.failure = failure;
    this.notify();
  }

  /** Resolves once this subscriber holds at most the bound (or has ended). */
  drained(): Promise<void> {
    if (this.ended || this.dropped !== null || this.bytes <= this.limit) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  private notify() {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }

  async next(): Promise<IteratorResult<ExecutionResult>> {
    for (;;) {
      if (this.ended) return { done: true, value: undefined };
      if (this.head < this.queue.length) {
        const delivery = this.queue[this.head]!;
        this.queue[this.head++] = undefined;
        this.bytes -= delivery.bytes;
        if (this.head === this.queue.length) {
          this.queue = [];
          this.head = 0;
        } else if (this.head > 4096 && this.head * 2 > this.queue.length) {
          this.queue = this.queue.slice(this.head);
          this.head = 0;
        }
        if (this.bytes <= this.limit && this.drainWaiters.length > 0) for (const done of this.drainWaiters.splice(0)) done();
        return { done: false, value: delivery.result };
      }
      if (this.dropped !== null) {
        const dropped = this.dropped;
        this.stop();
        return { done: false, value: { errors: [eventsDropped(dropped)] } };
      }
      if (this.finished) {
        const failure = this.failure;
        this.stop();
        if (failure === null) return { done: true, value: undefined };
        if (isClientError(failure)) return { done: false, value: { errors: [failure] } };
        // Masked by Yoga like any unexpected error.
        return { done: false, value: { errors: [new GraphQLError("Unexpected error.", { originalError: failure as Error })] } };
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  async return(): Promise<IteratorResult<ExecutionResult>> {
    this.stop();
    return { done: true, value: undefined };
  }

  async throw(error: unknown): Promise<IteratorResult<ExecutionResult>> {
    this.stop();
    throw error;
  }

  private stop() {
    if (this.ended) return;
    this.ended = true;
    this.queue = [];
    this.head = 0;
    this.bytes = 0;
    for (const done of this.drainWaiters.splice(0)) done();
    this.notify();
    this.onLeave();
  }

  [Symbol.asyncIterator]() {
    return this;
  }
}

const isClientError = (error: unknown): error is GraphQLError =>
  error instanceof GraphQLError && typeof error.extensions.code === "string";

function eventsDropped(dropped: number): GraphQLError {
  return clientError(
    "EVENTS_DROPPED",
    `This subscriber fell too far behind: ${dropped} event(s) were not sent and the stream ended. ` +
      "Subscribe again with `after` set to the last cursor received to catch up.",
    { dropped },
  );
}
