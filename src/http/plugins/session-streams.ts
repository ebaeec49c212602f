import { isAsyncIterable, type Plugin, type YogaLogger } from "graphql-yoga";
import type { Caller } from "../../auth/callers.js";
import type { PrismaClient } from "../../db/index.js";
import { listen, type AppPubSub, type PubSubConnection } from "../../realtime/pubsub.js";

/** Whom a stream or a WebSocket speaks for: a user's session, or a service credential. */
export type StreamOwner =
  | { kind: "session"; id: string; /** Streams end then too. */ expiresAt: Date }
  | { kind: "credential"; id: string };

/** The owner of what a request opens, or null when it is anonymous. */
export function streamOwner(context: Caller | null | undefined): StreamOwner | null {
  if (context?.viewer) return { kind: "session", id: context.viewer.sessionId, expiresAt: context.viewer.sessionExpiresAt };
  if (context?.service) return { kind: "credential", id: context.service.id };
  return null;
}

export interface SessionStreams {
  /** Yoga plugin: every streamed result (subscription, `@live` query) ends with its session or credential. */
  plugin: Plugin;
  /**
   * Calls `end` once the owner's session or credential ends, whichever instance ended it. Answers
   * the function that stops tracking (call it when what `end` closes has closed by itself).
   */
  track(owner: StreamOwner, end: () => void): () => void;
  close(): Promise<void>;
}

export interface SessionStreamsOptions {
  pubsub: AppPubSub;
  /** After an outage of the pub/sub, revocations may have been missed: they are looked up then. */
  connection: Pick<PubSubConnection, "onStateChange">;
  prisma: PrismaClient;
  now: () => Date;
  logger?: YogaLogger;
}

/**
 * Ends the open streams of a session or a service credential when it ends: on every instance at
 * logout, a change of the user's rights or a credential's revocation, and at a session's expiry.
 * The WebSocket server tracks its sockets here too, and closes them at the same moment.
 */
export function createSessionStreams(options: SessionStreamsOptions): SessionStreams {
  const { pubsub, prisma, now, logger } = options;
  const tracked = new Map<string, { owner: StreamOwner; ends: Set<() => void> }>();
  const keyOf = (owner: Pick<StreamOwner, "kind" | "id">) => `${owner.kind}:${owner.id}`;

  function ended(owner: Pick<StreamOwner, "kind" | "id">) {
    const entry = tracked.get(keyOf(owner));
    if (!entry) return;
    tracked.delete(keyOf(owner));
    for (const end of entry.ends) end();
  }

  function track(owner: StreamOwner, end: () => void): () => void {
    const key = keyOf(owner);
    let entry = tracked.get(key);
    if (!entry) tracked.set(key, (entry = { owner, ends: new Set() }));
    const own = entry;
    own.ends.add(end);
    return () => {
      own.ends.delete(end);
      if (own.ends.size === 0 && tracked.get(key) === own) tracked.delete(key);
    };
  }

  /** Ends what belongs to sessions or credentials that were revoked (or deleted) while messages could be lost. */
  async function recheck() {
    const ids = { session: [] as string[], credential: [] as string[] };
    for (const { owner } of tracked.values()) ids[owner.kind].push(owner.id);
    const [sessions, credentials] = await Promise.all([
      ids.session.length === 0
        ? []
        : prisma.session.findMany({ where: { id: { in: ids.session }, revokedAt: null }, select: { id: true } }),
      ids.credential.length === 0
        ? []
        : prisma.serviceCredential.findMany({ where: { id: { in: ids.credential }, revokedAt: null }, select: { id: true } }),
    ]);
    const live = new Set([...sessions.map((s) => `session:${s.id}`), ...credentials.map((c) => `credential:${c.id}`)]);
    for (const [key, { owner }] of [...tracked]) if (!live.has(key)) ended(owner);
  }

  const sessionRevocations = listen(pubsub, "session:revoked", ({ sessionId }) => ended({ kind: "session", id: sessionId }), logger);
  const credentialRevocations = listen(
    pubsub,
    "serviceCredential:revoked",
    ({ credentialId }) => ended({ kind: "credential", id: credentialId }),
    logger,
  );
  const stopWatching = options.connection.onStateChange((state) => {
    if (state !== "connected") return;
    recheck().catch((error: unknown) => logger?.error("Checking open streams after a pub/sub outage failed", error));
  });

  // A plain iterator rather than a Repeater: it is on the path of every event to every subscriber.
  function endWithOwner<T>(source: AsyncIterable<T>, owner: StreamOwner): AsyncIterableIterator<T> {
    const expiresAt = owner.kind === "session" ? owner.expiresAt : null;
    const iterator = source[Symbol.asyncIterator]();
    const over: IteratorResult<T> = { done: true, value: undefined };
    let finished = false;
    let endWaiting: (step: IteratorResult<T>) => void = () => {};
    const ended = new Promise<IteratorResult<T>>((resolve) => (endWaiting = resolve));
    const finish = () => {
      if (finished) return;
      finished = true;
      expiry?.cancel();
      untrack();
      endWaiting(over);
      Promise.resolve(iterator.return?.()).catch(() => {});
    };
    const untrack = track(owner, finish);
    const expiry = expiresAt ? stopAtExpiry(expiresAt, now, finish) : null;
    return {
      async next() {
        if (finished) return over;
        // Awaiting the source keeps this a pull: nothing is buffered here.
        const step = await Promise.race([iterator.next(), ended]);
        // Checked per event too, so an injected clock (tests) ends the stream without waiting.
        if (step.done || finished || (expiresAt && now() >= expiresAt)) {
          finish();
          return over;
        }
        return step;
      },
      async return() {
        finish();
        return over;
      },
      async throw(error: unknown) {
        finish();
        throw error;
      },
      [Symbol.asyncIterator]() {
        return this;
      },
    };
  }

  const wrap =
    <A extends { contextValue?: unknown }>(run: (args: A) => unknown) =>
    (args: A): unknown => {
      const owner = streamOwner(args.contextValue as Caller | undefined);
      const result = run(args);
      if (!owner) return result;
      const seal = (value: unknown) => (isAsyncIterable(value) ? endWithOwner(value, owner) : value);
      return isThenable(result) ? Promise.resolve(result).then(seal) : seal(result);
    };

  return {
    plugin: {
      onExecute: ({ executeFn, setExecuteFn }) => setExecuteFn(wrap(executeFn) as typeof executeFn),
      onSubscribe: ({ subscribeFn, setSubscribeFn }) => setSubscribeFn(wrap(subscribeFn) as typeof subscribeFn),
    },
    track,
    async close() {
      stopWatching();
      await Promise.all([sessionRevocations.stop(), credentialRevocations.stop()]);
    },
  };
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as PromiseLike<unknown> | null)?.then === "function";
}

// setTimeout's longest delay (about 24.8 days); a later expiry re-arms the timer when it fires.
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Stops the stream when the session expires, even if no event arrives to notice it. */
function stopAtExpiry(expiresAt: Date, now: () => Date, stop: () => void): { cancel(): void } {
  let timer: NodeJS.Timeout;
  const arm = () => {
    const remaining = expiresAt.getTime() - now().getTime();
    timer = setTimeout(() => (now() >= expiresAt ? stop() : arm()), Math.min(Math.max(remaining, 0), MAX_TIMER_MS));
    timer.unref();
  };
  arm();
  return { cancel: () => clearTimeout(timer) };
}
